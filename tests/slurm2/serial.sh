#!/usr/bin/env bash
# A job of two nodes whose batch script works alone on its first node (a
# serial phase: nothing of the job runs on ckn2): the coordinator's
# checkpoint has one part, ckn2 says it has nothing of the job, and the
# requeued job restores that part and counts on, every line once, from a
# single start.
. "$(dirname "$0")/lib.sh"
use_test_user
install -d -o $U -g $U -m 755 "$T/u"
cat >"$T/u/job.sh" <<'S'
#!/bin/bash
echo "start of run ${SLURM_RESTART_COUNT:-0}"
for i in $(seq 120); do echo "count $i"; sleep 0.1; done
echo "count done: $(seq 120 | md5sum | cut -c1-16)"
S
chmod 755 "$T/u/job.sh"
cd "$T/u" || exit 1
wait_for 60 "every node to be idle" nodes_idle
id=$(as_user sbatch --parsable -N2 --checkpoint --open-mode=append -o "$T/u/job.out" \
	"$T/u/job.sh") || fail "sbatch failed"
JOBS+=("$id")
at_exit "rm -rf /var/lib/ckpt/$id"
wait_for 60 "job $id to count" grep -qs '^count 10$' "$T/u/job.out"
[ "$(field "$id" NodeList)" = "ckn[1-2]" ] || fail "job $id runs on $(field "$id" NodeList)"
on_node ckn1 setpriv --reuid="$U" --regid="$U" --init-groups -- \
	"$CKPTCTL" checkpoint vacate "$id" >"$T/vacate" 2>&1 ||
	fail "checkpoint vacate $id: $(cat "$T/vacate")"
cat "$T/vacate"
grep -q "node ckn2 (rank 1): no task of the job here: no part" "$T/vacate" ||
	fail "ckn2 did not say it has nothing of job $id"
grep -q "set [0-9]* committed, 1 nodes" "$T/vacate" || fail "no set of one part committed"
at=$(grep -c '^count [0-9]*$' "$T/u/job.out")
wait_for 60 "job $id to be requeued" restarts_is "$id" 1
release "$id"
wait_for 120 "job $id to complete" state_is "$id" COMPLETED
grep -q "restored from the latest checkpoint" "$T/u/job.out" ||
	fail "job $id was not restored: $(grep ckpt "$T/u/job.out" | tail -n 3)"
[ "$(grep -c '^start of run' "$T/u/job.out")" = 1 ] || fail "job $id started over"
[ "$(grep '^count [0-9]*$' "$T/u/job.out" | sort -u | wc -l)" = 120 ] &&
	[ "$(grep -c '^count [0-9]*$' "$T/u/job.out")" = 120 ] ||
	fail "job $id: not every count once: $(grep -c '^count [0-9]*$' "$T/u/job.out") lines"
grep -q "^count done: $(seq 120 | md5sum | cut -c1-16)" "$T/u/job.out" || fail "job $id did not end"
echo "ok: job $id on ckn[1-2], working on ckn1 alone, vacated at count $at with one part," \
	"requeued, restored and counted to the end"
