# shellcheck shell=bash
# tests/slurm/lib.sh: what every Slurm test sources.  The cluster is the
# one tests/slurm/CMakeLists.txt starts as a ctest fixture (slurm-cluster
# start); a test finds it down and exits 77 (skipped).  Each test works in
# its own directory and cancels the jobs it submitted when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/ckpt-slurm-$NAME.XXXXXX")
JOBS=()

fail() {
	echo "FAIL: $NAME: $*" >&2
	exit 1
}

AT_EXIT=()
cleanup() {
	local rc=$? cmd
	for cmd in "${AT_EXIT[@]}"; do
		eval "$cmd" || true
	done
	[ ${#JOBS[@]} -gt 0 ] && scancel "${JOBS[@]}" 2>/dev/null
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "$NAME: files kept in $T" >&2; fi
	exit $rc
}
trap cleanup EXIT

# CLUSTER: the script that runs the cluster (tests/slurm2/lib.sh sets
# slurm-cluster2, the two-node one).
CLUSTER=${CLUSTER:-slurm-cluster}
"$ROOT/scripts/$CLUSTER" status >/dev/null || { echo "$NAME: no cluster: skipped"; exit 77; }
chmod 755 "$T"

# at_exit COMMAND: run it (eval) when the test ends, whatever its outcome.
at_exit() { AT_EXIT+=("$1"); }

# submit ARGS...: sbatch --parsable, remembering the job to cancel.
submit() {
	local id
	id=$(sbatch --parsable "$@") || fail "sbatch $* failed"
	JOBS+=("$id")
	echo "$id"
}

# field JOB KEY: a value of `scontrol show job`.
field() {
	scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	for _ in $(seq $((secs * 4))); do
		"$@" && return 0
		sleep 0.25
	done
	fail "timed out after ${secs}s waiting for $what"
}

# release JOB: make a requeued job eligible now (Slurm holds it back a
# while) once the node is free again.
# Not at once: slurmd revoked the credential of the run that just ended,
# and a launch in the same second is refused ("Job credential revoked":
# the job then fails for good) -- the reason for Slurm's own delay (the
# credential lifetime, 121 s).  The update is refused while the requeue
# is still completing (the job shows PENDING already): retry it until the
# job's eligible time has come.
release() {
	wait_for 60 "job $1 to be pending" state_is "$1" PENDING
	sleep 2
	wait_for 60 "job $1 to be eligible now" eligible_now "$1"
}
eligible_now() {
	state_is "$1" PENDING || return 0 # started already
	scontrol update JobId="$1" StartTime=now >/dev/null 2>&1 || return 1
	local at
	at=$(field "$1" EligibleTime)
	[ "$at" = Unknown ] || [ "$at" = None ] || [[ ! "$at" > "$(date +%FT%T)" ]]
}

# lines PATTERN FILE: how many lines of FILE match (0 if none or no file).
lines() { local n; n=$(grep -c "$1" "$2" 2>/dev/null) || true; echo "${n:-0}"; }

# count_script FILE: a job script (mode 755) that says which run it is and
# on which CPUs ("start of run 0 on cpus 0-1"), then counts, "count 1",
# "count 2", ..., one line every 0.2 s until it is killed.
count_script() {
	cat >"$1" <<'S'
#!/bin/bash
echo "start of run ${SLURM_RESTART_COUNT:-0} on cpus $(sed -n 's/^Cpus_allowed_list:\t//p' /proc/self/status)"
i=0
while :; do
	i=$((i + 1))
	echo "count $i"
	sleep 0.2
done
S
	chmod 755 "$1"
}

state_is() { [ "$(field "$1" JobState)" = "$2" ]; }
restarts_is() { [ "$(field "$1" Restarts)" = "$2" ]; }

# use_test_user: $U, the unprivileged user the jobs run as (made if
# missing), and as_user COMMAND... to run as U.
use_test_user() {
	U=ckpt-test1
	id $U >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false $U
}
as_user() { setpriv --reuid="$U" --regid="$U" --init-groups -- "$@"; }

# agent_stop: stop the cluster's ckptd until the test ends.
agent_stop() {
	"$ROOT/scripts/slurm-cluster" agent-stop || fail "cannot stop the cluster's ckptd"
	at_exit "\"$ROOT/scripts/slurm-cluster\" agent-start >/dev/null"
}

# start_ckptd CKPTD CKPTCTL: a ckptd of the test's own on $CKPT_SOCKET (the
# socket the cluster's plugstack.conf names) in place of the cluster's,
# stopped when the test ends (and the cluster's started again); its pid
# in CKPTD_PID, its log $T/ckptd.log.
start_ckptd() {
	: "${CKPT_SOCKET:?}"
	"$ROOT/scripts/slurm-cluster" agent-stop || fail "cannot stop the cluster's ckptd"
	mkdir -p "$(dirname "$CKPT_SOCKET")"
	rm -f "$CKPT_SOCKET"
	"$1" -f -s "$CKPT_SOCKET" -r "$T/run" >>"$T/ckptd.log" 2>&1 &
	CKPTD_PID=$!
	at_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
	at_exit "\"$ROOT/scripts/slurm-cluster\" agent-start >/dev/null"
	CKPTCTL_UP=$2
	wait_for 10 "ckptd to answer" eval '"$CKPTCTL_UP" status >/dev/null 2>&1'
}
