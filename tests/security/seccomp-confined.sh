#!/usr/bin/env bash
# A user whom the site confines with seccomp stays confined through
# ckptd: ckptd is not under her filters, so a crafted image without them,
# restored by her worker, would shed them.  The worker runs under the
# filters of the process that asked, the restored processes inherit them
# (once, not twice), and an image whose processes lack them is refused.
# A filter installed without no_new_privs (by root, before the process
# became hers) is refused at her dump.
. "$(dirname "$0")/lib.sh" "$@"
start_agent
filters_of() { awk '/^Seccomp_filters:/ {print $2}' /proc/"$1"/status; }
confined() { as_alice "$SECT" confine "$@"; }

# Her process, confined from its start.
install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/p.log"
spawn_as $ALICE "$T/alice/p.log" "$SECT" confine "$SECT" sleep
for _ in $(seq 100); do grep -q '^ready' "$T/alice/p.log" && break; sleep 0.1; done
p=$SPAWNED
[ "$(filters_of "$p")" = 1 ] || fail "the confined process has $(filters_of "$p") filters"
confined "$CKPTCTL" dump -t "$p" -D "$T/alice/set" >/dev/null || fail "her confined dump"
wait "$p" 2>/dev/null || true

# Restored by her confined ckptctl: confined exactly once.
confined "$CKPTCTL" restore -D "$T/alice/set" -d --pidfile "$T/alice/set.pid" \
	2>"$T/alice/r.err" >/dev/null || fail "her confined restore: $(cat "$T/alice/r.err")"
RESTORED=$(cat "$T/alice/set.pid")
PIDS+=("$RESTORED")
assert_powerless "$RESTORED"
[ "$(filters_of "$RESTORED")" = 1 ] ||
	fail "the restored process has $(filters_of "$RESTORED") filters, not its 1"
end_restored
echo "restored confined, 1 filter"

# The set without its filter, restored by her confined ckptctl: refused.
alice_copy set shed
alice_edit shed core "E['seccomp_filters'] = []; E['creds']['no_new_privs'] = False"
if confined "$CKPTCTL" restore -D "$T/alice/shed" -d --pidfile "$T/alice/shed.pid" \
	2>"$T/alice/shed.err" >/dev/null; then
	PIDS+=("$(cat "$T/alice/shed.pid")")
	fail "a confined user restored a process without her filters: $(filters_of "$(cat "$T/alice/shed.pid")") filters"
fi
assert_refused "$T/alice/shed.err" "cannot shed"
echo "refused: $(cat "$T/alice/shed.err")"
# Unconfined, she may run it so (she gains nothing she does not have).
alice_restore shed || fail "unconfined restore of her set: $(cat "$T/alice/shed.err")"
[ "$(filters_of "$RESTORED")" = 0 ] || fail "unexpected filters: $(filters_of "$RESTORED")"

# A process that root filtered without no_new_privs before it became
# alice's: only a restore with CAP_SYS_ADMIN could install that filter
# again, so her dump is refused by name, and the process goes on.
install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/nnp.log"
env -C "$T" "$SECT" seccomp-setuid "$(id -u $ALICE)" "$(id -g $ALICE)" >>"$T/alice/nnp.log" 2>&1 \
	</dev/null 251>&- &
p=$!
PIDS+=("$p")
for _ in $(seq 100); do grep -q '^ready' "$T/alice/nnp.log" && break; sleep 0.1; done
grep -q '^ready' "$T/alice/nnp.log" || fail "seccomp-setuid: $(cat "$T/alice/nnp.log")"
if as_alice "$CKPTCTL" dump -t "$p" -D "$T/alice/nnp" 2>"$T/alice/nnp.err" >/dev/null; then
	fail "alice dumped a process with a filter root installed without no_new_privs"
fi
assert_refused "$T/alice/nnp.err" "seccomp filters installed without no_new_privs"
[ "$(status_of "$p" Seccomp)" = 2 ] || fail "the refused process lost its filter or died"
echo "refused: $(cat "$T/alice/nnp.err")"
echo PASS
