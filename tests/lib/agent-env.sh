# tests/lib/agent-env.sh: the start every test shares that runs users'
# processes against a private ckptd (tests/agent/agent-test.sh,
# tests/agent/cr-user.sh, tests/security/lib.sh).  Sourced, then:
#
#   agent_env PREFIX   root, or SKIP (exit 77); no fd of ctest's reaches
#                      the processes the test starts (a restore reopens
#                      every file a process had, as its user); T: a fresh
#                      scratch dir (755) /tmp/PREFIX.XXXXXX; CKPT_SOCKET
#                      and CKPT_CONF (empty) in it.
#   user_copy VAR...   each VAR holds a program's path: copied to $T/bin
#                      (755), where users can run it (a checkout may be
#                      closed to them), and VAR then holds the copy's.

agent_env() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
	local fd
	for fd in $(ls /proc/$$/fd); do
		[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
	done
	T=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$T"
	install -d -m 755 "$T/bin"
	export CKPT_SOCKET=$T/ckptd.sock CKPT_CONF=$T/ckpt.conf
	: >"$CKPT_CONF"
}

user_copy() {
	local var
	for var in "$@"; do
		install -m 755 "${!var}" "$T/bin/"
		printf -v "$var" '%s' "$T/bin/$(basename "${!var}")"
	done
}
