# tests/security/lib.sh: what every attack test shares.  A real ckptd on a
# private socket and run directory, two unprivileged users (ckpt-alice,
# the attacker, and ckpt-bob, her victim), binaries copied where users can
# run them.  Sourced by each case script:
#   . "$(dirname "$0")/lib.sh" "$@"     (args: CKPTD CKPTCTL COUNTER BUSY)
# then: start_agent; as_alice CMD...; spawn_as USER LOG CMD...; fail MSG.
# Extra args (helper programs such as sec-target) are copied to $T/bin
# too and stay in "$@".
set -euo pipefail
CKPTD=$1 CKPTCTL=$2 COUNTER=$3 BUSY=$4
shift 4

. "$(dirname "${BASH_SOURCE[0]}")/../lib/agent-env.sh"
agent_env ckpt-sec
user_copy CKPTD CKPTCTL COUNTER BUSY
for extra in "$@"; do [ -f "$extra" ] && install -m 755 "$extra" "$T/bin/"; done
install -m 755 "$(dirname "${BASH_SOURCE[0]}")/imgedit.py" "$T/bin/"
AGENT_PID=
PIDS=()
ALICE=ckpt-alice BOB=ckpt-bob

cleanup() {
	for p in "${PIDS[@]}" $(cat "$T/restored.pids" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null || true
	done
	[ -n "$AGENT_PID" ] && kill -9 "$AGENT_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; [ -f "$T/agent.log" ] && tail -20 "$T/agent.log"; exit 1; }

ensure_user() {
	id "$1" >/dev/null 2>&1 || useradd --system --create-home --home-dir "/var/lib/$1" \
		--shell /bin/false "$1"
	# The attackers' homes: theirs alone.
	install -d -o "$1" -g "$1" -m 700 "/var/lib/$1"
}
ensure_user $ALICE
ensure_user $BOB
install -d -o $ALICE -g $ALICE -m 700 "$T/alice"
install -d -o $BOB -g $BOB -m 700 "$T/bob"

start_agent() {
	"$CKPTD" -f -s "$CKPT_SOCKET" -r "$T/run" "$@" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 100); do
		"$CKPTCTL" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "ckptd did not start"
}

as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups -- env -C "$T" "$@"; }
as_alice() { as_user $ALICE "$@"; }
as_bob() { as_user $BOB "$@"; }

# USER LOG CMD...: in the background; the process itself in SPAWNED.
spawn_as() { local u=$1 log=$2; shift 2
	setpriv --reuid="$u" --regid="$u" --init-groups -- env -C "$T" "$@" >>"$log" 2>&1 \
		</dev/null 251>&- &
	SPAWNED=$!
	PIDS+=("$SPAWNED"); }

# Wait until FILE has at least N lines.
wait_lines() {
	for _ in $(seq 100); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "$1: fewer than $2 lines"
}

# A counter of alice's, logging to $T/alice/NAME.log: pid in SPAWNED.
alice_counter() {
	install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/$1.log"
	spawn_as $ALICE "$T/alice/$1.log" "$COUNTER"
	wait_lines "$T/alice/$1.log" 2
}

# The credentials of a running process: "uid euid suid fsuid / capeff".
creds_of() {
	awk '/^Uid:/ {u=$2" "$3" "$4" "$5} /^CapEff:/ {c=$2} /^CapPrm:/ {p=$2}
	     END {print u, c, p}' /proc/"$1"/status
}

# Alice gained nothing: PID (when given) runs as alice with no capability
# (none effective, permitted, inheritable or ambient), her gids and groups.
assert_powerless() {
	local uid gid c g
	uid=$(id -u $ALICE) gid=$(id -g $ALICE)
	c=$(creds_of "$1")
	[ "$c" = "$uid $uid $uid $uid 0000000000000000 0000000000000000" ] ||
		fail "pid $1 runs with more than alice's powers: $c"
	g=$(awk '/^Gid:/ {print $2, $3, $4, $5} /^Groups:/ {$1 = ""; print}
		 /^CapInh:|^CapAmb:/ {print $2}' /proc/"$1"/status | xargs)
	[ "$g" = "$gid $gid $gid $gid $(id -G $ALICE | tr ' ' '\n' | sort -n | xargs) 0000000000000000 0000000000000000" ] ||
		fail "pid $1 has more than alice's groups or capabilities: gids, groups, inh, amb: $g"
}

# A one-line refusal: the command failed, printed exactly one line, which
# matches the pattern.
assert_refused() { local err=$1 pat=$2
	[ "$(grep -c . "$err")" = 1 ] || fail "not one line: $(cat "$err")"
	grep -qE "$pat" "$err" || fail "unclear refusal: $(cat "$err")"
}

# The attacker's tools: a sec-target of hers (MODE ARGS...), logging to
# $T/alice/NAME.log, its pid in SPAWNED once it printed "ready".
SECT=$T/bin/sec-target
alice_target() { local name=$1; shift
	install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/$name.log"
	spawn_as $ALICE "$T/alice/$name.log" "$SECT" "$@"
	for _ in $(seq 100); do grep -q '^ready' "$T/alice/$name.log" && return 0; sleep 0.1; done
	fail "sec-target $*: not ready: $(cat "$T/alice/$name.log")"
}

# Alice dumps PID into $T/alice/DIR (the process goes away).
alice_dump() {
	as_alice "$CKPTCTL" dump -t "$1" -D "$T/alice/$2" >/dev/null || fail "alice's dump of $1"
	wait "$1" 2>/dev/null || true
}

# Alice edits FILE of her set $T/alice/DIR with python CODE (imgedit.py:
# d, e, E, ROOT), checksums and manifest fixed up.
alice_edit() {
	as_alice python3 "$T/bin/imgedit.py" "$CKPTCTL" "$T/alice/$1" "$2" "$3" ||
		fail "edit of $1/$2 failed"
}

# Alice restores $T/alice/DIR detached, stderr to $T/alice/DIR.err.  0 and
# the root's pid in RESTORED (added to PIDS), or 1 (RESTORED empty).
alice_restore() {
	RESTORED=
	rm -f "$T/alice/$1.pid"
	if as_alice "$CKPTCTL" restore -D "$T/alice/$1" -d --pidfile "$T/alice/$1.pid" \
		2>"$T/alice/$1.err" >/dev/null; then
		RESTORED=$(cat "$T/alice/$1.pid")
		PIDS+=("$RESTORED")
		echo "$RESTORED" >>"$T/restored.pids"
		return 0
	fi
	return 1
}

# Alice gained nothing from restoring DIR: a one-line refusal (matching
# REGEX), or a restored process with exactly her powers.  The restored pid
# (if any) stays in RESTORED for the caller's further checks.
assert_nothing_gained() { local dir=$1 pat=${2:-.}
	if alice_restore "$dir"; then
		assert_powerless "$RESTORED"
	else
		assert_refused "$T/alice/$dir.err" "$pat"
	fi
}

# A field of /proc/PID/status.
status_of() { awk -v f="$2:" '$1 == f {print $2}' /proc/"$1"/status; }

# Every capability root has here (a crafted set asks for all of them).
ALL_CAPS=$((16#$(awk '/^CapBnd:/ {print $2}' /proc/self/status)))

# Copy alice's set $T/alice/FROM to $T/alice/TO (as her).
alice_copy() { rm -rf "$T/alice/$2"; as_alice cp -a "$T/alice/$1" "$T/alice/$2"; }

# End alice's restored process RESTORED (so that the next copy of the
# same set can take its pids again).
end_restored() {
	[ -n "${RESTORED:-}" ] || return 0
	kill -9 "$RESTORED" 2>/dev/null || true
	for _ in $(seq 50); do
		[ -e /proc/"$RESTORED" ] && ! grep -q '^State:.*Z' /proc/"$RESTORED"/status 2>/dev/null &&
			sleep 0.1 || break
	done
	RESTORED=
}

# What the engine itself sees of running PID: root dumps it (left
# running) and prints the JSON of its core_entry's FIELD (creds, ...).
dumped_field() {
	local i
	for i in 1 2 3 4 5; do  # (a process just restored may not take a parasite yet)
		rm -rf "$T/redump"
		"$CKPTCTL" dump -R -t "$1" -D "$T/redump" >/dev/null 2>"$T/redump.err" && break
		[ $i = 5 ] && fail "root's dump of $1: $(cat "$T/redump.err")" >&2
		sleep 0.3
	done
	"$CKPTCTL" image decode "$T/redump/core-$1.img" |
		python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["entries"][0].get(sys.argv[1])))' "$2"
}

# Many items in one case: `try NAME CMD...` runs CMD in a subshell (a
# fail there ends only that item, processes it restored are still ended
# by cleanup), `finish` fails the case naming every item that failed.
FAILED_ITEMS=()
try() { local name=$1; shift
	if ! ("$@"); then FAILED_ITEMS+=("$name"); fi
}
finish() {
	[ ${#FAILED_ITEMS[@]} = 0 ] || fail "${#FAILED_ITEMS[@]} item(s) failed: ${FAILED_ITEMS[*]}"
	echo PASS
}

# ITEMS: "name|base set|image file|edit (imgedit.py)|check[|refusal]", one
# crafted set each, made from alice's set BASE; the restore is refused in
# one line (matching the regex REFUSAL, when given), or the restored
# process $P has exactly alice's powers and passes CHECK (evaluated).
# ONLY=name runs one item.
crafted_item() {
	local name base file edit check refusal
	IFS='|' read -r -d '' name base file edit check refusal <<<"$1" || true
	check=${check%$'\n'}
	refusal=${refusal%$'\n'}
	alice_copy "$base" "$name"
	alice_edit "$name" "$file" "$edit"
	if alice_restore "$name"; then
		P=$RESTORED
		trap end_restored EXIT
		echo "$name: restored as pid $P: $(creds_of "$P")"
		assert_powerless "$P"
		eval "$check"
	else
		assert_refused "$T/alice/$name.err" "${refusal:-.}"
		echo "$name: refused: $(cat "$T/alice/$name.err")"
	fi
}
run_items() {
	local item
	for item in "${ITEMS[@]}"; do
		[ -n "${ONLY:-}" ] && [ "${item%%|*}" != "$ONLY" ] && continue
		try "${item%%|*}" crafted_item "$item"
	done
}
