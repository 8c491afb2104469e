#!/usr/bin/env bash
# Attack #1, a root shell through ckptd's own socket.  Alice dumps her
# process holding a socketpair (sec-target relay), edits files.img so that
# its fd 3 is a socket connected to the peer named "$CKPT_SOCKET" (the
# other end becomes a socketpair end that has that name, never bound), and
# restores it: the worker connects fd 3 to ckptd, so the kernel records
# the worker's credentials as the connection's peer.  Her restored process
# then sends, on fd 3, a restore request for another set of hers rewritten
# to uid 0 with every capability.
# Alice gains nothing: the first restore is refused (one line), or ckptd
# sees alice as the sender of the forwarded request (SO_PEERCRED of the
# connection fd 3 made) and refuses it, or what it restores runs with
# exactly alice's powers.
. "$(dirname "$0")/lib.sh" "$@"
start_agent
uid=$(id -u $ALICE)

# The set to be restored as root: a counter of hers, uid 0, every capability.
alice_counter c
alice_dump "$SPAWNED" rootimg
alice_edit rootimg core "
c = E['creds']
for k in ('uid', 'euid', 'suid', 'fsuid', 'gid', 'egid', 'sgid', 'fsgid'):
    c[k] = 0
c['groups'] = [0]
for k in ('cap_eff', 'cap_prm', 'cap_inh', 'cap_bnd', 'cap_amb'):
    c[k] = $ALL_CAPS"

# The relay: fd 3 connects to ckptd when restored.
alice_target relay relay "$T/alice/go"
alice_dump "$SPAWNED" relay
alice_edit relay files.img "
fds = {f['fd']: f['file_id'] for f in read('fdinfo')['entries']}
a, b = e[fds[3]]['unix_sk'], e[fds[4]]['unix_sk']
a['state'] = 7            # TCP_CLOSE: a socket of its own, connected by name
a['peer'] = b['ino']
b.pop('peer', None)      # the other end: a socketpair end whose peer is gone
b['name'] = '$CKPT_SOCKET'.encode().hex()"

if ! alice_restore relay; then
	assert_refused "$T/alice/relay.err" .
	grep -q "by uid 0" "$T/agent.log" && fail "ckptd took a request of alice's for root's"
	echo "PASS (refused: $(cat "$T/alice/relay.err"))"
	exit 0
fi
log=$T/alice/relay.log
as_alice sh -c "echo '$T/alice/rootimg' >'$T/alice/go'"
for _ in $(seq 100); do grep -q '^reply' "$log" && break; sleep 0.1; done
grep -q '^reply' "$log" || fail "the relay did not answer: $(cat "$log")"
read -r _ _ result _ pid _ < <(grep '^reply' "$log")
[ "$result" = 0 ] && PIDS+=("$pid")
echo "relay: $(grep -E '^(peer|reply)' "$log" | tr '\n' ' ')" \
	"$([ "$result" = 0 ] && echo "; restored: $(creds_of "$pid")")"
grep -q "restore [0-9]*: $T/alice/rootimg by uid $uid\$" "$T/agent.log" ||
	fail "ckptd did not see alice as the sender of the forwarded request"
[ "$result" = 0 ] && assert_powerless "$pid"
grep -q "by uid 0" "$T/agent.log" && fail "ckptd took a request of alice's for root's"
echo PASS
