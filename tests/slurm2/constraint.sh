#!/usr/bin/env bash
# The requeue of a vacated job asks for the CPU flags its set needs among
# the nodes' Features (docs/placement.md): the bed's nodes list sse4_2
# and avx2.  After `ckptctl checkpoint vacate` the job's Features are the
# set's flags; with ckn3 made a node without avx2 and ckn1 down, the job
# waits rather than run on ckn2 and ckn3; once ckn1 is back it runs on
# ckn[1-2] and is restored.
. "$(dirname "$0")/lib.sh"
feat=$(sinfo -h -n ckn3 -o %f)
case $feat in *avx2*) ;; *) echo "$NAME: the bed's nodes list no avx2 (this CPU): skipped"; exit 77 ;; esac
use_test_user
install -d -o $U -g $U -m 755 "$T/u"
cat >"$T/u/job.sh" <<'S'
#!/bin/bash
echo "start of run ${SLURM_RESTART_COUNT:-0}"
for i in $(seq 100); do echo "count $i"; sleep 0.1; done
echo "count done"
S
chmod 755 "$T/u/job.sh"
cd "$T/u" || exit 1
wait_for 60 "every node to be idle" nodes_idle
id=$(as_user sbatch --parsable -N2 --checkpoint --open-mode=append -o "$T/u/job.out" \
	"$T/u/job.sh") || fail "sbatch failed"
JOBS+=("$id")
at_exit "rm -rf /var/lib/ckpt/$id"
wait_for 60 "job $id to count" grep -qs '^count 5$' "$T/u/job.out"
on_node ckn1 setpriv --reuid="$U" --regid="$U" --init-groups -- \
	"$CKPTCTL" checkpoint vacate "$id" >"$T/vacate" 2>&1 ||
	fail "checkpoint vacate $id: $(cat "$T/vacate")"
cat "$T/vacate"
want=$(/var/lib/ckpt-slurm2/bin/ckptctl cpu-features --set "$(readlink -f /var/lib/ckpt/$id/latest)/nodes/ckn1" \
	--only "$feat")
[ -n "$want" ] || fail "the set needs none of $feat"
grep -q "requeued with the constraint $want " "$T/vacate" || fail "no constraint $want said"
wait_for 60 "job $id to be requeued" restarts_is "$id" 1
[ "$(field "$id" Features)" = "$want" ] || fail "job $id: Features=$(field "$id" Features), not $want"

at_exit "scontrol update nodename=ckn3 AvailableFeatures=$feat ActiveFeatures=$feat >/dev/null 2>&1;
	scontrol update nodename=ckn1 state=resume >/dev/null 2>&1;
	for _ in \$(seq 100); do sinfo -h -n ckn1 -o %t | grep -qx idle && break; sleep 0.2; done"
scontrol update nodename=ckn3 AvailableFeatures=sse4_2 ActiveFeatures=sse4_2 ||
	fail "cannot take avx2 from ckn3's Features"
scontrol update nodename=ckn1 state=down reason="ckpt test: constraint" || fail "cannot take ckn1 down"
release "$id"
sleep 5
state_is "$id" PENDING || fail "job $id ran on $(field "$id" NodeList) without avx2 on ckn3"
echo "job $id waits: $(field "$id" Reason)"
scontrol update nodename=ckn1 state=resume || fail "cannot resume ckn1"
wait_for 120 "job $id to complete" state_is "$id" COMPLETED
[ "$(field "$id" NodeList)" = "ckn[1-2]" ] || fail "job $id ran on $(field "$id" NodeList)"
grep -q "restored from the latest checkpoint" "$T/u/job.out" || fail "job $id was not restored"
[ "$(grep -c '^start of run' "$T/u/job.out")" = 1 ] || fail "job $id started over"
[ "$(grep -c '^count [0-9]*$' "$T/u/job.out")" = 100 ] || fail "job $id: not every count once"
echo "ok: job $id requeued with the constraint $want, kept off ckn3 without avx2, restored on ckn[1-2]"
