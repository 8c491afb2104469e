#!/usr/bin/env bash
# A node dies under a job with periodic checkpoints: slurmd, ckptd, the
# job's slurmstepd and all its processes are killed (-9; the sets on
# storage stay), the node is set DOWN, Slurm requeues the job; slurmd and
# ckptd come back, the node resumes, and the job is restored from its latest
# committed set and finishes with the output of an uninterrupted run:
# one start, every count once, in order.  A marker line the test appends
# to the output between the last two sets tells the latest set from the
# one before: restored from the latest, the output keeps it (cut back to
# its size at that dump); from the one before, or started afresh, not.
# ckptd runs as this test's child on the plugin's socket (CKPT_SOCKET),
# with 3 s per --checkpoint-interval minute.  --open-mode=append, as
# ckpt-sbatch gives it: otherwise the requeued run's slurmstepd truncates
# the output file, and the lines before the set are gone.
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
use_test_user
HOST=$(hostname -s)
COUNT=150

export CKPT_CONF=$T/ckpt.conf
echo "agent.interval_unit_s = 3" >"$CKPT_CONF"
chmod 644 "$CKPT_CONF"
start_ckptd "$CKPTD" "$CKPTCTL"
install -d -o $U -g $U -m 755 "$T/u"
cat >"$T/u/count.sh" <<S
#!/bin/bash
echo "start of run \${SLURM_RESTART_COUNT:-0}"
for ((i = 1; i <= $COUNT; i++)); do
	echo "count \$i"
	sleep 0.2
done
echo done
S
chmod 755 "$T/u/count.sh"

# Whatever happens, the node is back for the next test.
at_exit "alive_slurmd || /usr/sbin/slurmd -f /etc/slurm/slurm.conf; sleep 1; scontrol update nodename=$HOST state=resume 2>/dev/null"
alive_slurmd() { kill -0 "$(cat /run/ckpt-slurm/slurmd.pid)" 2>/dev/null; }

id=$(cd "$T/u" && as_user sbatch --parsable -p high --requeue --open-mode=append -o "$T/u/job.out" -e "$T/u/job.err" \
	--checkpoint=periodic --checkpoint-interval=1 --checkpoint-dir="$T/u/ck" "$T/u/count.sh") ||
	fail "sbatch failed"
JOBS+=("$id")
latest() { basename "$(readlink "$T/u/ck/$id/latest" 2>/dev/null)" 2>/dev/null; }
latest_is() { [ "$(latest)" = "$1" ]; }
wait_for 60 "job $id's second periodic set" latest_is 2
echo "marker after set 2" >>"$T/u/job.out"
latest_is 2 || fail "set 3 came before the marker: the interval is too short for this test"
wait_for 30 "job $id's third periodic set" latest_is 3
counted=$(lines '^count' "$T/u/job.out")

# The node dies: slurmd, ckptd, the job's slurmstepd and its processes, at once.
tree() { local p; for p in "$@"; do echo "$p"; tree $(ps -o pid= --ppid "$p"); done; }
pids=$(scontrol listpids "$id" | awk 'NR > 1 { print $1 }')
[ -n "$pids" ] || fail "job $id: no processes"
# (a pid listed a moment ago may be gone: a sleep of the count loop)
stepds=$(for p in $pids; do ps -o ppid= -p "$p" || true; done | sort -u |
	while read -r p; do if [ "$(ps -o comm= -p "$p")" = slurmstepd ]; then echo "$p"; fi; done)
[ -n "$stepds" ] || fail "job $id: no slurmstepd"
victims=$(tree $stepds)
# shellcheck disable=SC2086
kill -KILL "$(cat /run/ckpt-slurm/slurmd.pid)" "$CKPTD_PID" $victims 2>/dev/null || true
latest_is 3 || fail "a set after 3 was committed as the node died: $(latest)"
scontrol update nodename="$HOST" state=down reason="ckpt test: node failure"
gone() { local s; s=$(ps -o stat= -p "$1") || return 0; [[ $s == Z* ]]; }
for p in $victims; do
	wait_for 5 "pid $p of job $id to die" gone "$p"
done
wait_for 60 "job $id to be requeued" restarts_is "$id" 1
echo "ok: node $HOST killed with job $id at count $counted (latest set 3), job requeued"

# The node boots: its agent first (as its unit says), then slurmd.
wait $CKPTD_PID 2>/dev/null || true
start_ckptd "$CKPTD" "$CKPTCTL"
/usr/sbin/slurmd -f /etc/slurm/slurm.conf
# Once slurmd answers the node is DOWN, or back in service already
# (ReturnToService=2): resume it if it is not.
node_state() { sinfo -h -N -n "$HOST" -o %t | head -n 1; }
wait_for 30 "slurmd on $HOST to answer" eval '[[ $(node_state) != *"*" ]]'
case $(node_state) in down* | drain*) scontrol update nodename="$HOST" state=resume ;; esac
# Up: idle, or running the job already (on a loaded machine its requeue
# delay may be over by now, and the node takes it at once).
wait_for 30 "node $HOST to be up" eval '[[ $(node_state) =~ ^(idle|mix|alloc)$ ]]'
state_is "$id" PENDING && release "$id"
wait_for 150 "job $id to run again" state_is "$id" RUNNING
wait_for 30 "job $id to be restored" grep -qs "restored from the latest checkpoint" "$T/u/job.err"
wait_for 120 "job $id to complete" state_is "$id" COMPLETED
out=$T/u/job.out
[ "$(grep -c '^start of run' "$out")" = 1 ] || fail "the job started over: $(grep -n 'start of run' "$out")"
grep '^count' "$out" | awk '$2 != NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' ||
	fail "the count repeats or lost lines"
[ "$(lines '^count' "$out")" = $COUNT ] || fail "$(lines '^count' "$out") counts, not $COUNT"
[ "$(lines '^done$' "$out")" = 1 ] || fail "'done' $(lines '^done$' "$out") times"
[ "$(lines '^marker after set 2$' "$out")" = 1 ] ||
	fail "the marker written between sets 2 and 3 is gone: not restored from set 3"
[ "$(field "$id" Restarts)" = 1 ] || fail "Restarts=$(field "$id" Restarts)"
echo "ok: job $id restored from set 3 after the node failure, counted to $COUNT with no line repeated or lost"
