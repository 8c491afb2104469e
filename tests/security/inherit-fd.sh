#!/usr/bin/env bash
# Attack #3: `restore --inherit-fd fd[2]:RES` (or fd[4]) through ckptd
# used to hand the restored process the restore worker's own fds: fd 2,
# the pipe of the agent's log (forged log lines), fd 4, the worker's
# result pipe (forged results: the agent adopts any process as the job's
# tree).  An fd number in --inherit-fd must name the caller's own fd,
# which ckptctl sends along; one the caller has not open is refused.
. "$(dirname "$0")/lib.sh" "$@"
start_agent

as_alice touch "$T/alice/a" "$T/alice/mine2" "$T/alice/mine4"
alice_target hold hold "$T/alice/a"
alice_dump "$SPAWNED" held
# The restored process's fd 3 must be the file alice passed as N.
restore_with() { local n=$1 want=$2
	end_restored
	# (ckptctl's own messages go to held.err, or for fd 2 to the file.)
	# (A restore that got the worker's log pipe never ends: a timeout.)
	timeout 30 setpriv --reuid=$ALICE --regid=$ALICE --init-groups -- \
		sh -c "exec 2>>'$T/alice/held.err' $n>>'$want'; exec '$CKPTCTL' restore \
		-D '$T/alice/held' -d --pidfile '$T/alice/held.pid' --inherit-fd 'fd[$n]:$T/alice/a'" \
		>/dev/null || fail "restore with --inherit-fd fd[$n]: $(cat "$T/alice/held.err" "$want")"
	RESTORED=$(cat "$T/alice/held.pid")
	PIDS+=("$RESTORED")
	local got
	got=$(readlink /proc/"$RESTORED"/fd/3)
	[ "$got" = "$want" ] || fail "fd[$n]: the restored fd 3 is $got, not alice's $want"
	assert_powerless "$RESTORED"
	echo "fd[$n]: fd 3 is alice's $got"
}
restore_with 2 "$T/alice/mine2"
restore_with 4 "$T/alice/mine4"
end_restored
# Nothing of the agent's was written through, and nothing forged.
grep -q "forged" "$T/agent.log" && fail "a line reached the agent's log"

# An fd the caller does not have: one line, nothing restored.
if as_alice "$CKPTCTL" restore -D "$T/alice/held" -d --inherit-fd "fd[7]:$T/alice/a" \
	2>"$T/alice/bad.err" >/dev/null; then
	fail "restored with an fd[7] alice does not have"
fi
assert_refused "$T/alice/bad.err" "fd 7 is not open"
# Specs sent straight to ckptd without fds (a client other than ckptctl):
# refused, the worker's fds never stand in.
out=$(as_alice "$SECT" raw-inherit "$CKPT_SOCKET" "$T/alice/held" "fd[2]:$T/alice/a" || true)
echo "raw: $out"
echo "$out" | grep -q "^reply result -[0-9]" || fail "a restore without its fds: $out"
echo "$out" | grep -q "no fd for each" || fail "unclear refusal: $out"
echo PASS
