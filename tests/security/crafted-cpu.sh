#!/usr/bin/env bash
# Crafted placement fields (docs/placement.md; libckpt/cpu.c cpu_validate,
# placement.c placement_validate), each edited into a real dump of
# alice's and restored through ckptd as alice: every field of the
# inventory's cpu_entry out of range, a flag this CPU lacks, a thread
# bound to a CPU this machine does not have, a memory policy on a node it
# does not have.  Each is refused in one line
# before anything is created; the binding comes back mapped onto a CPU
# alice may use when she asks for --cpu-map=job.
. "$(dirname "$0")/lib.sh" "$@"
start_agent
as_alice sh -c "echo alice >$T/alice/f"
alice_target hold hold "$T/alice/f"
alice_dump "$SPAWNED" hold

refused_only() { fail "pid $P restored: $*"; }
C="c = E['cpu']"
# a flag this CPU lacks (amx_tile, serialize, rdseed, rtm, xop): leaf 7 edx 24, ...
have=",$("$CKPTCTL" cpu-features),"
FLAG=
for f in "7 0 3 24 amx_tile" "7 0 3 14 serialize" "7 0 1 18 rdseed" "7 0 1 11 rtm" \
	"0x80000001 0 2 11 xop"; do
	set -- $f
	case $have in *,$5,*) ;; *) FLAG=$f; break ;; esac
done
set -- ${FLAG:-7 0 3 24 amx_tile}
LACK="$C; w = [x for x in c['features'] if (x['leaf'], x['subleaf'], x['reg']) == ($(($1)), $2, $3)]; w[0]['value'] += 1 << $4"
LACK_NAME=$5
CPU=$(( $(nproc --all) > 5 ? $(nproc --all) : 5 ))
BOUND="w = [0] * ($CPU // 64 + 1); w[$CPU // 64] = 1 << ($CPU % 64)
for t in E['threads']: t['sched']['affinity'] = w"

# (no '|' in an edit: it separates the fields of an item)
# name | base set | file | edit (imgedit.py) | check of the restored process $P | refusal
ITEMS=(
"cpu-word-unknown|hold|inventory.img|$C; c['features'].append(dict(leaf=0x40000000, subleaf=0, reg=0, value=1))|refused_only an unknown CPUID word|feature word .*unknown, repeated"
"cpu-word-bits|hold|inventory.img|$C; c['features'][0]['value'] += 1 << 31|refused_only a word with bits ckpt does not name|feature word .*unknown bits"
"cpu-word-repeated|hold|inventory.img|$C; c['features'].append(dict(c['features'][0]))|refused_only a word twice|feature word .*repeated"
"cpu-words-many|hold|inventory.img|$C; c['features'] = c['features'] * 3|refused_only too many words|feature words, at most"
"cpu-xstate-not-enabled|hold|inventory.img|$C; c['xstate_used'] += 1 << 40|refused_only a component used that XCR0 lacks|cpu: xcr0 .*out of range"
"cpu-xcr0-legacy|hold|inventory.img|$C; c['xcr0'] &= ~2; c['xstate_used'] &= ~2|refused_only an XCR0 without SSE|cpu: xcr0 .*out of range"
"cpu-xsave-huge|hold|inventory.img|$C; c['xsave_size'] = 1 << 20|refused_only a 1 MiB xsave area|cpu: xcr0 .*out of range"
"cpu-layout-wrap|hold|inventory.img|$C; c['xcr0'] = max(c['xcr0'], c['xcr0'] ^ 4); c['xstate_used'] = max(c['xstate_used'], c['xstate_used'] ^ 4); c['layout'] = [x for x in c.get('layout', []) if x['nr'] != 2] + [dict(nr=2, offset=0xffffff00, size=0x1000)]|refused_only a layout past the area|xsave layout entry .*out of range"
"cpu-layout-missing|hold|inventory.img|$C; c['xcr0'] = max(c['xcr0'], c['xcr0'] ^ 4); c['xstate_used'] = max(c['xstate_used'], c['xstate_used'] ^ 4); c['layout'] = []|refused_only a used component without a layout|used without a layout"
"cpu-layout-unused|hold|inventory.img|$C; c.setdefault('layout', []).append(dict(nr=62, offset=576, size=8))|refused_only the layout of a component not used|xsave layout entry .*out of range"
"cpu-numa-words|hold|inventory.img|$C; c['numa_nodes'][0]['cpus'] = [1] * 17|refused_only a node of 1088 CPUs|topology out of range"
"cpu-numa-index|hold|inventory.img|$C; c['numa_nodes'][0]['os_index'] = 5000|refused_only node 5000|topology out of range"
"cpu-job-words|hold|inventory.img|$C; c['job_cpus'] = [1] * 17|refused_only job CPUs past 1024|topology out of range"
"cpu-cores|hold|inventory.img|$C; c['nr_cores'] = c['nr_pus'] + 1|refused_only more cores than PUs|topology out of range"
"cpu-pus|hold|inventory.img|$C; c['nr_pus'] = 1 << 20|refused_only a million PUs|topology out of range"
"cpu-flag-lacking|hold|inventory.img|$LACK|refused_only a set needing $LACK_NAME|cpu: the set needs $LACK_NAME which this CPU lacks"
"cpu-bound-absent|hold|core|$BOUND|refused_only bound to cpu $CPU|pid [0-9]*: thread [0-9]*: bound to CPUs $CPU, not all allowed here"
"mempolicy-absent|hold|core|E['mempolicy_mode'] = 2; E['mempolicy_nodes'] = [1 << 63]|refused_only MPOL_BIND to node 63|pid [0-9]*: memory policy on NUMA nodes 63, not all allowed here"
)
run_items

# The same binding and policy with --cpu-map=job: alice's process comes
# back bound to one CPU she may use, its memory bound to node 0, with her
# powers only.
mapped() {
	alice_copy hold mapped
	alice_edit mapped core "$BOUND
E['mempolicy_mode'] = 2; E['mempolicy_nodes'] = [1 << 63]"
	as_alice "$CKPTCTL" restore -D "$T/alice/mapped" -d --pidfile "$T/alice/mapped.pid" \
		--cpu-map job 2>"$T/alice/mapped.err" >/dev/null || fail "refused: $(cat "$T/alice/mapped.err")"
	P=$(cat "$T/alice/mapped.pid")
	PIDS+=("$P")
	echo "$P" >>"$T/restored.pids"
	assert_powerless "$P"
	cpus=$(status_of "$P" Cpus_allowed_list)
	policy=$(awk '{print $2; exit}' /proc/"$P"/numa_maps)
	kill -9 "$P"
	[ "$policy" = bind:0 ] || fail "memory policy $policy, not bind:0"
	case $cpus in *[-,]*) fail "bound to $cpus, not one CPU" ;; esac
	[ "$cpus" -lt "$(nproc --all)" ] || fail "bound to cpu $cpus, which is not here"
	echo "cpu-map-job: restored bound to cpu $cpus, memory policy $policy"
}
try cpu-map-job mapped
finish
