#!/usr/bin/env bash
# dump --check-only (what `ckptctl checkpoint able` runs through ckptd):
# it answers what the dump would, on the running tree, and leaves the
# tree alone: never traced (a watcher polls TracerPid all along; a real
# dump -R must show up in it, or the watcher proves nothing), nothing
# written, and the programs' own checks pass afterwards.
#   check-only.sh CKPTCTL CR-COUNTER CR-BADFD CR-INET-SK CR-SK-HELPER CR-TTY
set -euo pipefail
CKPTCTL=$1 COUNTER=$2 BADFD=$3 INET=$4 SKHELPER=$5 TTY=$6
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
export CKPT_SOCKET=none
T=$(mktemp -d /tmp/ckpt-check-only.XXXXXX)
PIDS=()
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "files kept in $T" >&2; fi
	exit $rc
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# start NAME PROGRAM [ARGS]: run a tests/cr program in $T/NAME; $PID is its pid.
start() {
	local name=$1
	shift
	mkdir -p "$T/$name"
	(cd "$T/$name" && CR_DIR=$T/$name CR_READY=$T/$name/ready exec "$@" \
		>"$T/$name/log" 2>&1 </dev/null 251>&-) &
	PID=$!
	PIDS+=("$PID")
	for _ in $(seq 200); do [ -s "$T/$name/ready" ] && return; sleep 0.05; done
	fail "$name: not ready: $(cat "$T/$name/log")"
}

# watch PID OUT: poll PID's TracerPid until killed; OUT gets every
# non-zero value seen.
watch() {
	python3 - "$1" "$2" <<'P' &
import sys
pid, out = sys.argv[1], sys.argv[2]
seen = set()
open(out, "w").close()
first = True
while True:
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    v = line.split()[1]
                    if v != "0" and v not in seen:
                        seen.add(v)
                        with open(out, "a") as o:
                            o.write(v + "\n")
    except OSError:
        pass
    if first:
        first = False
        open(out + ".polling", "w").close()
P
	WATCHER=$!
	for _ in $(seq 100); do [ -e "$2.polling" ] && break; sleep 0.05; done
	rm -f "$2.polling"
}
unwatch() {
	kill "$WATCHER"
	wait "$WATCHER" 2>/dev/null || true
}

# check PID NAME WANT_RC: one check-only; its stdout and stderr in $T/NAME.*
check() {
	local rc=0
	(cd "$T" && "$CKPTCTL" dump -t "$1" --check-only >"$T/$2.out" 2>"$T/$2.err") || rc=$?
	[ "$rc" = "$3" ] || fail "check-only of $2 exited $rc, not $3: $(cat "$T/$2.out" "$T/$2.err")"
}

# A tree that can be dumped: yes, twenty times, never traced.
start counter "$COUNTER"
before=$(ls -A "$T")
watch "$PID" "$T/tracers"
for i in $(seq 20); do
	check "$PID" counter 0
done
grep -qx "pid $PID: can be dumped (1 tasks, 1 threads)" "$T/counter.out" ||
	fail "check-only said: $(cat "$T/counter.out")"
unwatch
[ ! -s "$T/tracers" ] || fail "check-only traced pid $PID (TracerPid $(tr '\n' ' ' <"$T/tracers"))"
after=$(ls -A "$T" | grep -v '^counter\.\(out\|err\)$\|^tracers' || true)
[ "$before" = "$after" ] || fail "check-only wrote files: $after"
# The watcher sees what a dump does.
watch "$PID" "$T/tracers"
"$CKPTCTL" dump -t "$PID" -D "$T/img" -R >/dev/null || fail "dump -R"
unwatch
[ -s "$T/tracers" ] || fail "the watcher missed the tracer of a real dump: it proves nothing"
rm -rf "$T/img"
kill -TERM "$PID"
wait "$PID" || fail "cr-counter's own check: $(cat "$T/counter/log")"
echo "ok: check-only says yes and never traces the tree"

# A tree the dump refuses (a netlink socket at fd 42): the same refusal,
# one line naming the fd, and the program finds itself untouched.
start netlink "$BADFD" netlink
watch "$PID" "$T/tracers"
check "$PID" netlink 1
unwatch
[ ! -s "$T/tracers" ] || fail "check-only traced pid $PID"
[ "$(wc -l <"$T/netlink.err")" = 1 ] && grep -q "pid $PID: fd 42: .*not supported" "$T/netlink.err" ||
	fail "refusal: $(cat "$T/netlink.err")"
"$CKPTCTL" dump -t "$PID" -D "$T/img" -R 2>"$T/dump.err" && fail "the dump went through"
[ "$(sed 's/^ckpt: //' "$T/dump.err")" = "$(sed 's/^ckpt: //' "$T/netlink.err")" ] ||
	fail "check-only said '$(cat "$T/netlink.err")', the dump '$(cat "$T/dump.err")'"
kill -TERM "$PID"
wait "$PID" || fail "cr-badfd's own check: $(cat "$T/netlink/log")"

# A pipe to a process outside the tree: refused by the tree-wide check.
mkdir "$T/pipe"
sleep 600 | sleep 600 &
reader=$!
PIDS+=($(pgrep -P $$ -x sleep))
for _ in $(seq 50); do ls -l /proc/$reader/fd/0 2>/dev/null | grep -q pipe && break; sleep 0.1; done
check "$reader" pipe 1
grep -q "pid $reader: fd 0: pipe:\[[0-9]*\] has its other end in pid [0-9]*, outside the dumped tree" \
	"$T/pipe.err" || fail "pipe refusal: $(cat "$T/pipe.err")"
echo "ok: check-only refuses what the dump refuses, naming it, and leaves the tree untouched"

# TCP: a connection between two processes of the tree is dumped without
# --tcp-established; one to a peer outside needs it, and check-only says
# so as the dump does.  A tree restored into a fresh network namespace is
# checked from inside it.
start pair "$INET" pair
PAIR=$PID
check "$PAIR" pair 0
mkdir "$T/echo"
(cd "$T/echo" && exec "$SKHELPER" tcp-echo >"$T/echo/log" 2>&1 </dev/null 251>&-) &
PIDS+=($!)
for _ in $(seq 100); do [ -e "$T/echo/helper-ready" ] && break; sleep 0.05; done
mkdir "$T/ext"
cp "$T/echo/helper-port" "$T/ext/" 2>/dev/null || fail "tcp-echo did not start"
start ext "$INET" ext
check "$PID" ext 1
grep -q "pid $PID: fd [0-9]*: socket:\[[0-9]*\]: established TCP connection .*: its peer is outside the tree (dump it with --tcp-established)" \
	"$T/ext.err" || fail "ext refusal: $(cat "$T/ext.err")"
(cd "$T" && "$CKPTCTL" dump -t "$PID" --check-only --tcp-established >/dev/null 2>"$T/ext2.err") ||
	fail "check-only --tcp-established: $(cat "$T/ext2.err")"
"$CKPTCTL" dump -t "$PID" -D "$T/img-ext" -R 2>"$T/dump-ext.err" && fail "the dump of ext went through"
[ "$(sed 's/^ckpt: //' "$T/dump-ext.err")" = "$(sed 's/^ckpt: //' "$T/ext.err")" ] ||
	fail "check-only said '$(cat "$T/ext.err")', the dump '$(cat "$T/dump-ext.err")'"
"$CKPTCTL" dump -t "$PAIR" -D "$T/img-pair" >/dev/null || fail "dump of pair"
"$CKPTCTL" restore -D "$T/img-pair" -d --netns always --pidfile "$T/pair.pid" 251>&- ||
	fail "restore of pair into a fresh network namespace"
PIDS+=("$(cat "$T/pair.pid")")
check "$(cat "$T/pair.pid")" pair-netns 0
echo "ok: check-only refuses an outside peer as the dump does; a tree in its own network namespace is checked there"

# A pty's input not read by its slave: the dump reads it (no peek for a
# tty) and puts it back; a check must not touch it, the program finds
# every byte where it was.  Input in EXTPROC mode: the dump's refusal.
start input "$TTY" pty-input
check "$PID" input 0
kill -TERM "$PID"
wait "$PID" || fail "cr-tty pty-input's own check after check-only: $(cat "$T/input/log")"
# 9000 bytes of output its master has not read: the slave cannot write
# more, which is no stopped output.
start queued "$TTY" pty-queued
check "$PID" queued 0
kill -TERM "$PID"
wait "$PID" || fail "cr-tty pty-queued's own check after check-only: $(cat "$T/queued/log")"
start extproc "$TTY" pty-extproc
check "$PID" extproc 1
grep -q "pid $PID: fd [0-9]*: .*EXTPROC" "$T/extproc.err" || fail "EXTPROC refusal: $(cat "$T/extproc.err")"
echo "ok: check-only leaves a pty's input alone, refuses what the dump refuses"
