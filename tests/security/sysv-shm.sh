#!/usr/bin/env bash
# Attack #4: bob's System V shared memory segment (0600, his key) is
# attached by a crafted image.  Alice's process with a segment of hers
# (sec-target shm) is dumped; the set is edited so that the segment is
# bob's (his id, key, size; the files renamed after his id, no pages of
# alice's to write into it).  Alice gains nothing: the restore is refused
# in one line, or it runs with her powers without bob's segment attached
# (his shm_nattch stays 0) and without reading bob's data; bob's data is
# unchanged either way.
. "$(dirname "$0")/lib.sh" "$@"
start_agent

shm_py='import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
def seg(key, create):
    i = libc.shmget(key, 4096, (0o1000 if create else 0) | 0o600)
    if i < 0: sys.exit("shmget: %d" % ctypes.get_errno())
    p = libc.shmat(i, None, 0)
    if p in (None, 2**64 - 1): sys.exit("shmat: %d" % ctypes.get_errno())
    return i, p'
# Bob's segment: his secret, attached by nobody now.
bkey=$((0x5ec0000 + RANDOM))
bid=$(as_bob python3 -c "$shm_py
i, p = seg($bkey, 1)
ctypes.memmove(p, b'bob-secret\n', 11)
libc.shmdt(ctypes.c_void_p(p))
print(i)") || fail "bob's segment"
trap 'ipcrm -m "$bid" 2>/dev/null; cleanup' EXIT
bob_data() { python3 -c "$shm_py
i, p = seg($bkey, 0)
print(ctypes.string_at(p, 10).decode(errors='replace'))
libc.shmdt(ctypes.c_void_p(p))"; }
nattch() { awk -v id="$bid" '$2 == id {print $7}' /proc/sysvipc/shm; }
[ "$(bob_data)" = bob-secret ] && [ "$(nattch)" = 0 ] || fail "bob's segment not ready"

alice_target shm shm $((bkey + 1)) alice-data
aid=$(awk '/^ready id/ {print $3}' "$T/alice/shm.log")
trap 'ipcrm -m "$bid" 2>/dev/null; ipcrm -m "$aid" 2>/dev/null; cleanup' EXIT
# (A user's dump of a process with a System V segment fails today: the
# engine opens a helper's memory with her fs uid.  Root dumps it for her,
# as for a set given to her.)
if ! as_alice "$CKPTCTL" dump -t "$SPAWNED" -D "$T/alice/shm" >/dev/null 2>"$T/alice/dump.err"; then
	echo "alice's own dump failed ($(cat "$T/alice/dump.err")): root dumps it"
	"$CKPTCTL" dump -t "$SPAWNED" -D "$T/alice/shm" >/dev/null || fail "root's dump"
	chown -R $ALICE:$ALICE "$T/alice/shm"
fi
wait "$SPAWNED" 2>/dev/null || true
for f in shm-sysv pagemap-shm-sysv pages-shm-sysv; do
	as_alice mv "$T/alice/shm/$f-$aid.img" "$T/alice/shm/$f-$bid.img"
done
alice_edit shm manifest "
for f in E['files']: f['name'] = f['name'].replace('-sysv-$aid.img', '-sysv-$bid.img')"
alice_edit shm shm-sysv-$bid.img "E.update(id=$bid, key=$bkey)"
alice_edit shm pagemap-shm-sysv-$bid.img "d['entries'] = []"
alice_edit shm mm "[v.update(shmid=$bid) for v in E['vmas'] if v.get('shmid') == $aid]"

lines=$(wc -l <"$T/alice/shm.log")
if alice_restore shm; then
	sleep 0.5
	echo "restored as pid $RESTORED: $(tail -1 "$T/alice/shm.log"), bob's nattch $(nattch)"
	assert_powerless "$RESTORED"
	bad=
	[ "$(nattch)" = 0 ] || bad+="bob's segment attached $(nattch) times after alice's restore; "
	tail -n +"$((lines + 1))" "$T/alice/shm.log" | grep -q bob-secret &&
		bad+="alice's restored process reads bob's segment: $(tail -1 "$T/alice/shm.log"); "
	[ -z "$bad" ] || fail "$bad"
else
	assert_refused "$T/alice/shm.err" .
	echo "refused: $(cat "$T/alice/shm.err")"
fi
[ "$(bob_data)" = bob-secret ] || fail "bob's segment now holds: $(bob_data)"
echo PASS
