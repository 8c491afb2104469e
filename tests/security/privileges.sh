#!/usr/bin/env bash
# Attack #6: crafted images ask for what only root may set: nice -20,
# SCHED_FIFO 99 (with RLIMIT_RTPRIO 0), realtime I/O priority, securebits
# (CAP_SETPCAP), a listener on port 81.  One crafted set per item, edited
# from a real dump of alice's; each is refused in one line, or restored
# without the privilege (and with exactly alice's powers).
. "$(dirname "$0")/lib.sh" "$@"
start_agent

alice_counter c
alice_dump "$SPAWNED" counter
port=$((20000 + RANDOM % 20000))
alice_target ls listen "$port"
alice_dump "$SPAWNED" listener

nice_of() { awk '{sub(/.*\) /, ""); print $17}' /proc/"$1"/stat; }
no_nice() { [ "$(nice_of "$P")" = 0 ] || fail "restored with nice $(nice_of "$P")"; }
no_fifo() { chrt -p "$P" | grep -q "policy: SCHED_OTHER" || fail "restored with $(chrt -p "$P" | tr '\n' ' ')"; }
no_rt_io() { ionice -p "$P" | grep -qi realtime && fail "restored with I/O class $(ionice -p "$P")"; true; }
no_securebits() {
	local b
	b=$(dumped_field "$P" creds | python3 -c 'import json, sys; print(json.load(sys.stdin).get("securebits", 0))')
	[ "$b" = 0 ] || fail "restored with securebits $b"
}
no_port81() {
	ss -ltnH 'sport = :81' | grep -q . && fail "restored listening on port 81: $(ss -ltnpH 'sport = :81')"
	true
}

# name | base set | file | edit (imgedit.py) | check of a restored process
ITEMS=(
"securebits|counter|core|E['creds']['securebits'] = 0x3|no_securebits"
"nice|counter|core|for t in E['threads']: t['sched']['nice'] = -20|no_nice"
"fifo|counter|core|for t in E['threads']: t['sched'].update(policy=1, priority=99)
for r in E['rlimits']:
    if r['resource'] == 14: r['cur'] = r['max'] = 0|no_fifo"
"ioprio|counter|core|for t in E['threads']: t['sched']['ioprio'] = 1 << 13|no_rt_io"
"port81|listener|files.img|[f['inet_sk'].update(src_port=81) for f in e if f.get('inet_sk')]|no_port81"
)
run_items
finish
