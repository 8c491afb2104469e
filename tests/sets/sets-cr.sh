#!/usr/bin/env bash
# sets-cr.sh CASE CKPTCTL MEMHOG SUBREAPER: job sets with real dumps.
#
#   incremental  memhog holds 1 GiB (half compressible); dump --job -R,
#                memhog rewrites 5% of its pages, dump --job --parent
#                latest: the second set must be under 10% of the first,
#                and restore --job (the latest, through the chain, from a
#                cold page cache) must give
#                memhog its memory back byte for byte; image rm of the
#                parent is refused until image squash of set 2
#   incremental-pages  the same with 256 MiB of memhog's fragmented heap
#                (runs of 3 pages between holes: chunks sharing blocks, in
#                the parent and in the incremental set alike)
#   incremental-snapshot  the 1 GiB case with both dumps -R: each read from
#                a copy-on-write snapshot (libckpt/snapshot.c) while memhog
#                runs on, the incremental one against the parent's hashes
#   tiers        storage.local + storage.flush = sync, then background: the
#                set is committed on storage.base (latest, manifest), the
#                local copy is gone; retention.keep = 1 keeps one set
#   enospc       storage.base on a 4 MiB tmpfs, 64 MiB of memory: the dump
#                fails naming the full disk, memhog keeps running with its
#                memory intact, no set is left (committed or partial)
set -euo pipefail
CASE=$1 CKPTCTL=$2 MEMHOG=$3 SUBREAPER=$4

# Restored memhogs are orphans once `restore -d` exits: reap them here.
if [ -z "${SETS_REAPED:-}" ]; then
	export SETS_REAPED=1
	exec "$SUBREAPER" "$0" "$@"
fi

WORK=$(mktemp -d /tmp/ckpt-sets-cr.XXXXXX)
HOG=$WORK/hog
LIVE=
MNT=
cleanup() {
	[ -n "$LIVE" ] && kill -9 $LIVE 2>/dev/null || true
	[ -n "$MNT" ] && umount "$MNT" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "sets-cr $CASE: $*" >&2; exit 1; }
mkdir -p "$HOG"
export CKPT_CONF=$WORK/ckpt.conf

wait_file() { # FILE SECONDS
	for ((i = 0; i < $2 * 20; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
	fail "no $1 after $2 s"
}
stat_of() { awk -F': *' -v k="$2" '$1 == k { print $2; exit }' "$1"; }

start_hog() { # MIB [LAYOUT]
	setsid "$MEMHOG" "$1" "$HOG" ${2:-} </dev/null >"$WORK/memhog.log" 2>&1 &
	disown
	wait_file "$HOG/ready" 300
	read -r PID WANT <"$HOG/ready"
	LIVE=$PID
}

# memhog PID checks its memory against WANT.
check_hog() { # PID WANT
	rm -f "$HOG/check"
	kill -USR1 "$1"
	wait_file "$HOG/check" 120
	read -r verdict sum _ <"$HOG/check"
	[ "$verdict" = ok ] && [ "$sum" = "$2" ] || fail "memory differs: $(cat "$HOG/check"), want $2"
}

dirty_hog() {
	kill -USR2 "$PID"
	wait_file "$HOG/dirtied" 120
	read -r _ WANT _ <"$HOG/dirtied"
}

restore_check() { # [cold] then kill it
	if [ "${1:-}" = cold ]; then
		# as on a node that did not write the sets: every block through
		# the chain read with O_DIRECT (storage/pages-read.c)
		sync
		find "$BASE" -type f -exec dd if={} iflag=nocache count=0 status=none \;
	fi
	"$CKPTCTL" restore -d --job j --base "$BASE" --pidfile "$WORK/rpid" || fail "restore --job failed"
	local rpid
	rpid=$(cat "$WORK/rpid")
	LIVE=$rpid
	check_hog "$rpid" "$WANT"
	kill -9 "$rpid"
	LIVE=
}

case $CASE in
incremental | incremental-pages | incremental-snapshot)
	BASE=$WORK/base
	if [ "$CASE" = incremental-pages ]; then start_hog 256 pages; else start_hog 1024; fi
	"$CKPTCTL" dump --stats -R -t "$PID" --job j --base "$BASE" >"$WORK/s1" || fail "dump 1"
	[ "$(stat_of "$WORK/s1" snapshot_tasks)" = 1 ] || fail "dump 1 -R: no snapshot"
	dirty_hog
	# incremental-snapshot: the incremental dump from a snapshot too, the
	# hog running on (then killed, as the dump without -R would)
	again=
	[ "$CASE" = incremental-snapshot ] && again=-R
	"$CKPTCTL" dump --stats $again -t "$PID" --job j --base "$BASE" --parent latest >"$WORK/s2" ||
		fail "dump 2"
	if [ -n "$again" ]; then
		[ "$(stat_of "$WORK/s2" snapshot_tasks)" = 1 ] || fail "dump 2 -R: no snapshot"
		kill -9 "$PID"
		wait "$PID" 2>/dev/null
	fi
	LIVE=
	w1=$(stat_of "$WORK/s1" written_bytes) w2=$(stat_of "$WORK/s2" written_bytes)
	echo "full set $w1 bytes, incremental set $w2 bytes ($((100 * w2 / w1))%)"
	[ "$(stat_of "$WORK/s2" seq)" = 2 ] || fail "second set is not SEQ 2"
	((w2 * 10 < w1)) || fail "incremental set $w2 bytes is not under 10% of $w1"
	[ "$(readlink "$BASE/j/latest")" = 2 ] || fail "latest does not point to 2"
	sleep 0.2
	restore_check cold
	# The parent cannot go while set 2 needs it; after a squash it can.
	if "$CKPTCTL" image rm --base "$BASE" j 1 2>"$WORK/err"; then fail "removed a needed parent"; fi
	grep -q "an incremental set needs it" "$WORK/err" || fail "rm: $(cat "$WORK/err")"
	"$CKPTCTL" image squash "$BASE/j/2" || fail "squash"
	"$CKPTCTL" image rm --base "$BASE" j 1 || fail "rm of the parent after the squash"
	"$CKPTCTL" image ls --base "$BASE" j | tee "$WORK/ls"
	[ "$(awk 'NR > 1 { print $1 ":" $2 ":" $4 }' "$WORK/ls")" = "2:committed:-" ] ||
		fail "image ls after squash and rm"
	restore_check
	;;
tiers)
	BASE=$WORK/base
	printf 'storage.base = %s\nstorage.local = %s\nstorage.flush = sync\nretention.keep = 1\n' \
		"$BASE" "$WORK/local" >"$CKPT_CONF"
	start_hog 32
	"$CKPTCTL" dump --stats -R -t "$PID" --job j >"$WORK/s1" || fail "dump 1 (sync)"
	[ -f "$BASE/j/1/manifest" ] || fail "no manifest on storage.base after a sync flush"
	[ -z "$(ls -A "$WORK/local/j")" ] || fail "local copy left: $(ls "$WORK/local/j")"
	[ "$(stat -c %a "$BASE/j/1")" = 700 ] && [ "$(stat -c %a "$BASE/j/1/manifest")" = 600 ] ||
		fail "modes of the set: $(stat -c %a "$BASE/j/1" "$BASE/j/1/manifest")"
	sed -i 's/storage.flush = sync/storage.flush = background/' "$CKPT_CONF"
	"$CKPTCTL" dump --stats -t "$PID" --job j >"$WORK/s2" || fail "dump 2 (background)"
	LIVE=
	flusher=$(stat_of "$WORK/s2" flusher)
	[ "$flusher" -gt 0 ] || fail "no flusher process"
	for ((i = 0; i < 600; i++)); do
		[ "$(readlink "$BASE/j/latest")" = 2 ] && ! kill -0 "$flusher" 2>/dev/null && break
		sleep 0.05
	done
	[ "$(readlink "$BASE/j/latest")" = 2 ] || fail "background flush did not commit set 2"
	[ -f "$BASE/j/2/manifest" ] || fail "set 2 has no manifest"
	[ ! -e "$BASE/j/1" ] || fail "retention.keep = 1 left set 1"
	[ -z "$(ls -A "$WORK/local/j")" ] || fail "local copy left: $(ls "$WORK/local/j")"
	read -r _ WANT <"$HOG/ready"
	restore_check
	;;
enospc)
	BASE=$WORK/tiny
	MNT=$BASE
	mkdir -p "$BASE"
	mount -t tmpfs -o size=4m tmpfs "$BASE" || fail "cannot mount a tmpfs"
	start_hog 64
	if "$CKPTCTL" dump -R -t "$PID" --job j --base "$BASE" 2>"$WORK/err"; then
		fail "dump into 4 MiB succeeded"
	fi
	cat "$WORK/err"
	grep -q "No space left on device" "$WORK/err" || fail "the error does not say the disk is full"
	[ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "more than one error line"
	kill -0 "$PID" || fail "memhog died"
	check_hog "$PID" "$WANT"
	[ ! -e "$BASE/j/latest" ] || fail "a latest pointer after a failed dump"
	left=$(find "$BASE/j" -mindepth 1 | head -5)
	[ -z "$left" ] || fail "left behind: $left"
	;;
*) fail "unknown case" ;;
esac
echo "sets-cr $CASE: ok"
