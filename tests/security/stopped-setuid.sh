#!/usr/bin/env bash
# Attack #9: a refused `dump -s` (--leave-stopped) must not leave another
# user's set-uid child of alice's tree stopped (or traced).  Alice's tree:
# a sec-target of hers whose child runs a set-uid-bob copy of sec-target
# (ruid alice, euid bob: not hers to stop).  Her `dump -s` of the tree is
# refused in one line; afterwards no task of the tree is stopped or
# traced, and the set-uid child still runs.
. "$(dirname "$0")/lib.sh" "$@"
start_agent

cp "$SECT" "$T/suid-target"
chown $BOB:$BOB "$T/suid-target"
chmod 4755 "$T/suid-target"
install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/tree.log"
spawn_as $ALICE "$T/alice/tree.log" bash -c \
	'"$1" sleep >/dev/null & echo "child $!"; exec "$2" sleep' - "$T/suid-target" "$SECT"
parent=$SPAWNED
wait_lines "$T/alice/tree.log" 2
child=$(awk '/^child/ {print $2}' "$T/alice/tree.log")
PIDS+=("$child") # orphaned when cleanup kills its parent: killed too
for _ in $(seq 50); do [ "$(awk '/^Uid:/ {print $3}' /proc/"$child"/status)" = "$(id -u $BOB)" ] &&
	break; sleep 0.1; done
[ "$(awk '/^Uid:/ {print $2, $3}' /proc/"$child"/status)" = "$(id -u $ALICE) $(id -u $BOB)" ] ||
	fail "the child is not set-uid bob: $(grep Uid: /proc/"$child"/status)"
[ "$(awk '{sub(/.*\) /, ""); print $2}' /proc/"$child"/stat)" = "$parent" ] ||
	fail "the set-uid child is not the tree's"

if as_alice "$CKPTCTL" dump -s -t "$parent" -D "$T/alice/img" 2>"$T/alice/dump.err" >/dev/null; then
	fail "alice dumped a tree with bob's set-uid task"
fi
assert_refused "$T/alice/dump.err" .
echo "refused: $(cat "$T/alice/dump.err")"
sleep 0.5
bad=
for p in "$parent" "$child"; do
	who=$([ "$p" = "$child" ] && echo "bob's set-uid child" || echo "alice's parent")
	st=$(status_of "$p" State) tr=$(status_of "$p" TracerPid)
	case "$st" in t|T) bad+="pid $p ($who) left stopped (State $st); " ;; esac
	[ "$tr" = 0 ] || bad+="pid $p ($who) left traced by $tr; "
done
[ -z "$bad" ] || fail "$bad"
kill -0 "$child" || fail "the set-uid child is gone"
echo PASS
