# The parasite, and with snapshot dumps (issue 13) the snapshot process
# C2, connect back to the dumper on an abstract unix name, which anyone in
# the network namespace sees in /proc/net/unix.  Bob connects to every
# such name he sees, as fast as he can, and says nothing or garbage:
# alice's dump (-R, through ckptd, a snapshot) must take no stranger for
# her parasite or her snapshot; his connections are refused by name and
# the dump succeeds, the memory checksum intact after a restore.  (Before:
# the first connection was taken for the parasite's or C2's and the dump
# failed, so any user could make every other user's checkpoints fail.)
# Args as every security case, memhog (bench/) last.
. "$(dirname "$0")/lib.sh" "$@"
MEMHOG=$T/bin/memhog
[ -x "$MEMHOG" ] || fail "no memhog"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
start_agent

# Bob's connector: every abstract name of a parasite, connected to (and
# kept), with 64 bytes of garbage on every other one.
cat >"$T/stranger.py" <<'P'
import os, socket, sys, time
done, held = {}, []
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        names = [l.split()[-1] for l in open('/proc/net/unix').read().splitlines()[1:]
                 if l.split()[-1].startswith('@ckpt-parasite-')]
    except OSError:
        names = []
    for n in names:
        # bound before it listens: try again until 4 connections hold
        while done.get(n, 0) < 4:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.setblocking(False)
            try:
                s.connect('\0' + n[1:])
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                break
            if done.get(n, 0) % 2:
                try:
                    s.send(os.urandom(64))
                except OSError:
                    pass
            held.append(s)
            done[n] = done.get(n, 0) + 1
    time.sleep(0.0005)
seen = done
print('stranger: %d names, %d connections' % (len(seen), len(held)), flush=True)
P
chmod 644 "$T/stranger.py"
install -o $BOB -g $BOB -m 644 /dev/null "$T/bob/stranger.log"

install -d -o $ALICE -g $ALICE -m 755 "$T/alice/hog"
install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/hog.log"
spawn_as $ALICE "$T/alice/hog.log" "$MEMHOG" 64 "$T/alice/hog"
HOG=$SPAWNED
for _ in $(seq 300); do [ -s "$T/alice/hog/ready" ] && break; sleep 0.1; done
SUM=$(awk '{print $2}' "$T/alice/hog/ready" 2>/dev/null)
[ -n "$SUM" ] || fail "memhog did not start"

refused=0
for i in 1 2 3 4 5; do
	spawn_as $BOB "$T/bob/stranger.log" python3 "$T/stranger.py" 20
	STRANGER=$SPAWNED
	sleep 0.3
	rm -rf "$T/alice/img$i"
	as_alice "$CKPTCTL" dump -R --stats -t "$HOG" -D "$T/alice/img$i" \
		>"$T/dump$i.out" 2>"$T/dump$i.err" ||
		fail "alice's dump $i failed with bob connecting: $(cat "$T/dump$i.err")"
	kill "$STRANGER" 2>/dev/null || true
	wait "$STRANGER" 2>/dev/null || true
	grep -q "^snapshot_tasks: 1" "$T/dump$i.out" ||
		fail "dump $i took no snapshot: $(cat "$T/dump$i.out" "$T/dump$i.err")"
	if cat "$T/dump$i.err" "$T/agent.log" 2>/dev/null | grep -q "connection.* from pid [0-9]* refused"; then
		refused=$i
		break
	fi
done
[ "$refused" -gt 0 ] || fail "bob's connections never reached a snapshot's wait (5 dumps): nothing tested"
echo "dump $refused: $(cat "$T/dump$refused.err" "$T/agent.log" | grep -c "connection.* from pid [0-9]* refused") of bob's connections refused; the dump succeeded"
kill -0 "$HOG" || fail "alice's memhog is gone after the dump"
rm -f "$T/alice/hog/check"
kill -USR1 "$HOG"
for _ in $(seq 100); do [ -s "$T/alice/hog/check" ] && break; sleep 0.1; done
grep -q "^ok $SUM" "$T/alice/hog/check" || fail "memory of the running memhog: $(cat "$T/alice/hog/check")"
kill -9 "$HOG"
rm -f "$T/alice/hog/check"
as_alice "$CKPTCTL" restore -d -D "$T/alice/img$refused" --pidfile "$T/alice/rpid" \
	>"$T/restore.out" 2>&1 || fail "restore: $(cat "$T/restore.out")"
RPID=$(cat "$T/alice/rpid")
PIDS+=("$RPID")
kill -USR1 "$RPID"
for _ in $(seq 100); do [ -s "$T/alice/hog/check" ] && break; sleep 0.1; done
grep -q "^ok $SUM" "$T/alice/hog/check" || fail "memory after the restore: $(cat "$T/alice/hog/check")"
echo "ok: bob's connections to alice's snapshot name were refused; her snapshot dump restored intact"
