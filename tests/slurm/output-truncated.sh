#!/usr/bin/env bash
# A job submitted with plain sbatch (no --open-mode=append, which
# ckpt-sbatch would add): when Slurm requeues it, slurmstepd truncates its
# output file before the run starts again.  The restore puts the output
# back from the copy kept with the set, and the restored job appends after
# it: one start, every count once, in order -- nothing lost, nothing twice.
# Before, the restore refused the shorter file ("changed since the dump")
# and the job started afresh, its earlier output gone.
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
use_test_user

start_ckptd "$CKPTD" "$CKPTCTL"
install -d -o $U -g $U -m 755 "$T/u"
count_script "$T/u/count.sh"

job=$(cd "$T/u" && as_user sbatch --parsable -p low --requeue -c 1 --checkpoint \
	--checkpoint-dir="$T/u/ck" -o "$T/u/job.out" -e "$T/u/job.err" "$T/u/count.sh") ||
	fail "sbatch --checkpoint failed"
JOBS+=("$job")
counted() { [ "$(lines '^count' "$T/u/job.out")" -ge "$1" ]; }
wait_for 30 "job $job to count" counted 10
as_user "$CKPTCTL" checkpoint vacate "$job" || fail "checkpoint vacate $job"
at_vacate=$(lines '^count' "$T/u/job.out")
wait_for 60 "job $job to be requeued" restarts_is "$job" 1
release "$job"
wait_for 150 "job $job to run again" state_is "$job" RUNNING
wait_for 30 "job $job to be restored" grep -qs "restored from the latest checkpoint" "$T/u/job.err"
wait_for 30 "job $job to count on" counted $((at_vacate + 10))
case $(lines '^start of run' "$T/u/job.out") in
1) ;;
0) fail "the lines before the checkpoint are gone: $(head -n 2 "$T/u/job.out" | tr '\n' ' ')" ;;
*) fail "the job started over: $(grep -n 'start of run' "$T/u/job.out"); $(cat "$T/u/job.err")" ;;
esac
grep '^count' "$T/u/job.out" | awk '$2 != NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' ||
	fail "the output lost or repeated lines (vacated at count $at_vacate)"
[[ $(head -n 1 "$T/u/job.out") == "start of run 0 on cpus "* ]] || fail "first line: $(head -n 1 "$T/u/job.out")"
echo "ok: job $job vacated at count $at_vacate, requeued (its output truncated by Slurm)," \
	"restored with its output put back, counts on ($(lines '^count' "$T/u/job.out") lines, each once)"
