#!/usr/bin/env bash
# cpu-craft.sh MODE DIR CKPTCTL: what cr-run's --after-dump exec: runs on
# a dumped set before its restore (docs/placement.md).
#   check   the set records the CPU: the AVX state the test used, and
#           check-restore says this node can restore it
#   flag    the set needs a CPU feature flag this CPU lacks
#   xsave   ... an XSAVE component this node does not enable
#   kernel  ... was dumped on a newer kernel than this one
#   cpu5    the root's threads are bound to cpu 5 (or the first CPU this
#           machine does not have, when it has more)
# flag and xsave also check that check-restore names what is missing.
set -eu
MODE=$1 DIR=$2 CKPTCTL=$3
EDIT="python3 $(dirname "$0")/../security/imgedit.py $CKPTCTL $DIR"
inv() { "$CKPTCTL" image decode "$DIR/inventory.img" |
	python3 -c "import json, sys; c = json.load(sys.stdin)['entries'][0]['cpu']; print($1)"; }

# names check-restore, else fails
named() {
	! "$CKPTCTL" check-restore "$DIR" >"$DIR.check" 2>&1 || { cat "$DIR.check"; exit 1; }
	grep -q "$1" "$DIR.check" || { echo "check-restore does not name $1:"; cat "$DIR.check"; exit 1; }
	cat "$DIR.check"
}

case $MODE in
check)
	# x87/SSE and at least one of AVX, AVX-512 opmask/ZMM
	used=$(inv "c['xstate_used']")
	[ $((used & 0xe4)) != 0 ] || { echo "no AVX state recorded: xstate_used $used"; exit 1; }
	"$CKPTCTL" check-restore "$DIR"
	;;
flag)
	# the first of these this CPU lacks: leaf, subleaf, reg, bit, name
	have=",$("$CKPTCTL" cpu-features),"
	pick=
	for f in "7 0 3 24 amx_tile" "7 0 3 14 serialize" "7 0 1 18 rdseed" "7 0 1 11 rtm" \
		"7 0 3 22 amx_bf16" "7 1 0 21 amx_fp16" "0x80000001 0 2 11 xop"; do
		set -- $f
		case $have in *,$5,*) ;; *) pick=$f; break ;; esac
	done
	[ -n "$pick" ] || { echo "this CPU has every candidate flag"; exit 77; }
	set -- $pick
	$EDIT inventory.img "
w = [x for x in E['cpu']['features'] if (x['leaf'], x['subleaf'], x['reg']) == ($(($1)), $2, $3)]
w[0]['value'] |= 1 << $4"
	named "needs.*$5"
	;;
xsave)
	xcr0=$(inv "c['xcr0']")
	pick=
	for n in 9 17 18 3 19; do [ $(((xcr0 >> n) & 1)) = 1 ] || { pick=$n; break; }; done
	[ -n "$pick" ] || { echo "this node enables every candidate component"; exit 77; }
	$EDIT inventory.img "
c = E['cpu']; b = 1 << $pick
c['xcr0'] |= b; c['xstate_used'] |= b
c.setdefault('layout', []).append(dict(nr=$pick, offset=c['xsave_size'], size=8))
c['xsave_size'] += 8"
	named "xsave component $pick"
	;;
kernel)
	$EDIT inventory.img "E['kernel'] = '999.0.0'"
	"$CKPTCTL" check-restore "$DIR" 2>"$DIR.check"
	grep -q "warning: kernel: the set was dumped on 999.0.0" "$DIR.check" ||
		{ echo "no warning of the kernel:"; cat "$DIR.check"; exit 1; }
	cat "$DIR.check"
	;;
cpu5)
	n=$(nproc --all)
	cpu=$((n > 5 ? n : 5))
	$EDIT core "
w = [0] * ($cpu // 64 + 1); w[$cpu // 64] = 1 << ($cpu % 64)
for t in E['threads']: t['sched']['affinity'] = w"
	;;
*) echo "cpu-craft.sh: unknown mode $MODE"; exit 1 ;;
esac
