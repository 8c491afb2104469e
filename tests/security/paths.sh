# Issue 10, attack #7: root writes where users point.  A job's
# --checkpoint-dir (the Slurm plugin registers it as root) or `register
# --dir` used to be created and written by root: /root/x, or a symlink to
# /etc, got directories owned by the user.  Now a place a user names is
# created only by that user's worker, without following symlinks; root
# prepares only BASE/JOB of its own storage.base, for the job's user.
. "$(dirname "$0")/lib.sh" "$@"

X=/root/ckpt-sec-x.$$
trap 'rm -rf "$X" /etc/72002; cleanup' EXIT
echo "storage.base = $T/base" >"$CKPT_CONF"
start_agent
alice_counter p
pid=$SPAWNED
auid=$(id -u $ALICE)
buid=$(id -u $BOB)

# 1. Root registers alice's job with --dir /root/x (as the plugin does
# with --checkpoint-dir): neither her checkpoint nor root's creates it.
"$CKPTCTL" register --job 72001 --uid "$auid" --dir "$X" "$pid" || fail "register 72001"
as_alice "$CKPTCTL" checkpoint create 72001 >/dev/null 2>&1 && fail "a checkpoint into $X"
"$CKPTCTL" checkpoint create 72001 >/dev/null 2>&1 && fail "root's checkpoint into $X"
[ -e "$X" ] && fail "$X created: $(ls -ld "$X")"
"$CKPTCTL" unregister --job 72001 || fail "unregister 72001"

# 2. --dir a symlink of alice's to /etc.
as_alice ln -s /etc "$T/alice/etc-link"
"$CKPTCTL" register --job 72002 --uid "$auid" --dir "$T/alice/etc-link" "$pid" ||
	fail "register 72002"
as_alice "$CKPTCTL" checkpoint create 72002 >/dev/null 2>&1 && fail "a checkpoint through a symlink to /etc"
[ -e /etc/72002 ] && fail "/etc/72002 created: $(ls -ld /etc/72002)"
"$CKPTCTL" unregister --job 72002 || fail "unregister 72002"

# 3. A symlink swapped into a path alice named, after she named it:
# nothing is written where it points, even where alice could write.
as_alice mkdir "$T/alice/out" "$T/alice/sw"
as_alice "$CKPTCTL" register --job 72003 --uid "$auid" --dir "$T/alice/sw" "$pid" ||
	fail "register 72003"
as_alice rmdir "$T/alice/sw"
as_alice ln -s out "$T/alice/sw"
as_alice "$CKPTCTL" checkpoint create 72003 >/dev/null 2>&1 && fail "a checkpoint through a symlink"
[ -z "$(ls -A "$T/alice/out")" ] || fail "written through a symlink: $(ls -A "$T/alice/out")"
as_alice "$CKPTCTL" unregister --job 72003 || fail "unregister 72003"

# 4. storage.base is root's: BASE/JOB is made for the job's user, the set
# in it written as her.
"$CKPTCTL" register --job 72004 --uid "$auid" "$pid" || fail "register 72004"
as_alice "$CKPTCTL" checkpoint create 72004 >/dev/null || fail "checkpoint into storage.base"
[ "$(stat -c '%U %a' "$T/base")" = "root 711" ] || fail "base: $(stat -c '%U %a' "$T/base")"
[ "$(stat -c '%U %a' "$T/base/72004")" = "$ALICE 700" ] ||
	fail "BASE/JOB: $(stat -c '%U %a' "$T/base/72004")"
[ "$(stat -c %U "$T/base/72004/1/manifest")" = $ALICE ] || fail "the set is not alice's"
"$CKPTCTL" unregister --job 72004 || fail "unregister 72004"

# 5. Bob's job id is not alice's to take: no registration, no BASE/JOB.
install -o $BOB -g $BOB -m 644 /dev/null "$T/bob/p.log"
spawn_as $BOB "$T/bob/p.log" "$COUNTER"
bpid=$SPAWNED
wait_lines "$T/bob/p.log" 2
"$CKPTCTL" register --job 72005 --uid "$buid" "$bpid" || fail "register bob's 72005"
as_alice "$CKPTCTL" register --job 72005 "$pid" 2>/dev/null && fail "alice took bob's job id"
as_alice "$CKPTCTL" dump -R -t "$pid" --job 72005 >/dev/null 2>&1 && fail "alice dumped into bob's job"
as_alice "$CKPTCTL" dump -R -t "$pid" --job 72099 >/dev/null 2>&1 && fail "alice made a job set of an id not hers"
for j in 72005 72099; do
	[ -e "$T/base/$j" ] && [ "$(stat -c %U "$T/base/$j")" != $BOB ] &&
		fail "BASE/$j: $(stat -c %U "$T/base/$j")"
done
as_bob "$CKPTCTL" checkpoint create 72005 >/dev/null || fail "bob's checkpoint of his job"
[ "$(stat -c %U "$T/base/72005/1")" = $BOB ] || fail "bob's set is not his"
kill -0 "$pid" || fail "alice's process died"
echo PASS
