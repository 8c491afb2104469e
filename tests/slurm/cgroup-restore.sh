#!/usr/bin/env bash
# A restored job stays under Slurm's control: with proctrack/cgroup and
# task/cgroup (the test cluster's setup where the node's cgroups allow it),
# a one-core --checkpoint job is preempted on core A, requeued, and started
# again while another job holds core A, so that its new step is bound to
# core B.  The restored tree must be in the new step's cgroups on every
# hierarchy Slurm uses (freezer, cpuset, memory), bound to the step's
# cores (its Cpus_allowed_list is the step's cpuset.cpus, not the dumped
# core), listed by `scontrol listpids` (Slurm tracks it), its 64 MB
# counted in the step's accounting (sstat MaxRSS, jobacct_gather/cgroup),
# and killed by scancel with the step.
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
use_test_user
grep -q '^ProctrackType=proctrack/cgroup' /etc/slurm/slurm.conf ||
	{ echo "$NAME: the cluster tracks jobs without cgroups here: skipped"; exit 77; }
[ "$(nproc)" -ge 2 ] || { echo "$NAME: one CPU: skipped"; exit 77; }

start_ckptd "$CKPTD" "$CKPTCTL"
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$ROOT/examples/ckpt-sbatch" "$T/ckpt-sbatch"
count_script "$T/u/count.sh"
# 64 MB of memory held in a variable, then the count: Slurm's accounting
# of the restored step must show it.
cat >"$T/u/job.sh" <<S
#!/bin/bash
ballast=\$(head -c 64000000 /dev/zero | tr '\\0' a)
. "$T/u/count.sh"
S
chmod 755 "$T/u/job.sh"

low=$(cd "$T/u" && as_user env SBATCH_SIGNAL='' "$T/ckpt-sbatch" --parsable -p low \
	--requeue -c 1 -o "$T/u/low.out" -e "$T/u/low.err" --checkpoint-dir="$T/u/ck" \
	"$T/u/job.sh") || fail "ckpt-sbatch failed"
JOBS+=("$low")
counted() { [ "$(lines '^count' "$T/u/low.out")" -ge "$1" ]; }
wait_for 30 "job $low to count" counted 5
first=$(sed -n 's/^start of run 0 on cpus //p' "$T/u/low.out")
[ -n "$first" ] || fail "job $low did not say its cpus: $(head -n 2 "$T/u/low.out")"
# The whole node for a high job: job $low is checkpointed and requeued.
high=$(submit -p high -c 2 -o /dev/null --wrap='sleep 3')
wait_for 60 "the vacate of job $low" grep -qs "ckpt-batch: job $low: vacate" "$T/u/low.err"
grep -q "vacate done" "$T/u/low.err" || fail "vacate failed: $(cat "$T/u/low.err")"
wait_for 60 "job $low to be requeued" restarts_is "$low" 1
wait_for 60 "job $high to complete" state_is "$high" COMPLETED
# Hold the dumped core with another job: the restore gets the other one.
hold=$(submit -p high -c 1 -o "$T/hold.out" --wrap='grep Cpus_allowed_list /proc/self/status; sleep 300')
JOBS+=("$hold") # (submit ran in a subshell)
wait_for 30 "job $hold to run" grep -qs Cpus_allowed_list "$T/hold.out"
held=$(awk '{ print $2 }' "$T/hold.out")
if [ "$held" != "$first" ]; then
	# Slurm gave the holder the other core: start it again until it has
	# the one the job was dumped on (at most a few tries).
	for _ in 1 2 3; do
		scancel "$hold"
		wait_for 30 "job $hold to end" eval "! state_is $hold RUNNING"
		rm -f "$T/hold.out"
		hold=$(submit -p high -c 1 -o "$T/hold.out" --wrap='grep Cpus_allowed_list /proc/self/status; sleep 300')
		JOBS+=("$hold")
		wait_for 30 "job $hold to run" grep -qs Cpus_allowed_list "$T/hold.out"
		held=$(awk '{ print $2 }' "$T/hold.out")
		[ "$held" = "$first" ] && break
	done
fi
release "$low"
wait_for 150 "job $low to run again" state_is "$low" RUNNING
wait_for 30 "job $low to be restored" grep -qs "restored from the latest checkpoint" "$T/u/low.err"
at=$(lines '^count' "$T/u/low.out")
wait_for 30 "job $low to count on" counted $((at + 3))

# The restored counter: the root of the restored tree, the job's script.
pid=$(sed -n 's/.*restored from the latest checkpoint: pid \([0-9]*\).*/\1/p' "$T/u/low.err" | tail -n 1)
[ -n "$pid" ] && kill -0 "$pid" || fail "no restored pid: $(cat "$T/u/low.err")"
[ "$(stat -c %U /proc/$pid)" = $U ] || fail "restored pid $pid is not $U's"
grep -q "^[0-9]*:freezer:.*/job_$low/step_batch\$" /proc/$pid/cgroup ||
	fail "restored pid $pid freezer cgroup: $(grep freezer /proc/$pid/cgroup)"
cpuset=$(sed -n 's/^[0-9]*:cpuset://p' /proc/$pid/cgroup)
case $cpuset in */job_$low/step_batch) ;; *) fail "restored pid $pid cpuset cgroup $cpuset, not job $low's batch step" ;; esac
grep -q "^[0-9]*:memory:.*/job_$low/step_batch/task_0\$" /proc/$pid/cgroup ||
	fail "restored pid $pid memory cgroup: $(grep memory /proc/$pid/cgroup)"
step_cpus=$(cat "/sys/fs/cgroup/cpuset$cpuset/cpuset.cpus")
now=$(sed -n 's/^Cpus_allowed_list:\t//p' /proc/$pid/status)
[ "$now" = "$step_cpus" ] || fail "restored pid $pid runs on cpus $now, its step has $step_cpus"
scontrol listpids "$low" | awk 'NR > 1 { print $1 }' | grep -qx "$pid" ||
	fail "scontrol listpids $low does not list the restored pid $pid: $(scontrol listpids "$low")"
# jobacct_gather/cgroup: the restored tree's memory is the step's.
rss_kb() {
	sstat -n -P -j "$low.batch" -o MaxRSS 2>/dev/null | awk 'NR == 1 {
		n = $1 + 0; u = substr($1, length($1));
		print int(u == "G" ? n * 1048576 : u == "M" ? n * 1024 : u == "K" ? n : n / 1024) }'
}
counted_rss() { local k; k=$(rss_kb); [ -n "$k" ] && [ "$k" -ge 60000 ]; }
wait_for 30 "sstat to count the restored 64 MB of job $low (MaxRSS $(rss_kb)K)" counted_rss
echo "ok: job $low dumped on cpu $first, restored while job $hold held cpu $held:" \
	"pid $pid in the step's cgroups ($cpuset), on cpus $now (the step's $step_cpus), listed by Slurm," \
	"its memory in the step's accounting (sstat MaxRSS $(rss_kb)K)"
[ "$held" = "$first" ] && { [ "$now" != "$first" ] || fail "restored on the held cpu $first"; }

scancel "$low"
wait_for 30 "job $low to end" eval "! state_is $low RUNNING"
wait_for 15 "the restored pid $pid to be gone" eval "! kill -0 $pid 2>/dev/null"
scancel "$hold"
echo "ok: scancel ended the restored tree with the step"
