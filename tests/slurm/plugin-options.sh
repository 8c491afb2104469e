#!/usr/bin/env bash
# The ckpt plugin's options: accepted by sbatch and srun, checked, and
# turned into the job's policy file; the batch step runs under the
# ckpt-batch wrapper, which passes signals and the exit code through; the
# epilog removes the policy file when the job ends.
. "$(dirname "$0")/lib.sh"
JOBDIR=/run/ckpt/jobs

cat >"$T/show.sh" <<'S'
#!/bin/bash
echo "parent=$(cat /proc/$PPID/comm)"
cat /run/ckpt/jobs/$SLURM_JOB_ID.policy || echo "no policy file"
S

# sbatch --checkpoint=on-preempt --checkpoint-dir: the policy as asked.
id=$(submit --wait -p high -o "$T/a.out" --checkpoint=on-preempt --checkpoint-dir="$T/ck" "$T/show.sh")
for l in parent=ckpt-batch job_id=$id uid=0 policy=on-preempt "dir=$T/ck" interval_min=0; do
	grep -qx -- "$l" "$T/a.out" || fail "job $id: no '$l' in: $(cat "$T/a.out")"
done
wait_for 10 "the epilog to remove $JOBDIR/$id.policy" test ! -e "$JOBDIR/$id.policy"

# --checkpoint-interval alone means periodic.
id=$(submit --wait -p high -o "$T/b.out" --checkpoint-interval=5 "$T/show.sh")
grep -qx policy=periodic "$T/b.out" && grep -qx interval_min=5 "$T/b.out" ||
	fail "job $id: $(cat "$T/b.out")"

# No --checkpoint: no wrapper, no policy file.
id=$(submit --wait -p high -o "$T/c.out" "$T/show.sh")
grep -qx "no policy file" "$T/c.out" && ! grep -q parent=ckpt-batch "$T/c.out" ||
	fail "job $id without --checkpoint: $(cat "$T/c.out")"

# srun takes the options too, and the step writes the policy.
out=$(srun -p high --checkpoint=manual bash -c "cat $JOBDIR/\$SLURM_JOB_ID.policy" 2>&1)
grep -qx policy=manual <<<"$out" || fail "srun --checkpoint=manual: $out"

# srun inside a --checkpoint batch job: sbatch exported the bare option to
# the job's environment as "(null)", which the step's srun must take as
# no argument (it refused the step before).
id=$(submit --wait -p high -o "$T/d.out" --checkpoint --wrap='srun -n1 echo step ran')
grep -qx "step ran" "$T/d.out" || fail "job $id: srun in a --checkpoint job: $(cat "$T/d.out")"

# Bad values are refused at submission.
for bad in --checkpoint=sometimes --checkpoint-dir=relative/dir --checkpoint-interval=0 \
	"--checkpoint=periodic" "--checkpoint=manual --checkpoint-interval=3"; do
	# shellcheck disable=SC2086
	if sbatch -p high $bad --wrap=true >"$T/bad.out" 2>&1; then
		JOBS+=("$(grep -o '[0-9]*' "$T/bad.out" | tail -n 1)")
		fail "sbatch $bad was accepted"
	fi
	grep -q 'ckpt:' "$T/bad.out" || fail "sbatch $bad: no reason given: $(cat "$T/bad.out")"
done

# Signals to the batch step reach the script through the wrapper, and the
# script's exit code comes back out (bare --checkpoint: on-preempt).
cat >"$T/trap.sh" <<S
#!/bin/bash
trap 'echo got USR2; exit 3' USR2
echo "parent=\$(cat /proc/\$PPID/comm)"
touch $T/trap.ready
while :; do sleep 0.2; done
S
id=$(submit -p high -o "$T/trap.out" --checkpoint "$T/trap.sh")
wait_for 30 "job $id to start" test -e "$T/trap.ready"
scancel -b -s USR2 "$id"
wait_for 30 "job $id to end" state_is "$id" FAILED
grep -qx "got USR2" "$T/trap.out" && grep -qx parent=ckpt-batch "$T/trap.out" ||
	fail "job $id: $(cat "$T/trap.out")"
[ "$(field "$id" ExitCode)" = 3:0 ] || fail "job $id: ExitCode=$(field "$id" ExitCode), want 3:0"
echo "ok: options, policy file, wrapper and epilog"
