#!/bin/bash
# image-test.sh CKPTCTL IMG-TARGET: the image tool on a real dump.
#
#  1. dump img-target (two processes, two threads, a file, a pipe with
#     data: one of every image kind); `image verify` accepts it.
#  2. decode -> encode of every file gives back the same bytes.
#  3. a flipped bit at many places of every file: `image verify` and
#     `restore` both refuse, naming the file and where in it: the entry
#     of a message image the bit is in (found here from the file's own
#     framing: u32 length, u32 crc, payload), its trailer, or the chunk
#     of a pages file; nothing is restored.
#  4. every file truncated at several lengths: the same (the entry cut,
#     or the one the file now ends after).
#  5. damage that keeps every checksum right (a JSON edit re-encoded): an
#     fd pointing at no file; verify names the file and the entry.
#  6. format versions: a set from a newer or an older format is refused
#     with a message that says which; so is a file of an older format.
# Run as root, under bench/subreaper (the dump kills the tree).
set -u
CKPTCTL=$1
TARGET=$2
WORK=$(mktemp -d /tmp/ckpt-image-test.XXXXXX)
FAILS=0
PID=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

# Flip bit $3 of byte $2 of file $1 in place.
flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ (1 << $3))))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# u32 (little endian) at byte $2 of file $1.
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }

# starts FILE: the offset of each entry of message image FILE, then of
# its trailer.
starts() {
	local file=$1 size pos=16
	size=$(stat -c %s "$file")
	while [ $((pos + 12)) -lt "$size" ]; do
		echo $pos
		pos=$((pos + 8 + $(u32 "$file" $pos)))
	done
	echo $pos
}

# place FILE OFF [cut]: what an error about byte OFF of the good file
# FILE must name: "entry N", "trailer", "chunk N" (a pages file), or
# nothing (the header).  With cut, the file ends at OFF: a cut right at
# the start of entry N (or of the trailer) names the entry the file now
# ends after (N-1), or entry 0.
place() {
	local file=$1 off=$2 cut=${3:-} n=0 s
	[ "$off" -lt 16 ] && return
	case $(basename "$file") in pages-*) echo "chunk [0-9]+" && return ;; esac
	for s in $(starts "$file"); do
		if [ "$off" -lt "$s" ]; then
			echo "entry $((n - 1))"
			return
		fi
		if [ -n "$cut" ] && [ "$off" -eq "$s" ]; then
			echo "entry $((n > 0 ? n - 1 : 0))"
			return
		fi
		n=$((n + 1))
	done
	echo trailer
}

# expect_refused SET FILE WHAT [WHERE]: verify and restore of SET fail
# naming FILE and, when given, WHERE in it (a regex: "entry 3").
expect_refused() {
	local set=$1 file=$2 what=$3 where=${4:-} out re
	re="$set/$file: "
	[ -n "$where" ] && re="$set/$file: (.* )?$where([: ]|$)"
	out=$("$CKPTCTL" image verify "$set" 2>&1 >/dev/null)
	if [ $? -ne 1 ]; then
		fail "$what: verify did not refuse"
	elif ! grep -qE "$re" <<<"$out"; then
		fail "$what: verify does not name $file${where:+ and $where}: $out"
	fi
	out=$("$CKPTCTL" restore -d -D "$set" 2>&1 >/dev/null)
	if [ $? -eq 0 ]; then
		fail "$what: restore did not refuse"
	elif ! grep -qE "$re" <<<"$out"; then
		fail "$what: restore does not name $file${where:+ and $where}: $out"
	fi
	if kill -0 "$PID" 2>/dev/null; then
		fail "$what: pid $PID is running again"
		kill -9 "$PID"
	fi
}

# ---- 1. a real dump ----
# Only stdio may be open: ckpt refuses fds it cannot restore.
for fd in $(ls /proc/$$/fd); do
	[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
done
setsid "$TARGET" "$WORK/ready" </dev/null >/dev/null 2>&1 &
PID=$!
for _ in $(seq 100); do
	[ -s "$WORK/ready" ] && break
	sleep 0.1
done
SET=$WORK/set
if ! "$CKPTCTL" dump -t "$PID" -D "$SET" >"$WORK/dump.log" 2>&1; then
	cat "$WORK/dump.log" >&2
	echo "FAIL: dump" >&2
	exit 1
fi
wait "$PID" 2>/dev/null
"$CKPTCTL" image verify -v "$SET" || fail "verify of a good set"
for k in inventory core mm pagemap pages files fdinfo pipes-data manifest; do
	"$CKPTCTL" image show "$SET" | grep -q " $k " || fail "no $k image in the dump"
done
"$CKPTCTL" image x "$SET" ps | grep -c img-target | grep -q 2 || fail "x ps: two tasks"
"$CKPTCTL" image x "$SET" fds | grep -q "PIPE" || fail "x fds: the pipe"
"$CKPTCTL" image x "$SET" mems | grep -q "\[heap\]" || fail "x mems: the heap"
"$CKPTCTL" image info "$SET" | grep -q "tasks:     2 (3 threads)" || fail "info: tasks"
FILES=$(cd "$SET" && ls)

# ---- 2. JSON round trip ----
mkdir "$WORK/rt"
for f in $FILES; do
	if ! "$CKPTCTL" image decode "$SET/$f" >"$WORK/rt/$f.json"; then
		fail "decode $f"
	elif ! "$CKPTCTL" image encode "$WORK/rt/$f.json" "$WORK/rt/$f"; then
		fail "encode $f"
	elif ! cmp -s "$SET/$f" "$WORK/rt/$f"; then
		fail "round trip of $f is not byte-identical"
	fi
done
echo "round trip: $(echo $FILES | wc -w) files byte-identical"

# ---- 3. flipped bits ----
COPY=$WORK/copy
flips=0
named=0
for f in $FILES; do
	size=$(stat -c %s "$SET/$f")
	for off in 0 7 8 12 16 20 $((size / 3)) $((size / 2)) $((size * 5 / 6)) \
		$((size - 12)) $((size - 8)) $((size - 5)) $((size - 1)); do
		[ "$off" -lt 0 ] || [ "$off" -ge "$size" ] && continue
		rm -rf "$COPY"
		cp -a "$SET" "$COPY"
		flip "$COPY/$f" "$off" $((off % 8))
		where=$(place "$SET/$f" "$off")
		expect_refused "$COPY" "$f" "$f: bit flip at $off" "$where"
		flips=$((flips + 1))
		[ -n "$where" ] && named=$((named + 1))
	done
done
echo "bit flips: $flips, all refused by verify and restore ($named named by entry, chunk or trailer)"

# ---- 4. truncated files ----
cuts=0
for f in $FILES; do
	size=$(stat -c %s "$SET/$f")
	for len in 0 1 15 16 27 $((size / 2)) $((size - 4)) $((size - 1)); do
		[ "$len" -lt 0 ] || [ "$len" -ge "$size" ] && continue
		rm -rf "$COPY"
		cp -a "$SET" "$COPY"
		truncate -s "$len" "$COPY/$f"
		where=$(place "$SET/$f" "$len" cut)
		expect_refused "$COPY" "$f" "$f: truncated to $len" "$where"
		cuts=$((cuts + 1))
	done
done
echo "truncations: $cuts, all refused by verify and restore"

# ---- 5. a cross-reference broken, checksums right ----
rm -rf "$COPY"
cp -a "$SET" "$COPY"
FDINFO=fdinfo-$PID.img
sed -E '0,/"file_id": [0-9]+/s//"file_id": 99/' "$WORK/rt/$FDINFO.json" >"$WORK/bad.json"
"$CKPTCTL" image encode "$WORK/bad.json" "$COPY/$FDINFO" || fail "encode of an edited fdinfo"
out=$("$CKPTCTL" image verify "$COPY" 2>&1)
[ $? -eq 1 ] || fail "verify accepts an fd of a missing file"
grep -q "$COPY/$FDINFO: entry 0: fd 0: file id 99 is not in files.img" <<<"$out" ||
	fail "verify does not name the fd entry: $out"

# ---- 6. format versions (the manifest gates the set) ----
CUR=$(grep -oE '"format_version": [0-9]+' "$WORK/rt/manifest.json" | grep -oE '[0-9]+$')
[ "$CUR" -ge 2 ] || fail "manifest format version $CUR"
for v in $((CUR + 1)) $((CUR - 1)); do
	rm -rf "$COPY"
	cp -a "$SET" "$COPY"
	sed -E "0,/\"format_version\": $CUR/s//\"format_version\": $v/" "$WORK/rt/manifest.json" \
		>"$WORK/v.json"
	"$CKPTCTL" image encode "$WORK/v.json" "$COPY/manifest" || fail "encode manifest v$v"
	[ $v -gt "$CUR" ] && want="newer ckpt" || want="older format"
	out=$("$CKPTCTL" restore -d -D "$COPY" 2>&1)
	[ $? -ne 0 ] || fail "restore of a format $v set"
	grep -q "manifest: format version $v, expected $CUR: .*$want" <<<"$out" ||
		fail "restore of a format $v set: $out"
done
# One file of the older format (its header says so): decode and verify refuse it.
rm -rf "$COPY"
cp -a "$SET" "$COPY"
printf "\\$(printf %03o $((CUR - 1)))" | dd of="$COPY/files.img" bs=1 seek=8 conv=notrunc status=none
out=$("$CKPTCTL" image decode "$COPY/files.img" 2>&1 >/dev/null)
[ $? -ne 0 ] || fail "decode of a format $((CUR - 1)) file"
grep -q "files.img: image format version $((CUR - 1)), this ckptctl reads $CUR" <<<"$out" ||
	fail "decode of a format $((CUR - 1)) file: $out"
out=$("$CKPTCTL" image verify "$COPY" 2>&1 >/dev/null)
grep -q "$COPY/files.img: image format version $((CUR - 1)), expected $CUR: an older format" \
	<<<"$out" || fail "verify of a format $((CUR - 1)) file: $out"

[ $FAILS -eq 0 ] && echo "image-test: all passed" && exit 0
echo "image-test: $FAILS failures" >&2
exit 1
