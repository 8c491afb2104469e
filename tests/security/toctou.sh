#!/usr/bin/env bash
# Attack #5: the credentials are checked on the images, then the engine
# reads the images again from alice's directory.  While alice restores
# her set again and again, a loop of hers swaps its core-PID.img between
# the dumped one and one of the same size (so that the manifest passes)
# naming uid 0 and every capability.  Whatever is restored must never run
# as root nor with a capability: each attempt is refused in one line or
# restores a process with exactly alice's powers.
. "$(dirname "$0")/lib.sh" "$@"
start_agent

alice_counter c
alice_dump "$SPAWNED" set
core=$(cd "$T/alice/set" && ls core-*.img)
alice_copy set evil
alice_edit evil core "
size = os.path.getsize(DIR + '/$core')
c = E['creds']
for k in ('uid', 'euid', 'suid', 'fsuid', 'gid', 'egid', 'sgid', 'fsgid'):
    c[k] = 0
c['groups'] = [0]
for k in ('cap_eff', 'cap_prm', 'cap_inh', 'cap_bnd', 'cap_amb'):
    c[k] = $ALL_CAPS
# The same size as the dumped file: pad or cut the comm.
E['comm'] = 'x'
E['comm'] = 'x' * (1 + size - size_of(d))
assert size_of(d) == size, 'cannot match the size'"
as_alice cp "$T/alice/set/$core" "$T/alice/good.img"
as_alice cp "$T/alice/evil/$core" "$T/alice/evil.img"
[ "$(stat -c %s "$T/alice/good.img")" = "$(stat -c %s "$T/alice/evil.img")" ] || fail "sizes differ"

spawn_as $ALICE "$T/alice/swap.log" python3 -c '
import os, sys
d, core = sys.argv[1], sys.argv[2]
tmp = d + "/set/.swap"
while True:
    for src in ("evil.img", "good.img"):
        try: os.unlink(tmp)
        except FileNotFoundError: pass
        os.link(d + "/" + src, tmp)
        os.rename(tmp, d + "/set/" + core)' "$T/alice" "$core"
swapper=$SPAWNED
restored=0 refused=0
for i in $(seq 40); do
	if alice_restore set; then
		restored=$((restored + 1))
		sleep 0.1
		assert_powerless "$RESTORED"
		end_restored
	else
		refused=$((refused + 1))
		assert_refused "$T/alice/set.err" .
	fi
done
kill "$swapper"
echo "40 restores: $restored restored with alice's powers, $refused refused" \
	"($(sort "$T"/alice/set.err | uniq -c | head -3 | xargs))"
echo PASS
