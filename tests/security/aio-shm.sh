#!/usr/bin/env bash
# Crafted AIO rings and shared anonymous memory fds (libckpt/aio.c,
# shmem-fd.c), each edited from a real dump of alice's sec-target aio (a
# ring with two events waiting, 8 KiB of shared anonymous memory, a file
# on fd 3): a ring record the kernel could not have made (head or tail
# past the ring, another nr, bytes not the VMA's, none), an fd onto an
# object the set does not hold, or onto one whose owner is bob, a private
# mapping of anonymous memory (vma_entry.shmem_anon) of an object the set
# does not hold, or named /etc/shadow (the name is never opened).  Each is
# refused in one line, or restored with exactly alice's powers (the
# object of an fd is hers).
. "$(dirname "$0")/lib.sh" "$@"
start_agent
as_alice sh -c "echo alice >$T/alice/f"

alice_target aio aio "$T/alice/f"
alice_dump "$SPAWNED" aio
BOB_UID=$(id -u $BOB)
F="fds = {f['fd']: f['file_id'] for f in read('fdinfo')['entries']}"
RING="[v for v in E['vmas'] if 'aio' in v][0]"
INO=$(as_alice "$CKPTCTL" image decode "$T/alice/aio/mm-$(ls "$T/alice/aio" | sed -n 's/^mm-\([0-9]*\)\.img$/\1/p').img" |
	python3 -c 'import json, sys; print([v["shmid"] for v in json.load(sys.stdin)["entries"][0]["vmas"] if v["kind"] == "VMA_ANON_SHARED"][0])')
[ -n "$INO" ] || fail "no shared anonymous object in alice's set"
refused_only() { fail "pid $P restored: $*"; }
owned_by_alice() { [ "$(stat -Lc %u /proc/"$P"/fd/3)" = "$(id -u $ALICE)" ] ||
	fail "pid $P's fd 3 is $(stat -Lc %U /proc/"$P"/fd/3)'s"; }

ITEMS=(
"ring-head-past|aio|mm|r = $RING; r['aio']['head'] = int(r['aio']['nr'])|refused_only head past the ring|bad AIO ring record"
"ring-tail-huge|aio|mm|r = $RING; r['aio']['tail'] = 1 << 31|refused_only tail 2^31|bad AIO ring record"
"ring-nr-small|aio|mm|r = $RING; r['aio']['nr'] = 1|refused_only nr 1|bad AIO ring record"
"ring-short|aio|mm|r = $RING; r['aio']['ring'] = r['aio']['ring'][:64]|refused_only 32 ring bytes|bad AIO ring record"
"ring-none|aio|mm|r = $RING; r.pop('aio')|refused_only a ring without its record|bad AIO ring record"
"ring-grown|aio|mm|r = $RING; r['end'] = int(r['end']) + (1 << 24)|refused_only a 16 MiB ring|."
"shmem-fd-no-id|aio|files.img|$F; e[fds[3]].update(type='FILE_SHMEM')|refused_only an fd on no object|without its object"
"shmem-fd-bogus|aio|files.img|$F; e[fds[3]].update(type='FILE_SHMEM', shmem_id=1)|refused_only an fd on object 1|."
"priv-anon-bogus|aio|mm|v = [v for v in E['vmas'] if v['kind'] == 'VMA_ANON_SHARED'][0]; v.update(kind='VMA_FILE_PRIVATE', flags=2, shmid=1, shmem_anon=True, path='/dev/zero')|refused_only a private mapping of object 1|."
"priv-anon-shadow|aio|mm|v = [v for v in E['vmas'] if v['kind'] == 'VMA_ANON_SHARED'][0]; v.update(kind='VMA_FILE_PRIVATE', flags=2, shmem_anon=True, path='/etc/shadow')|true"
"shmem-fd-alice|aio|files.img|$F; e[fds[3]].update(type='FILE_SHMEM', shmem_id=$INO, flags=2)|owned_by_alice"
)
run_items

# An fd onto her object, the object bob's: refused (the worker, alice,
# cannot give it away), or hers.
bob_object() {
	alice_copy aio owner-bob
	alice_edit owner-bob files.img "$F; e[fds[3]].update(type='FILE_SHMEM', shmem_id=$INO, flags=2)"
	alice_edit owner-bob "shm-anon-$INO.img" "E.update(uid=$BOB_UID, gid=$BOB_UID)"
	if alice_restore owner-bob; then
		P=$RESTORED
		trap end_restored EXIT
		assert_powerless "$P"
		owned_by_alice
	else
		assert_refused "$T/alice/owner-bob.err" "."
		echo "owner-bob: refused: $(cat "$T/alice/owner-bob.err")"
	fi
}
try owner-bob bob_object
finish
