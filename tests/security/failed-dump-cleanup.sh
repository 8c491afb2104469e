# Issue 10, attack #2: a failed dump deletes as root.  ckptd used to
# remove every *.img/*.tmp of a failed dump's directory, and the directory,
# as root and by name: alice pointed a dump at a directory of root's or
# of bob's and it failed, or cancelled her own dump, and lost files that
# were not the dump's.  Now a failed dump removes only the entries it
# created, identified by inode, as the user the dump ran as.
. "$(dirname "$0")/lib.sh" "$@"

V=/etc/ckpt-sec-victim.$$
trap 'rm -rf "$V"; cleanup' EXIT
start_agent
alice_counter c
pid=$SPAWNED

# FILES of DIR, one line, sorted (as root: the directory may be 0700).
files_of() { (cd "$1" && find . -mindepth 1 | sort | tr '\n' ' '); }

# 1. Into a directory of root's with root's files: refused, nothing removed.
mkdir -m 755 "$V"
for f in a.img b.tmp keep; do echo root >"$V/$f"; done
if as_alice "$CKPTCTL" dump -R -t "$pid" -D "$V" 2>"$T/e1"; then
	fail "alice dumped into $V"
fi
[ "$(files_of "$V")" = "./a.img ./b.tmp ./keep " ] ||
	fail "root's files removed by alice's failed dump: left $(files_of "$V")"

# 2. Into bob's 0700 directory with his files: refused, nothing removed.
install -d -o $BOB -g $BOB -m 700 "$T/bob/d"
for f in x.img core-1.img y.tmp; do install -o $BOB -g $BOB -m 600 /dev/null "$T/bob/d/$f"; done
if as_alice "$CKPTCTL" dump -R -t "$pid" -D "$T/bob/d" 2>"$T/e2"; then
	fail "alice dumped into bob's directory"
fi
[ "$(files_of "$T/bob/d")" = "./core-1.img ./x.img ./y.tmp " ] ||
	fail "bob's files removed by alice's failed dump: left $(files_of "$T/bob/d")"
[ -d "$T/bob/d" ] || fail "bob's directory removed"

# A dump that takes a while: 1 GiB of alice's memory, non-zero.
install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/big.log"
spawn_as $ALICE "$T/alice/big.log" python3 -c '
import time
b = bytearray(b"\x01") * (1 << 30)
print("ready", flush=True)
time.sleep(600)'
big=$SPAWNED
wait_lines "$T/alice/big.log" 1

# Wait until the dump into DIR has written something besides what alice
# put there herself.
dump_running() { local dir=$1
	for _ in $(seq 500); do
		[ -n "$(find "$dir" -mindepth 1 ! -name x.img 2>/dev/null | head -1)" ] && return 0
		sleep 0.01
	done
	return 1
}

# 3. A cancelled dump of alice's job into its directory, where she keeps
# an x.img of her own: only her file is left.
install -d -o $ALICE -g $ALICE -m 700 "$T/alice/c"
echo mine | as_alice tee "$T/alice/c/x.img" >/dev/null
as_alice "$CKPTCTL" register --job 71001 --dir "$T/alice/c" "$big" ||
	fail "alice cannot register her process"
cancelled=0
for _ in 1 2 3 4 5; do
	as_alice "$CKPTCTL" dump --job 71001 -R >/dev/null 2>"$T/c.err" &
	d=$!
	dump_running "$T/alice/c" || true
	if as_alice "$CKPTCTL" cancel 71001 2>/dev/null; then
		wait "$d" && fail "a cancelled dump succeeded"
		cancelled=1
		break
	fi
	wait "$d" || true
	find "$T/alice/c" -mindepth 1 ! -name x.img -delete
done
[ $cancelled = 1 ] || fail "no cancel landed during a dump"
[ "$(files_of "$T/alice/c")" = "./x.img " ] ||
	fail "the cancelled dump left $(files_of "$T/alice/c")"
[ "$(cat "$T/alice/c/x.img")" = mine ] || fail "alice's own x.img changed"

# 4. ckptd killed (-9) in the middle of a dump into alice's directory
# with her own x.img: the next ckptd removes exactly what the dump made.
install -d -o $ALICE -g $ALICE -m 700 "$T/alice/k"
echo mine | as_alice tee "$T/alice/k/x.img" >/dev/null
killed=0
for _ in 1 2 3 4 5; do
	as_alice "$CKPTCTL" dump -R -t "$big" -D "$T/alice/k" >/dev/null 2>&1 &
	d=$!
	if dump_running "$T/alice/k" && [ ! -e "$T/alice/k/manifest" ]; then
		kill -9 "$AGENT_PID"
		wait "$AGENT_PID" 2>/dev/null || true
		wait "$d" 2>/dev/null || true
		start_agent
		killed=1
		[ -e "$T/alice/k/manifest" ] || break
	fi
	wait "$d" 2>/dev/null || true
	find "$T/alice/k" -mindepth 1 ! -name x.img -delete
	killed=0
done
[ $killed = 1 ] || fail "no kill landed during a dump"
[ "$(files_of "$T/alice/k")" = "./x.img " ] ||
	fail "the restarted ckptd left $(files_of "$T/alice/k")"
[ "$(cat "$T/alice/k/x.img")" = mine ] || fail "alice's own x.img changed"
grep -q "entries an unfinished dump created" "$T/agent.log" || fail "cleanup not logged"
kill -0 "$pid" && kill -0 "$big" || fail "a failed dump killed alice's process"
echo PASS
