# Issue 13, page server: `ckptctl dump --page-server HOST:PORT` sends the
# set to `ckptctl page-server` on another node (here 127.0.0.1), which
# commits it into its --dir; the restore runs from there.  Checked:
#   root:   a direct dump through the server restores with --verify, the
#           memory checksum equal; the dumper's -D has no manifest;
#   alice:  her dump through ckptd to a server she runs, restored by her;
#   refused with one line, nothing written: no credential, a credential
#           of another user (alice to bob's server, alice to root's);
#   failure: the server killed mid-stream: the dump fails in one line,
#           the job runs on with its memory intact, no committed set.
#   refused by name: --parent and --job with --page-server.
# Args as every security case, memhog (bench/) last.
. "$(dirname "$0")/lib.sh" "$@"
MEMHOG=$T/bin/memhog
# munged is the node's (scripts/slurm-cluster starts one); none: nothing to test.
munge -n >/dev/null 2>&1 || { echo "SKIP: munged does not answer"; exit 77; }
[ -x "$MEMHOG" ] || fail "no memhog"
SERVERS=()
trap 'for s in "${SERVERS[@]}"; do kill -9 "$s" 2>/dev/null || true; done; cleanup' EXIT

# USER DIR NAME: a page server of USER ("root": ourselves) writing into
# DIR, on a free port of 127.0.0.1: its pid in SERVER, its port in PORT,
# its output in $T/NAME.out and .err.
start_server() { local u=$1 dir=$2 name=$3
	install -o "$u" -g "$u" -m 644 /dev/null "$T/$name.out"
	install -o "$u" -g "$u" -m 644 /dev/null "$T/$name.err"
	if [ "$u" = root ]; then
		"$CKPTCTL" page-server --port 0 --address 127.0.0.1 --dir "$dir" \
			>"$T/$name.out" 2>"$T/$name.err" </dev/null 251>&- &
	else
		setpriv --reuid="$u" --regid="$u" --init-groups -- "$CKPTCTL" page-server \
			--port 0 --address 127.0.0.1 --dir "$dir" \
			>"$T/$name.out" 2>"$T/$name.err" </dev/null 251>&- &
	fi
	SERVER=$!
	SERVERS+=("$SERVER")
	for _ in $(seq 100); do grep -q '^listening on' "$T/$name.out" && break; sleep 0.05; done
	PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/$name.out")
	[ -n "$PORT" ] || fail "page server $name did not start: $(cat "$T/$name.err")"
}

# USER DIR MIB: a memhog of USER (its files in DIR): pid in HOG, checksum in SUM.
start_hog() { local u=$1 dir=$2
	install -d -o "$u" -g "$u" -m 755 "$dir"
	install -o "$u" -g "$u" -m 644 /dev/null "$dir.log"
	spawn_as "$u" "$dir.log" "$MEMHOG" "$3" "$dir"
	HOG=$SPAWNED
	for _ in $(seq 300); do [ -s "$dir/ready" ] && break; sleep 0.1; done
	SUM=$(awk '{print $2}' "$dir/ready" 2>/dev/null)
	[ -n "$SUM" ] || fail "memhog did not start"
}

# PID DIR: memhog PID checks its memory against the checksum it started with.
hog_intact() { local pid=$1 dir=$2
	rm -f "$dir/check"
	kill -USR1 "$pid"
	for _ in $(seq 100); do [ -s "$dir/check" ] && break; sleep 0.1; done
	grep -q "^ok $SUM" "$dir/check" 2>/dev/null || fail "memory of $pid: $(cat "$dir/check" 2>&1)"
}

# ---- root: a direct dump through the server, restored from its dir ----
start_hog root "$T/h1" 64
start_server root "$T/srv1" s1
CKPT_SOCKET=none "$CKPTCTL" dump -t "$HOG" -D "$T/meta1" --page-server "127.0.0.1:$PORT" \
	2>"$T/d1.err" || fail "dump through the page server: $(cat "$T/d1.err")"
wait "$HOG" 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.05; done
kill -0 "$SERVER" 2>/dev/null && fail "the server did not exit after its set"
[ -f "$T/srv1/manifest" ] || fail "no manifest on the server"
[ -e "$T/meta1/manifest" ] && fail "the dumper's metadata dir looks like a set"
ls "$T/meta1" | grep -q '^pages-' && fail "pages written locally"
ls "$T/srv1" | grep -q '^pages-' || fail "no pages on the server"
CKPT_SOCKET=none "$CKPTCTL" restore -D "$T/srv1" -d --verify --pidfile "$T/r1.pid" \
	2>"$T/r1.err" || fail "restore from the server's dir: $(cat "$T/r1.err")"
R=$(cat "$T/r1.pid")
PIDS+=("$R")
hog_intact "$R" "$T/h1"
kill -9 "$R"
echo "root: dumped through the page server, restored, memory equal"

# ---- refused by name ----
CKPT_SOCKET=none "$CKPTCTL" dump -t 1 -D "$T/x" --page-server 127.0.0.1:1 --parent "$T/srv1" \
	2>"$T/p.err" && fail "--parent with --page-server"
assert_refused "$T/p.err" "page-server.*--parent"
"$CKPTCTL" dump --job 7 -t 1 --page-server 127.0.0.1:1 2>"$T/j.err" && fail "--job with --page-server"
assert_refused "$T/j.err" "page-server"

start_agent

# ---- alice through ckptd, to a server she runs ----
install -d -o $ALICE -g $ALICE -m 700 "$T/alice/srv"
start_hog $ALICE "$T/alice/h2" 32
start_server $ALICE "$T/alice/srv/set" s2
as_alice "$CKPTCTL" dump -t "$HOG" -D "$T/alice/meta2" --page-server "127.0.0.1:$PORT" \
	2>"$T/d2.err" || fail "alice's dump through the page server: $(cat "$T/d2.err")"
[ "$(stat -c %U "$T/alice/srv/set/manifest")" = $ALICE ] || fail "the set is not alice's"
as_alice "$CKPTCTL" restore -D "$T/alice/srv/set" -d --verify --pidfile "$T/alice/r2.pid" \
	2>"$T/r2.err" >/dev/null || fail "alice's restore: $(cat "$T/r2.err")"
R=$(cat "$T/alice/r2.pid")
PIDS+=("$R")
hog_intact "$R" "$T/alice/h2"
kill -9 "$R"
echo "alice: dumped through ckptd and the page server, restored, memory equal"

# ---- refusals: nothing written, the server still there ----
install -d -o $BOB -g $BOB -m 700 "$T/bob/srv"
start_server $BOB "$T/bob/srv/set" s3
# No credential: not a frame at all, then a frame that is not AUTH.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'hello, let me write\n' >&3
cat <&3 >/dev/null 2>&1 || true
exec 3>&-
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf '\002\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\004\0\0\0\0\0\0\0abcd' >&3
cat <&3 >/dev/null 2>&1 || true
exec 3>&-
[ "$(grep -c 'refused: the first message must be a munge credential' "$T/s3.err")" = 2 ] ||
	fail "no-credential connections not refused in one line: $(cat "$T/s3.err")"
# A credential of alice's, to bob's server.
alice_counter c3
as_alice "$CKPTCTL" dump -R -t "$SPAWNED" -D "$T/alice/meta3" --page-server "127.0.0.1:$PORT" \
	2>"$T/d3.err" && fail "alice dumped into bob's page server"
assert_refused "$T/d3.err" "uid $(id -u $ALICE) may not write here"
grep -q "refused: uid $(id -u $ALICE) may not write here" "$T/s3.err" || fail "bob's server: $(cat "$T/s3.err")"
[ -e "$T/bob/srv/set" ] && fail "bob's server wrote for a refused connection"
kill -0 "$SERVER" || fail "bob's server gave up"
kill -0 "$SPAWNED" || fail "alice's counter did not survive the refused dump"
# Alice to root's server: root's server takes root's sets only.
start_server root "$T/srv4" s4
as_alice "$CKPTCTL" dump -R -t "$SPAWNED" -D "$T/alice/meta4" --page-server "127.0.0.1:$PORT" \
	2>"$T/d4.err" && fail "alice dumped into root's page server"
assert_refused "$T/d4.err" "may not write here"
[ -e "$T/srv4" ] && fail "root's server wrote for alice"
echo "refused: no credential, another user's, a user's to root's server"

# ---- hostile frames from an authenticated peer: nothing written ----
# FRAMES (python expression of a list of (type, name, offset, data)) sent
# after a good credential; the server's one-line reason must match REGEX.
hostile() { local frames=$1 pat=$2
	start_server root "$T/srv6" s6
	python3 - "$PORT" "$(munge -n)" "$frames" <<'PY' || fail "hostile client: $frames"
import socket, struct, sys
port, cred, frames = int(sys.argv[1]), sys.argv[2].encode(), eval(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
def frame(t, name=b"", off=0, data=b""):
    s.sendall(struct.pack("<IIQII", t, len(name), off, len(data), 0) + name + data)
def reply():
    h = b""
    while len(h) < 24:
        c = s.recv(24 - len(h))
        if not c: return None
        h += c
    t, nl, off, ln, _ = struct.unpack("<IIQII", h)
    return struct.unpack("<q", struct.pack("<Q", off))[0]
frame(1, data=cred)
assert reply() == 0, "credential refused"
try:
    for f in frames: frame(*f)
    r = reply()
except OSError:
    r = -1
sys.exit(0 if r is None or r < 0 else 1)
PY
	for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; grep -q "not committed" "$T/s6.err" && break; sleep 0.05; done
	grep -qE "$pat" "$T/s6.err" || fail "hostile $frames: $(cat "$T/s6.err")"
	[ -e "$T/srv6" ] && [ -n "$(ls -A "$T/srv6")" ] && fail "hostile $frames: files left: $(ls -A "$T/srv6")"
	[ -e "$T/evil" ] && fail "hostile $frames: wrote outside its directory"
	kill -9 "$SERVER" 2>/dev/null || true
	rm -rf "$T/srv6"
}
hostile '[(2, b"../evil", 0, b"x")]' "not one of a set"
hostile '[(2, b"manifest", 0, b"x")]' "not one of a set"
hostile '[(2, b"a.img", 1 << 50, b"x")]' "a bad data frame"
hostile '[(2, b"a.img", 0, b"x"), (3, b"", 0, b"not a manifest")]' "the manifest"
hostile '[(7, b"", 0, b"")]' "unknown frame"
echo "hostile frames of an authenticated peer: refused, nothing left"

# ---- the dumper killed mid-stream: the server removes what it got ----
start_hog root "$T/h7" 256
start_server root "$T/srv7" s7
CKPT_SOCKET=none "$CKPTCTL" dump -t "$HOG" -D "$T/meta7" --page-server "127.0.0.1:$PORT" \
	2>/dev/null 251>&- &
D=$!
for _ in $(seq 600); do ls "$T/srv7" 2>/dev/null | grep -q '^pages-' && break; sleep 0.01; done
kill -9 "$D"
for _ in $(seq 100); do grep -q "not committed" "$T/s7.err" && break; sleep 0.05; done
grep -q "set not committed: the dumper went away" "$T/s7.err" || fail "server: $(cat "$T/s7.err")"
[ -e "$T/srv7" ] && fail "files of a vanished dumper left: $(ls -A "$T/srv7")"
kill -0 "$SERVER" || fail "the server ended with its dumper"
kill -0 "$HOG" || fail "the job did not survive its killed dump"
hog_intact "$HOG" "$T/h7"
kill -9 "$SERVER" "$HOG"
echo "dumper killed mid-stream: nothing left on the server, job intact"

# ---- the server killed mid-stream ----
start_hog root "$T/h5" 256
start_server root "$T/srv5" s5
CKPT_SOCKET=none "$CKPTCTL" dump -t "$HOG" -D "$T/meta5" --page-server "127.0.0.1:$PORT" \
	2>"$T/d5.err" &
D=$!
for _ in $(seq 600); do ls "$T/srv5" 2>/dev/null | grep -q '^pages-' && break; sleep 0.01; done
# Stopped, so that the dumper is surely in the middle of the stream.
kill -STOP "$SERVER"
sleep 0.5
kill -9 "$SERVER"
rc=0
wait "$D" || rc=$?
[ $rc != 0 ] || fail "the dump succeeded with its page server killed"
assert_refused "$T/d5.err" "page server 127.0.0.1:$PORT: .*(went away|closed|reset)"
[ -e "$T/srv5/manifest" ] && fail "a manifest on the killed server"
[ -e "$T/meta5/manifest" ] && fail "a manifest in the dumper's dir"
kill -0 "$HOG" || fail "the job did not survive the failed dump"
grep -q '^State:.*[tT]' /proc/"$HOG"/status && fail "the job was left stopped"
hog_intact "$HOG" "$T/h5"
echo "server killed mid-stream: dump failed ($(cat "$T/d5.err")), job intact"
echo PASS
