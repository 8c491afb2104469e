#!/bin/bash
# image-test.sh CKPTCTL IMG-TARGET: the image tool on a real dump.
#
#  1. dump img-target (two processes, two threads, a file, a pipe with
#     data: one of every image kind); `image verify` accepts it.
#  2. decode -> encode of every file gives back the same bytes.
#  3. a flipped bit at many places of every file: `image verify` and
#     `restore` both refuse, naming the file; nothing is restored.
#  4. every file truncated at several lengths: the same.
#  5. damage that keeps every checksum right (a JSON edit re-encoded): an
#     fd pointing at no file; verify names the file and the entry.
#  6. format versions: a set from a newer or an older format is refused
#     with a message that says which.
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

# expect_refused SET FILE WHAT: verify and restore of SET fail naming FILE.
expect_refused() {
	local set=$1 file=$2 what=$3 out
	out=$("$CKPTCTL" image verify "$set" 2>&1 >/dev/null)
	if [ $? -ne 1 ]; then
		fail "$what: verify did not refuse"
	elif ! grep -q "$set/$file" <<<"$out"; then
		fail "$what: verify does not name $file: $out"
	fi
	out=$("$CKPTCTL" restore -d -D "$set" 2>&1 >/dev/null)
	if [ $? -eq 0 ]; then
		fail "$what: restore did not refuse"
	elif ! grep -q "$set/$file" <<<"$out"; then
		fail "$what: restore does not name $file: $out"
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
for f in $FILES; do
	size=$(stat -c %s "$SET/$f")
	for off in 0 7 8 12 16 20 $((size / 3)) $((size / 2)) $((size * 5 / 6)) \
		$((size - 12)) $((size - 8)) $((size - 5)) $((size - 1)); do
		[ "$off" -lt 0 ] || [ "$off" -ge "$size" ] && continue
		rm -rf "$COPY"
		cp -a "$SET" "$COPY"
		flip "$COPY/$f" "$off" $((off % 8))
		expect_refused "$COPY" "$f" "$f: bit flip at $off"
		flips=$((flips + 1))
	done
done
echo "bit flips: $flips, all refused by verify and restore"

# ---- 4. truncated files ----
cuts=0
for f in $FILES; do
	size=$(stat -c %s "$SET/$f")
	for len in 0 1 15 16 27 $((size / 2)) $((size - 4)) $((size - 1)); do
		[ "$len" -lt 0 ] || [ "$len" -ge "$size" ] && continue
		rm -rf "$COPY"
		cp -a "$SET" "$COPY"
		truncate -s "$len" "$COPY/$f"
		expect_refused "$COPY" "$f" "$f: truncated to $len"
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
for v in 2 0; do
	rm -rf "$COPY"
	cp -a "$SET" "$COPY"
	sed -E "0,/\"format_version\": 1/s//\"format_version\": $v/" "$WORK/rt/manifest.json" \
		>"$WORK/v.json"
	"$CKPTCTL" image encode "$WORK/v.json" "$COPY/manifest" || fail "encode manifest v$v"
	[ $v = 2 ] && want="newer ckpt" || want="older format"
	out=$("$CKPTCTL" restore -d -D "$COPY" 2>&1)
	[ $? -ne 0 ] || fail "restore of a format $v set"
	grep -q "manifest: format version $v, expected 1: .*$want" <<<"$out" ||
		fail "restore of a format $v set: $out"
done

[ $FAILS -eq 0 ] && echo "image-test: all passed" && exit 0
echo "image-test: $FAILS failures" >&2
exit 1
