#!/usr/bin/env bash
# A node's ckptd killed while the coordinator holds the job frozen: an
# OpenMPI ring across ckn1 and ckn2 (mpirun, btl self,tcp) is being
# checkpointed by `ckptctl checkpoint create`; after every node reported
# frozen, ckn2's ckptd is killed.  The checkpoint fails naming that node,
# no set is committed, every task of the job on both nodes is running and
# untraced, and the job ends with the checksum of an uninterrupted run:
# nothing of the failed checkpoint is left in it.  While both nodes are
# held, `ckptctl status --nodes` shows each node's held dump.
#   agent-killed.sh RING
. "$(dirname "$0")/lib.sh"
RING=$1
if [ "$RING" = none ] || ! command -v mpirun >/dev/null; then
	echo "$NAME: no OpenMPI (scripts/setup installs it): skipped"
	exit 77
fi
use_test_user
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$RING" "$T/u/ring"
prog="ring 400 20"
cat >"$T/u/job.sh" <<S
#!/bin/bash
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=10.77.0.0/24
export OMPI_MCA_oob_tcp_if_include=10.77.0.0/24 OMPI_MCA_plm=slurm
mpirun -n 2 --map-by node $T/u/$prog
echo "exit status \$?"
S
chmod 755 "$T/u/job.sh"
(on_node ckn2 setpriv --reuid="$U" --regid="$U" --init-groups -- \
	mpirun --oversubscribe -n 2 --mca btl self,vader $T/u/$prog) >"$T/reference.log" 2>&1 &
ref=$!
at_exit "kill $ref 2>/dev/null"

cd "$T/u" || exit 1
wait_for 60 "every node to be idle" nodes_idle
id=$(as_user sbatch --parsable -N2 --ntasks-per-node=1 --checkpoint -o "$T/u/job.out" \
	"$T/u/job.sh") || fail "sbatch failed"
JOBS+=("$id")
at_exit "rm -rf /var/lib/ckpt/$id"
wait_for 60 "job $id to make progress" grep -qs '^round 50 ' "$T/u/job.out"

# ckn2's ckptd as the bed started it, to start it again the same way
run=/run/ckpt-slurm2/ckn2
agent=$(cat $run/ckptd.pid)
cmd=$(tr '\0' ' ' </proc/"$agent"/cmdline)
restart_agent() {
	alive() { on_node ckn2 "$CKPTCTL" status >/dev/null 2>&1; }
	alive && return 0
	(exec 0</dev/null 1>>/var/log/ckpt-slurm2/ckptd-ckn2.log 2>&1 251>&-
	 # shellcheck disable=SC2086
	 exec "$ROOT/scripts/slurm-cluster2" exec ckn2 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		setsid $cmd) &
	echo $! >$run/ckptd.pid
	wait_for 10 "ckn2's ckptd to answer" alive
}
at_exit restart_agent

on_node ckn1 setpriv --reuid="$U" --regid="$U" --init-groups -- env CKPT_COORD_PAUSE=frozen:8 \
	"$CKPTCTL" checkpoint create "$id" >"$T/create" 2>&1 &
create=$!
wait_for 30 "the coordinator to hold job $id frozen" \
	grep -qs 'rank 1: paused after frozen' "$T/create"
# Each node's progress, from its own ckptd: both hold a dump of the job.
on_node ckn1 setpriv --reuid="$U" --regid="$U" --init-groups -- \
	"$CKPTCTL" status --nodes "$id" >"$T/status" 2>&1 || fail "status --nodes: $(cat "$T/status")"
cat "$T/status"
for n in ckn1 ckn2; do
	awk -v n="node $n:" '$0 == n { f = 1; next } /^node / { f = 0 } f' "$T/status" |
		grep -q " dump .* running" || fail "status --nodes: no running dump on $n"
done
kill -9 "$agent"
rc=0
wait $create || rc=$?
cat "$T/create"
[ $rc -ne 0 ] || fail "checkpoint create $id succeeded without ckn2's ckptd"
grep -q "checkpoint failed: node ckn2 (rank 1):" "$T/create" ||
	fail "the failure does not name ckn2: $(cat "$T/create")"
[ ! -e /var/lib/ckpt/$id/latest ] || fail "job $id: a set was committed: $(ls -l /var/lib/ckpt/$id)"
restart_agent
# Every task of the job, on both nodes, runs on: not stopped, not traced.
for n in ckn1 ckn2; do
	pids=$(on_node $n scontrol listpids "$id" | awk 'NR > 1 { print $1 }')
	[ -n "$pids" ] || fail "$n: no task of job $id"
	for p in $pids; do
		st=$(awk '{ print $3 }' /proc/$p/stat 2>/dev/null) || continue
		[ "$st" != t ] && [ "$st" != T ] || fail "$n: task $p of job $id is left stopped"
		grep -q '^TracerPid:[[:space:]]*0$' /proc/$p/status || fail "$n: task $p of job $id is traced"
	done
done
wait "$ref" || fail "the uninterrupted run failed: $(tail -n 5 "$T/reference.log")"
grep ' done: .* checksum ' "$T/reference.log" >"$T/reference" || fail "no reference checksum"
wait_for 120 "job $id to complete" state_is "$id" COMPLETED
grep ' done: .* checksum ' "$T/u/job.out" >"$T/final" || fail "job $id: no checksum line"
cmp -s "$T/final" "$T/reference" || fail "job $id ended with '$(cat "$T/final")', not '$(cat "$T/reference")'"
grep -qx "exit status 0" "$T/u/job.out" || fail "job $id: $(tail -n 3 "$T/u/job.out")"
echo "ok: job $id: ckn2's ckptd killed while both nodes were held frozen: no set, every task" \
	"thawed, the ring ended with the reference checksum"
