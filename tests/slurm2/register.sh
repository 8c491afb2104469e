#!/usr/bin/env bash
# A user's --checkpoint job on both nodes: the SPANK plugin, in each node's
# slurmstepd, registers the job's tasks there with that node's own ckptd
# (each node has its /run/ckpt, where the default socket is), and the
# user's `ckptctl checkpoint able` is answered on either node that a
# multi-node job's checkpoints are the coordinator's.  `checkpoint create`
# runs the coordinator's step (ckpt-coord on both nodes, through PMIx):
# the job's srun step has a task on each node; a set of two parts is
# committed, every task of both nodes runs on, untraced, and the job goes
# on.
. "$(dirname "$0")/lib.sh"

use_test_user
install -d -o $U -g $U -m 755 "$T/u"
cd "$T/u" || exit 1
id=$(as_user sbatch --parsable -N2 --checkpoint -o "$T/u/job.out" \
	--wrap='srun -N2 --ntasks-per-node=1 sleep 60') || fail "sbatch failed"
JOBS+=("$id")
at_exit "rm -rf /var/lib/ckpt/$id"
wait_for 30 "job $id to run" state_is "$id" RUNNING

# pids NODE: the job's task pids there (scontrol listpids asks the node's
# slurmstepd), sorted; those of its steps' tasks have a LOCALID.
pids() { on_node "$1" scontrol listpids "$id" | awk 'NR > 1 && $4 != "-" { print $1 }' | sort -n; }
registered() { # registered NODE: ckptd there has every task of the job there
	local want json got
	want=$(pids "$1" | tr '\n' ',')
	json=$(on_node "$1" "$CKPTCTL" status --json "$id" 2>/dev/null) || return 1
	got=$(sed -n 's/.*"pids":\[\([0-9,]*\)\].*/\1/p' <<<"$json" | tr ',' '\n' | sort -n | tr '\n' ',')
	[ -n "$want" ] && [ "$got" = "$want" ]
}
agent_pid() { on_node "$1" "$CKPTCTL" status --json | sed -n 's/^{"agent_pid":\([0-9]*\),.*/\1/p'; }
for n in ckn1 ckn2; do
	wait_for 15 "job $id's tasks on $n to be registered there" registered $n
	on_node $n "$CKPTCTL" status --json "$id" | grep -q "\"uid\":$(id -u $U)," ||
		fail "$n: job $id is not the user's: $(on_node $n "$CKPTCTL" status --json "$id")"
	[ "$(agent_pid $n)" = "$(cat /run/ckpt-slurm2/$n/ckptd.pid)" ] ||
		fail "$n: the ckptd that answers is $(agent_pid $n), not the node's $(cat /run/ckpt-slurm2/$n/ckptd.pid)"
	echo "$n: ckptd $(agent_pid $n) has job $id, tasks $(pids $n | tr '\n' ' ')"
done
# The batch step only on ckn1, the step's second task only on ckn2.
on_node ckn1 "$CKPTCTL" status --json "$id" | grep -q '"steps":\[4294967291,0\]' ||
	fail "ckn1: $(on_node ckn1 "$CKPTCTL" status --json "$id")"
on_node ckn2 "$CKPTCTL" status --json "$id" | grep -q '"steps":\[0\]' ||
	fail "ckn2: $(on_node ckn2 "$CKPTCTL" status --json "$id")"

for n in ckn1 ckn2; do
	rc=0
	out=$(on_node $n setpriv --reuid="$U" --regid="$U" --init-groups -- \
		"$CKPTCTL" checkpoint able "$id" 2>&1) || rc=$?
	[ $rc -eq 1 ] && grep -q "runs on 2 nodes: its checkpoints are the coordinator's" <<<"$out" ||
		fail "$n: checkpoint able $id: exit $rc: $out"
	echo "$n: $out"
done
latest() { readlink "/var/lib/ckpt/$id/latest" 2>/dev/null || echo none; }
before=$(latest)
rc=0
out=$(on_node ckn1 setpriv --reuid="$U" --regid="$U" --init-groups -- \
	"$CKPTCTL" checkpoint create "$id" 2>&1) || rc=$?
echo "$out"
[ $rc -eq 0 ] && grep -q "set [0-9]* committed, 2 nodes" <<<"$out" ||
	fail "checkpoint create $id: exit $rc: $out"
[ "$(latest)" != "$before" ] || fail "job $id: no set was committed: $(ls -l "/var/lib/ckpt/$id")"
for n in ckn1 ckn2; do
	for p in $(pids $n); do
		st=$(awk '{ print $3 }' /proc/$p/stat 2>/dev/null) || continue
		[ "$st" != t ] && [ "$st" != T ] || fail "$n: task $p of job $id is left stopped"
		grep -q '^TracerPid:[[:space:]]*0$' /proc/$p/status || fail "$n: task $p of job $id is traced"
	done
done
state_is "$id" RUNNING || fail "job $id: $(field "$id" JobState)"
scancel "$id"
echo "ok: job $id registered with ckn1's and ckn2's own ckptd; able says the coordinator's;" \
	"create committed a set of both nodes and thawed both"
