#!/usr/bin/env bash
# track-cr.sh CASE CKPTCTL TRACK_PROG SUBREAPER: dirty-page tracking
# (libckpt/track.c, docs/sets.md) with real dumps.  track-prog holds
# 64 MiB and more mappings; each of its phases rewrites 5% of the pages,
# drops some (MADV_DONTNEED), maps, unmaps and moves mappings.
#
#   tracked  pre-dump (set 1), phase 1, dump -R --parent 1 (set 2), phase
#            2, dump --parent 2 (set 3, the program killed): sets 2 and 3
#            read only the written pages (tracked_unread_pages, and
#            memory_bytes under 15% of set 1's); restores of set 3 and of
#            set 2 check every page
#   keeper-killed  pre-dump, the ckpt-track keeper killed, phase 1, dump
#            --parent: nothing taken unread (the hashes as before), and the
#            restore checks every page
#   other-parent  pre-dump (set 1), dump -R (set 2, tracking re-armed at
#            it), phase 1, dump --parent 1: not the keeper's set, so all
#            hashed; the restore checks every page
set -euo pipefail
CASE=$1 CKPTCTL=$2 PROG=$3 SUBREAPER=$4

# Restored programs are orphans once `restore -d` exits: reap them here.
if [ -z "${TRACK_REAPED:-}" ]; then
	export TRACK_REAPED=1
	exec "$SUBREAPER" "$0" "$@"
fi
# our own dumps, never through a ckptd of the machine
export CKPT_SOCKET=none

WORK=$(mktemp -d /tmp/ckpt-track-cr.XXXXXX)
chmod 755 "$WORK"
LIVE=
cleanup() {
	[ -n "$LIVE" ] && kill -9 $LIVE 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "track-cr $CASE: $*" >&2; exit 1; }
stat_of() { awk -F': *' -v k="$2" '$1 == k { print $2; exit }' "$1"; }
wait_file() { # FILE SECONDS
	for ((i = 0; i < $2 * 20; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
	fail "no $1 after $2 s"
}

start_prog() {
	setsid "$PROG" "$WORK" </dev/null >"$WORK/prog.log" 2>&1 &
	disown
	wait_file "$WORK/ready" 60
	PID=$(cat "$WORK/ready")
	LIVE=$PID
	echo 0 >"$WORK/phase"
}

phase() { # the program's next phase
	rm -f "$WORK/dirtied"
	kill -USR2 "$1"
	wait_file "$WORK/dirtied" 60
	cat "$WORK/dirtied" >"$WORK/phase"
}

check() { # PID WHAT
	rm -f "$WORK/check"
	kill -USR1 "$1"
	wait_file "$WORK/check" 60
	[ "$(cat "$WORK/check")" = ok ] || fail "$2: $(cat "$WORK/check")"
}

dump() { # STATS ARGS...
	local out=$1
	shift
	"$CKPTCTL" dump --stats -t "$PID" "$@" >"$WORK/$out" || fail "dump $*"
}

restore_check() { # SET PHASE WHAT
	echo "$2" >"$WORK/phase"
	"$CKPTCTL" restore -d -D "$WORK/$1" --pidfile "$WORK/rpid" || fail "restore of $1"
	local rpid
	rpid=$(cat "$WORK/rpid")
	LIVE=$rpid
	check "$rpid" "$3"
	kill -9 "$rpid"
	LIVE=
	sleep 0.1
}

case $CASE in
tracked)
	start_prog
	"$CKPTCTL" pre-dump --stats -t "$PID" -D "$WORK/1" >"$WORK/s1" || fail "pre-dump"
	keeper=$(stat_of "$WORK/s1" track_keeper)
	[ "$keeper" -gt 0 ] || fail "no keeper after pre-dump"
	check "$PID" "the program after the pre-dump"
	phase "$PID"
	dump s2 -R -D "$WORK/2" --parent "$WORK/1"
	check "$PID" "the program after the incremental dump"
	phase "$PID"
	dump s3 -D "$WORK/3" --parent "$WORK/2"
	LIVE=
	m1=$(stat_of "$WORK/s1" memory_bytes)
	for s in s2 s3; do
		m=$(stat_of "$WORK/$s" memory_bytes) u=$(stat_of "$WORK/$s" tracked_unread_pages)
		w=$(stat_of "$WORK/$s" tracked_written_pages)
		echo "$s: memory_bytes $m of $m1, tracked_written_pages $w, tracked_unread_pages $u"
		[ "$u" -gt 14000 ] || fail "$s: only $u pages taken from the parent unread"
		((m * 100 < m1 * 15)) || fail "$s: read $m bytes, not under 15% of $m1"
	done
	restore_check 3 2 "restore of set 3"
	restore_check 2 1 "restore of set 2"
	;;
keeper-killed)
	start_prog
	"$CKPTCTL" pre-dump --stats -t "$PID" -D "$WORK/1" >"$WORK/s1" || fail "pre-dump"
	keeper=$(stat_of "$WORK/s1" track_keeper)
	[ "$keeper" -gt 0 ] || fail "no keeper after pre-dump"
	[ "$(cat /proc/"$keeper"/comm)" = ckpt-track ] || fail "pid $keeper is not ckpt-track"
	kill -9 "$keeper"
	# gone, its userfaultfds closed, before the next dump asks for it
	for ((i = 0; i < 200; i++)); do
		[ "$(awk '{ print $3 }' /proc/"$keeper"/stat 2>/dev/null || echo Z)" = Z ] && break
		sleep 0.05
	done
	phase "$PID"
	dump s2 -D "$WORK/2" --parent "$WORK/1"
	LIVE=
	[ "$(stat_of "$WORK/s2" tracked_unread_pages)" = 0 ] || fail "pages taken unread without a keeper"
	restore_check 2 1 "restore after the keeper was killed"
	;;
other-parent)
	start_prog
	"$CKPTCTL" pre-dump --stats -t "$PID" -D "$WORK/1" >"$WORK/s1" || fail "pre-dump"
	dump s2 -R -D "$WORK/2"
	phase "$PID"
	dump s3 -D "$WORK/3" --parent "$WORK/1"
	LIVE=
	[ "$(stat_of "$WORK/s3" tracked_unread_pages)" = 0 ] || fail "pages taken unread against set 1"
	restore_check 3 1 "restore against another parent"
	;;
*) fail "unknown case" ;;
esac
echo "track-cr $CASE: ok"
