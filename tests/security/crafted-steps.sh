#!/usr/bin/env bash
# Crafted srun steps (docs/mpi.md; libckpt/restore-load.c check_step,
# step-fds.c), each edited into a real dump of alice's: a step's client
# (restored as the step proxy, which runs ckpt-step) where the tree's root
# is, or in bob's name; a step's task whose parent is no client; a step's
# fd with no role, or in a process that is no step's task.  Each is
# refused in one line before anything is created.
. "$(dirname "$0")/lib.sh" "$@"
start_agent
as_alice sh -c "echo alice >$T/alice/f"
alice_target hold hold "$T/alice/f"
alice_dump "$SPAWNED" hold

refused_only() { fail "pid $P restored: $*"; }
STEP="dict(nspace='slurm.pmix.1.0', job_size=2, uid=$(id -u $ALICE), gid=$(id -g $ALICE), step_id=0)"
BOBS="dict(nspace='slurm.pmix.1.0', job_size=2, uid=$(id -u $BOB), gid=$(id -g $BOB), step_id=0)"
F="fds = {f['fd']: f['file_id'] for f in read('fdinfo')['entries']}; x = e[fds[3]]; x.pop('path', None)"

# name | base set | file | edit (imgedit.py) | check of the restored process $P | refusal
ITEMS=(
"step-root|hold|inventory.img|E['tasks'][0]['step'] = $STEP|refused_only the root as a step's client|pid [0-9]*: a bad srun step's client"
"step-bob|hold|inventory.img|E['tasks'][0]['step'] = $BOBS|refused_only bob's step|an srun step of uid [0-9]*, gid [0-9]*: not the restoring user's"
"step-rank-orphan|hold|inventory.img|E['tasks'][0]['step_rank'] = 0|refused_only a rank without its client|whose parent is no step's client"
"step-fd-norank|hold|files.img|$F; x.update(type='FILE_STEP_END', step_role='STEP_PMIX')|refused_only a step's fd in a plain process|a step's fd in a process that is no step's task"
)

run_items
# Alice names a step herself (a process of hers as the client, bob's as
# its task): only ckptd names a job's steps; refused before anything.
alice_target hold2 hold "$T/alice/f"
mine=$SPAWNED
bobs=$(pgrep -u "$BOB" | head -n 1 || true)
[ -n "$bobs" ] || bobs=1
named_by_alice() {
	! as_alice "$CKPTCTL" dump -t "$mine" --step "$mine:$bobs" -D "$T/alice/named" \
		>"$T/named.out" 2>&1 || { echo "alice's --step went through"; return 1; }
	grep -q -- "--step is root's" "$T/named.out" || { echo "named: $(cat "$T/named.out")"; return 1; }
	[ ! -e "$T/alice/named/manifest" ] || { echo "a set was written"; return 1; }
	echo "step-by-alice: refused: $(cat "$T/named.out")"
}
try step-by-alice named_by_alice
kill -0 "$mine" || fail "alice's process did not run on"
finish
