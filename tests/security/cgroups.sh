#!/usr/bin/env bash
# Crafted cgroup.img (libckpt/cgroup-place.c): alice's set names a cgroup
# she may not enter, or one she may not make, or a directory of hers to be
# made with root's owner, a control file that is not a setting
# (release_agent), or a hierarchy nobody mounted (mounting one is root's).  The worker is alice: each mkdir, chown and write into "tasks"
# is the kernel's to refuse.  Each is refused in one line naming the
# cgroup, or restored with alice's powers and outside the cgroup asked.
. "$(dirname "$0")/lib.sh" "$@"
CPU_M=$(findmnt -rn -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)cpu(,|$)/ {print $1; exit}')
[ -n "$CPU_M" ] || { echo "SKIP: no v1 cpu controller"; exit 77; }
CPU_H=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $2; exit}' /proc/self/cgroup)
ROOTCG=/ckpt-sec-root-$$ ALICECG=/ckpt-sec-alice-$$ NEWCG=/ckpt-sec-new-$$
mkdir "$CPU_M$ROOTCG" "$CPU_M$ALICECG"
chown $ALICE:$ALICE "$CPU_M$ALICECG" "$CPU_M$ALICECG/tasks" "$CPU_M$ALICECG/cgroup.procs"
trap 'rmdir "$CPU_M$ALICECG/evil" "$CPU_M$ALICECG" "$CPU_M$ROOTCG" "$CPU_M$NEWCG/x" "$CPU_M$NEWCG" 2>/dev/null || true; cleanup' EXIT
start_agent

alice_counter c
alice_dump "$SPAWNED" counter
[ -s "$T/alice/counter/cgroup.img" ] || fail "no cgroup.img in alice's set"

in_cg() { grep -q ":$CPU_H:$1\$" /proc/"$P"/cgroup && fail "pid $P is in $1: $(grep ":$CPU_H:" /proc/"$P"/cgroup)"; true; }
not_there() { [ ! -e "$CPU_M$1" ] || fail "$1 was made: $(ls -ld "$CPU_M$1")"; }
not_roots() { [ ! -e "$CPU_M$1" ] || [ "$(stat -c %u "$CPU_M$1")" != 0 ] || fail "$1 was made root's: $(ls -ld "$CPU_M$1")"; }
CPU="[m.update(path=P) for s in E['sets'] for m in s['members'] if m['hierarchy'] == '$CPU_H']"

# name | base set | file | edit (imgedit.py) | check of a restored process
ITEMS=(
"root_cgroup|counter|cgroup.img|P = '$ROOTCG'; $CPU|in_cg $ROOTCG"
"new_cgroup|counter|cgroup.img|P = '$NEWCG/x'; $CPU|in_cg $NEWCG/x; not_there $NEWCG"
"roots_dir|counter|cgroup.img|E.setdefault('dirs', []).append(dict(hierarchy='$CPU_H', path='$ALICECG/evil', uid=0, gid=0, mode=0o6777))|not_roots $ALICECG/evil"
"release_agent|counter|cgroup.img|E.setdefault('dirs', []).append(dict(hierarchy='$CPU_H', path='$ALICECG/ra', uid=$(id -u $ALICE), gid=$(id -g $ALICE), mode=0o755, props=[dict(name='release_agent', value='/tmp/x')]))|not_there $ALICECG/ra"
"unmounted|counter|cgroup.img|[s['members'].append(dict(hierarchy='name=ckptsec$$', path='/x')) for s in E['sets']]|in_cg /x"
)
run_items
# what each refusal said
for n in root_cgroup new_cgroup roots_dir release_agent unmounted; do
	[ -f "$T/alice/$n.err" ] && grep -q "cgroup " "$T/alice/$n.err" ||
		FAILED_ITEMS+=("$n: $(cat "$T/alice/$n.err" 2>/dev/null) (no cgroup named)")
done
not_roots "$ALICECG/evil"
not_there "$NEWCG"
finish
