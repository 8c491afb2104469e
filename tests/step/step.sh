#!/usr/bin/env bash
# ckpt-step under step-harness (its ranks are its children, as after a
# restore); one case per run:
#   step.sh CASE CKPT_STEP HARNESS PMIX_RANK PMIX_CLIENT
# stdio: output forwarded, with and without --label, pending output first
# exit: srun 22.05's exit status; signal: SIGTERM passed to the ranks
# pmix: two ranks fence and finalize through the proxy's server, and fail
#   when the proxy skips the handshake; abort: the others killed, exit 1
# pmix_client: real libpmix clients, connected and handshaken with another
#   server (the harness), served by the proxy's from then on
# relay: a step on two "nodes": one ckpt-step per rank, each with its
#   own server, whose fences go through ckpt-coord --relay (two of them,
#   a PMIx job of mpirun's); real libpmix clients exchange keys across
#   them; another user's connection to a relay is refused
# bad_args: refusals, each one line.
set -uo pipefail
[ -n "${STEP_DEBUG:-}" ] && set -x
CASE=$1 STEP=$2 HARNESS=$3 RANK=$4 CLIENT=$5 COORD=${6:-}
T=$(mktemp -d /tmp/ckpt-step-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: step_$CASE: $*"; for f in "$T"/out "$T"/err; do [ -f "$f" ] && sed "s|^|  ${f##*/}: |" "$f"; done; exit 1; }
base=(--allow-root --uid "$(id -u)" --gid "$(id -g)" --tmpdir "$T")

# run NS SIZE [ckpt-step options] -- CMDS...: sets $rc, output in $T/out, $T/err
run() {
	local ns=$1 size=$2
	shift 2
	timeout 40 "$HARNESS" "$STEP" "${base[@]}" --nspace "$ns" --job-size "$size" "$@" \
		>"$T/out" 2>"$T/err" 251>&-
	rc=$?
}

case_stdio() {
	run s 2 -- 'echo a; echo b >&2; printf partial' 'sleep 0.2; echo c'
	[ $rc = 0 ] || fail "exit $rc"
	[ "$(cat "$T/out")" = "$(printf 'a\npartialc')" ] || [ "$(cat "$T/out")" = "$(printf 'a\nc\npartial')" ] ||
		fail "unlabelled output"
	grep -qx b "$T/err" || fail "stderr not forwarded"
	run s 2 --label -- 'echo a; echo b >&2; printf partial' 'sleep 0.2; echo c'
	[ $rc = 0 ] || fail "labelled: exit $rc"
	sort "$T/out" >"$T/sorted"
	[ "$(cat "$T/sorted")" = "$(printf '0: a\n0: partial\n1: c')" ] || fail "labelled output"
	[ "$(cat "$T/err")" = "0: b" ] || fail "labelled stderr"
	# width of the largest task id, as srun: 12 tasks -> " 0: "
	run s 12 --label -- 'echo a'
	[ "$(cat "$T/out")" = " 0: a" ] || fail "label width"
	# pending output first; a partial line there goes on with the live one
	printf '\x01\x01\x00\x00\x00\x06\x00\x00\x00early\n\x01\x00\x00\x00\x00\x03\x00\x00\x00par\x02\x01\x00\x00\x00\x04\x00\x00\x00oops' >"$T/pend"
	run s 2 --label --pending-out "$T/pend" -- 'echo tial' 'sleep 0.2; echo late'
	[ $rc = 0 ] || fail "pending: exit $rc"
	[ "$(cat "$T/out")" = "$(printf '1: early\n0: partial\n1: late')" ] || fail "pending output"
	[ "$(cat "$T/err")" = "1: oops" ] || fail "pending stderr (partial line gets its newline)"
	# a record that lies about its length is refused, ranks killed
	printf '\x01\x00\x00\x00\x00\xff\x00\x00\x00abc' >"$T/bad"
	run s 2 --pending-out "$T/bad" -- 'exec sleep 30' 'exec sleep 30'
	[ $rc = 1 ] || fail "bad pending file: exit $rc"
	grep -q "bad record" "$T/err" || fail "bad pending file: no error"
}

case_exit() {
	local want cmd0 cmd1
	while read -r want cmd0 cmd1; do
		cmd0=${cmd0//_/ } cmd1=${cmd1//_/ } # the table writes spaces as _
		run e 2 -- "$cmd0" "$cmd1"
		[ "$rc" = "$want" ] || fail "'$cmd0' '$cmd1': exit $rc, srun's is $want"
	done <<-'EOF2'
	0 true true
	3 true exit_3
	5 exit_5 exit_3
	143 kill_-TERM_$$ exit_9
	143 kill_-KILL_$$ kill_-TERM_$$
	137 kill_-KILL_$$ true
	EOF2
	grep -q "srun: error: .*: task 0: Killed" "$T/err" || fail "no srun-like line for a killed task"
	# SIGCHLD ignored by whoever exec'd the proxy: still each rank's status
	timeout 40 perl -e '$SIG{CHLD} = "IGNORE"; exec @ARGV or die' "$HARNESS" "$STEP" "${base[@]}" \
		--nspace e --job-size 2 -- 'sleep 0.3' 'sleep 0.3; exit 3' >"$T/out" 2>"$T/err" 251>&-
	rc=$?
	[ $rc = 3 ] || fail "with SIGCHLD ignored at exec: exit $rc"
}

case_signal() {
	timeout 40 "$HARNESS" "$STEP" "${base[@]}" --nspace g --job-size 2 -- \
		'trap "echo got-term; exit 4" TERM; sleep 30 & wait' 'exec sleep 30' >"$T/out" 2>"$T/err" 251>&- &
	local pid=$!
	sleep 0.5
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	[ $rc = 143 ] || fail "exit $rc after SIGTERM (rank 1 killed by it: 143)"
	grep -qx got-term "$T/out" || fail "rank 0 did not get SIGTERM"
	# every rank ended, a rank's child holds stdout: a signal stops the wait
	timeout 40 "$HARNESS" "$STEP" "${base[@]}" --nspace g --job-size 1 -- \
		'sleep 3 & echo bye' >"$T/out" 2>"$T/err" 251>&- &
	pid=$!
	sleep 0.5
	local start=$SECONDS
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	[ $rc = 0 ] && [ $((SECONDS - start)) -lt 2 ] || fail "exit $rc, $((SECONDS - start)) s after SIGTERM"
	grep -qx bye "$T/out" || fail "output before the signal lost"
	sleep 3 # the rank's child ends
}

case_pmix() {
	run ns.pmix 2 -- "exec $RANK ns.pmix finalize" "exec $RANK ns.pmix finalize"
	[ $rc = 0 ] || fail "fence and finalize: exit $rc"
	[ "$(grep -c finalized "$T/out")" = 2 ] || fail "both ranks did not finalize"
	# without the handshake on their behalf, the server drops the ranks
	CKPT_STEP_FAULT=no-handshake run ns.pmix 2 -- "exec $RANK ns.pmix finalize" \
		"exec $RANK ns.pmix finalize"
	[ $rc != 0 ] || fail "ranks finalized without a handshake: the test proves nothing"
	grep -q "server closed the connection" "$T/err" || fail "no-handshake: not dropped by the server"
	# as the job's user, the proxy's credential is the user's
	if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
		local u g
		u=$(id -u nobody) g=$(id -g nobody)
		chmod 755 "$T"
		mkdir "$T/user" && chown "$u:$g" "$T/user"
		# the programs where nobody reaches them (a checkout may be closed)
		install -d -m 755 "$T/bin"
		install -m 755 "$HARNESS" "$STEP" "$RANK" "$T/bin/"
		local h s r
		h=$T/bin/$(basename "$HARNESS") s=$T/bin/$(basename "$STEP") r=$T/bin/$(basename "$RANK")
		timeout 40 setpriv --reuid "$u" --regid "$g" --clear-groups \
			"$h" "$s" --uid "$u" --gid "$g" --tmpdir "$T/user" --nspace ns.user --job-size 2 -- \
			"exec $r ns.user finalize" "exec $r ns.user finalize" >"$T/out" 2>"$T/err" 251>&-
		rc=$?
		[ $rc = 0 ] || fail "as nobody: exit $rc"
		[ -z "$(ls -A "$T/user")" ] || fail "as nobody: server directory left behind"
		rm -rf "$T/bin"
	fi
	[ -z "$(ls -A "$T" | grep ckpt-step)" ] || fail "server directory left behind"
}

case_pmix_client() {
	timeout 40 "$HARNESS" --old-server ns.real "$STEP" "${base[@]}" --nspace ns.real --job-size 2 \
		--gds hash -- "exec $CLIENT" "exec $CLIENT" >"$T/out" 2>"$T/err" 251>&-
	rc=$?
	[ $rc = 0 ] || fail "real clients: exit $rc"
	[ "$(sort "$T/out")" = "$(printf 'client 0 ok\nclient 1 ok')" ] || fail "real clients did not finish"
	CKPT_STEP_FAULT=no-handshake timeout 40 "$HARNESS" --old-server ns.real "$STEP" "${base[@]}" \
		--nspace ns.real --job-size 2 --gds hash -- "exec $CLIENT" "exec $CLIENT" \
		>"$T/out" 2>"$T/err" 251>&-
	rc=$?
	[ $rc != 0 ] || fail "real clients served without a handshake: the test proves nothing"
	grep -q "client 0: PMIx_Init" "$T/err" || fail "no-handshake: PMIx_Init did not fail"
}

# A relay "node" R: rank R alone under its ckpt-step, fences through
# ckpt-relay.NAME.R.
relay_node() { # NAME R
	timeout 40 "$HARNESS" --first-rank "$2" --old-server ns.relay "$STEP" "${base[@]}" \
		--nspace ns.relay --job-size 2 --gds hash --fence-relay "$1.$2" -- "exec $CLIENT" \
		>"$T/out$2" 2>"$T/err$2" 251>&-
	echo $? >"$T/rc$2"
}

case_relay() {
	[ -x "$COORD" ] || { echo "SKIP: no ckpt-coord"; exit 77; }
	command -v mpirun >/dev/null || { echo "SKIP: no mpirun (OpenMPI)"; exit 77; }
	local name=t$$.$RANDOM r
	timeout 60 mpirun --allow-run-as-root --oversubscribe -n 2 "$COORD" --relay "$name.%r" \
		>"$T/relay" 2>&1 251>&- &
	local mpirun=$!
	# another user reaches the name first: refused, the wait goes on
	# the system's python3 (a shim under /root is not nobody's to run)
	local py=/usr/bin/python3
	if id nobody >/dev/null 2>&1 && [ -x $py ]; then
		for _ in $(seq 100); do grep -q "@ckpt-relay.$name.0" /proc/net/unix && break; sleep 0.1; done
		setpriv --reuid nobody --regid nogroup --clear-groups $py -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect("\0ckpt-relay." + sys.argv[1])
s.recv(1)' "$name.0" 2>/dev/null
	fi
	relay_node "$name" 0 &
	relay_node "$name" 1 &
	wait %2 %3
	wait $mpirun
	local mrc=$?
	for r in 0 1; do
		[ "$(cat "$T/rc$r")" = 0 ] || fail "rank $r's node: exit $(cat "$T/rc$r"): $(cat "$T/err$r")"
		[ "$(cat "$T/out$r")" = "client $r ok" ] || fail "rank $r: $(cat "$T/out$r" "$T/err$r")"
	done
	[ $mrc = 0 ] || fail "the relays: exit $mrc: $(cat "$T/relay")"
	if id nobody >/dev/null 2>&1 && [ -x $py ]; then
		grep -q "relay: a connection of uid $(id -u nobody) .* refused" "$T/relay" ||
			fail "nobody's connection was not refused: $(cat "$T/relay")"
	fi
	echo "ok: ranks 0 and 1 under two proxies fenced and read each other's key through the relays"
}

case_abort() {
	local start=$SECONDS
	run na 3 -- "exec $RANK na abort" 'exec sleep 30' "exec $RANK na finalize"
	[ $rc = 1 ] || fail "exit $rc after an abort"
	[ $((SECONDS - start)) -lt 20 ] || fail "the other ranks were not killed"
	grep -q "rank 0 called PMIx_Abort (status 7): test abort" "$T/err" || fail "abort not reported"
}

case_bad_args() {
	"$STEP" --uid 0 --gid 0 --nspace x --job-size 1 --task 0:1:-1:0:0:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q "refusing to run as root" "$T/out" || fail "root not refused"
	"$STEP" "${base[@]}" --nspace x --job-size 1 --task 0:99999:-1:1:2:-1 --task 0:99998:-1:1:2:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q "given twice" "$T/out" || fail "rank twice not refused"
	"$STEP" "${base[@]}" --nspace x --job-size 1 --task 1:99999:-1:1:2:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q "beyond --job-size" "$T/out" || fail "rank beyond size not refused"
	"$STEP" "${base[@]}" --nspace x --job-size 1 --task 0:0:-1:1:2:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q -- "--task" "$T/out" || fail "pid 0 not refused"
	"$STEP" "${base[@]}" --nspace x --job-size 1 --task 0:99999:-1:1:200:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q -- "--task" "$T/out" || fail "a closed fd not refused"
	"$STEP" "${base[@]}" --uid 12345 --nspace x --job-size 1 --task 0:99999:-1:1:2:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q "the step's user is 12345" "$T/out" || fail "another uid not refused"
	"$STEP" "${base[@]}" --nspace x --job-size 1 --task 0:1:-1:1:2:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q "pid 1 is not a child of ckpt-step" "$T/out" || fail "a pid not ours not refused"
	"$STEP" "${base[@]}" --security kerberos --nspace x --job-size 1 --task 0:99999:-1:1:2:-1 >"$T/out" 2>&1
	[ $? = 1 ] && grep -q -- "--security" "$T/out" || fail "unknown security not refused"
}

case "$CASE" in
stdio | exit | signal | pmix | pmix_client | abort | bad_args | relay) "case_$CASE" ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
echo "PASS: step_$CASE"
