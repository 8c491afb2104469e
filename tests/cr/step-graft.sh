#!/usr/bin/env bash
# `ckptctl dump --step` outside Slurm (docs/mpi.md): a tree (a script and
# its "srun", a sleeping child) and a step of two tasks that run outside
# it, under a stand-in for slurmstepd that reads their output through
# pipes and passes it on.  The dump grafts the tasks under the client and
# records their stdio ends; after everything is killed the restore runs
# the step proxy, ckpt-step, in the client's place: the tasks write on
# through it into the client's output, every line once, and the script's
# `wait` for its client gets the tasks' exit status.  With the fault
# child-crash the proxy dies during the restore: the restore fails and
# leaves no process of the set behind.  A set crafted so that the step's
# tasks ran on other nodes (remote_nodes: a multi-node set's batch part)
# is refused by a hand restore, by name; so is one crafted so that its
# ranks were here and on another node (its fences need the relay).
#   step-graft.sh CKPTCTL CKPT-STEP
set -euo pipefail
CKPTCTL=$1 STEP=$2
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -x "$STEP" ] || { echo "SKIP: no ckpt-step (libpmix)"; exit 77; }
export CKPT_SOCKET=none CKPT_STEP=$STEP
# nothing of ours in the tree: ctest's log, open here, is written on by
# tests beside this one (-j), and the restore would find it changed
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
T=$(mktemp -d /tmp/ckpt-step-graft.XXXXXX)
PIDS=()
cleanup() {
	local rc=$? p
	# only ours still: a pid of the list may have been reused
	for p in "${PIDS[@]}"; do
		if [ "$p" -gt 0 ] && grep -qs "$T" "/proc/$p/cmdline"; then kill -9 "$p" || true; fi
	done
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "files kept in $T" >&2; fi
	exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
chmod 755 "$T"

# The tree: the script waits for its client; the client's stdout is out.
cat >"$T/script.sh" <<'S'
#!/bin/bash
sleep 1000 >>"$1/out" 2>>"$1/err" &
echo $! >"$1/client"
wait $!
echo "client exit $?" >>"$1/out"
S
# A task: counts to 60, 0.05 s apart, then exits with 3.
cat >"$T/task.sh" <<'S'
#!/bin/bash
for i in $(seq 60); do echo "task $SLURM_PROCID line $i"; sleep 0.05; done
exit 3
S
chmod 755 "$T/script.sh" "$T/task.sh"
# The stand-in slurmstepd: the tasks' stdout comes back through pipes.
cat >"$T/stepd.sh" <<'S'
#!/bin/bash
for r in 0 1; do
	SLURM_STEP_ID=0 SLURM_STEP_NUM_NODES=1 SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=$r \
		"$1/task.sh" < /dev/zero | cat >>"$1/out" &
done
wait
S
chmod 755 "$T/stepd.sh"

run_once() { # FAULT: dump, kill, restore (with CKPT_TEST_FAULT=FAULT)
	: >"$T/out"
	rm -rf "$T/img" "$T/client"
	setsid "$T/script.sh" "$T" </dev/null >/dev/null 2>&1 251>&- &
	local root=$!
	PIDS+=("$root")
	setsid "$T/stepd.sh" "$T" </dev/null >/dev/null 2>&1 251>&- &
	local stepd=$!
	PIDS+=("$stepd")
	started() {
		[ -s "$T/client" ] && grep -q "^task 0 line 5$" "$T/out" &&
			grep -q "^task 1 line 5$" "$T/out"
	}
	for _ in $(seq 400); do started && break; sleep 0.05; done
	started || fail "the tree and the step did not start: $(tail -n 3 "$T/out")"
	local client tasks
	client=$(cat "$T/client")
	tasks=$(pgrep -f "$T/task.sh" | paste -sd,)
	[ "$(echo "$tasks" | tr ',' '\n' | wc -l)" = 2 ] || fail "tasks: '$tasks'"
	"$CKPTCTL" dump -t "$root" --step "$client:$tasks" -D "$T/img" >"$T/dump.out" 2>&1 ||
		fail "dump: $(cat "$T/dump.out")"
	pkill -9 -f "$T/task.sh" || true
	kill -9 "$stepd" 2>/dev/null || true
	sleep 0.3
	local at
	at=$(grep -c '^task' "$T/out")
	if [ "$1" = remote ]; then
		# a crafted set: the step's tasks ran on other nodes (a
		# multi-node set's batch part), which only its coordinator
		# restores: refused by hand, by name, nothing left
		python3 "$(dirname "$0")/../security/imgedit.py" "$CKPTCTL" "$T/img" inventory.img "
s = [t for t in E['tasks'] if 'step' in t]
assert len(s) == 1, s
s[0]['step']['remote_nodes'] = 'ckn[2-3]'" || fail "crafting remote_nodes"
		"$CKPTCTL" restore -D "$T/img" -d >"$T/restore.out" 2>&1 &&
			fail "a step of other nodes restored by hand"
		grep -q "its tasks ran on ckn\[2-3\]: the job's set restores on its batch node" \
			"$T/restore.out" || fail "refused without naming the nodes: $(cat "$T/restore.out")"
		[ "$(grep -c . "$T/restore.out")" = 1 ] || fail "not one line: $(cat "$T/restore.out")"
		sleep 0.3
		! pgrep -f "$T/(task|script).sh" >/dev/null ||
			fail "left behind: $(pgrep -af "$T/(task|script).sh")"
		echo "ok: a step recorded on ckn[2-3] refused by hand: $(cat "$T/restore.out")"
		# and one whose ranks were here and on another node (step_entry
		# nodes 2): only the job's restore relays its fences
		python3 "$(dirname "$0")/../security/imgedit.py" "$CKPTCTL" "$T/img" inventory.img "
s = [t for t in E['tasks'] if 'step' in t][0]['step']
del s['remote_nodes']
s['nodes'] = 2" || fail "crafting nodes"
		"$CKPTCTL" restore -D "$T/img" -d >"$T/restore.out" 2>&1 &&
			fail "a step of two nodes restored by hand"
		grep -q "its tasks ran on several nodes: the job's set restores on its batch node" \
			"$T/restore.out" || fail "refused without naming the nodes: $(cat "$T/restore.out")"
		sleep 0.3
		! pgrep -f "$T/(task|script).sh" >/dev/null ||
			fail "left behind: $(pgrep -af "$T/(task|script).sh")"
		echo "ok: a step on 2 nodes refused by hand: $(cat "$T/restore.out")"
	elif [ "$1" = none ]; then
		"$CKPTCTL" restore -D "$T/img" -d --pidfile "$T/pid" >"$T/restore.out" 2>&1 ||
			fail "restore: $(cat "$T/restore.out")"
		PIDS+=("$(cat "$T/pid")")
		for _ in $(seq 200); do grep -q "client exit" "$T/out" && break; sleep 0.05; done
		grep -qx "client exit 3" "$T/out" || fail "the script's wait: $(tail -n 3 "$T/out")"
		for r in 0 1; do
			[ "$(grep -c "^task $r line" "$T/out")" = 60 ] ||
				fail "task $r: $(grep -c "^task $r line" "$T/out") lines: $(grep "^task $r" "$T/out" | sort | uniq -d | head -n 3)"
		done
		echo "ok: restored after $at lines; both tasks ended through the proxy, 60 lines each"
	else
		CKPT_TEST_FAULT=$1 "$CKPTCTL" restore -D "$T/img" -d >"$T/restore.out" 2>&1 &&
			fail "the restore with fault $1 succeeded"
		sleep 0.5
		! pgrep -f "$T/(task|script).sh" >/dev/null ||
			fail "left behind: $(pgrep -af "$T/(task|script).sh")"
		# root's only: a user's job on this machine may run its own
		! pgrep -u 0 -x ckpt-step >/dev/null || fail "a proxy is left: $(pgrep -u 0 -ax ckpt-step)"
		echo "ok: the restore with fault $1 failed ($(tail -n 1 "$T/restore.out")) and left nothing"
	fi
}
run_once none
run_once child-crash
run_once remote
