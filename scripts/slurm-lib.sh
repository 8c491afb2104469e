# shellcheck shell=bash
# scripts/slurm-lib.sh: what the scripts that start a Slurm test cluster on
# this machine share -- scripts/slurm-cluster (one node) and
# scripts/slurm-cluster2 (two nodes in network namespaces).  Sourced, not
# run.  The caller sets ROOT, PREFIX, BUILD, GRACE, CONF, STATE, RUN, LOG,
# MARK and PACKAGES before it calls anything here; `say` prefixes its
# lines with the caller's name.
ME=$(basename "$0")
MUNGE_SOCK=/run/munge/munge.socket.2

say() { printf '%s: %s\n' "$ME" "$*"; }
skip() { say "cannot run a cluster here: $*"; exit 77; }

install_packages() {
	local missing=() p installed
	# One dpkg-query for all: the start of a cluster takes seconds.
	installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null |
		sed -n 's/ install ok installed$//p')
	for p in "${PACKAGES[@]}"; do
		grep -qx "$p" <<<"$installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return
	command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
	say "installing ${missing[*]}"
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends)
	if ! "${apt[@]}" install "${missing[@]}" >/dev/null 2>&1 </dev/null; then
		"${apt[@]}" update >/dev/null 2>&1 </dev/null || true
		"${apt[@]}" install "${missing[@]}" >/dev/null 2>&1 </dev/null ||
			skip "apt-get install ${missing[*]} failed"
	fi
}

# The ckpt pieces the cluster runs: from the build tree when it is there.
pick() {
	local built=$1 installed=$2
	if [ -e "$built" ]; then echo "$built"; else echo "$installed"; fi
}

# Options of `start`: the ckpt pieces a cluster runs (SOCKET: ckptd's, for
# the plugin; empty when not given).  They are the caller's to use.
# shellcheck disable=SC2034
parse_args() {
	PLUGIN=$(pick "$BUILD/slurm-plugin/ckpt.so" "$PREFIX/lib/ckpt/ckpt.so")
	WRAPPER=$(pick "$BUILD/slurm-plugin/ckpt-batch" "$PREFIX/libexec/ckpt/ckpt-batch")
	CKPTCTL=$(pick "$BUILD/cli/ckptctl" "$PREFIX/bin/ckptctl")
	CKPTD=$(pick "$BUILD/agent/ckptd" "$PREFIX/sbin/ckptd")
	EPILOG=$ROOT/slurm-plugin/epilog
	SOCKET=
	while [ $# -gt 0 ]; do
		case $1 in
		--plugin) PLUGIN=$2 ;;
		--wrapper) WRAPPER=$2 ;;
		--ckptctl) CKPTCTL=$2 ;;
		--epilog) EPILOG=$2 ;;
		--ckptd) CKPTD=$2 ;;
		--socket) SOCKET=$2 ;;
		*) say "unknown option $1"; exit 2 ;;
		esac
		shift 2
	done
	# slurmd and slurmstepd do not run where we are: absolute paths.
	PLUGIN=$(realpath -m "$PLUGIN") WRAPPER=$(realpath -m "$WRAPPER")
	CKPTCTL=$(realpath -m "$CKPTCTL") EPILOG=$(realpath -m "$EPILOG")
	CKPTD=$(realpath -m "$CKPTD")
	[ -f "$PLUGIN" ] || skip "no plugin at $PLUGIN (build slurm-plugin first)"
}

# Jobs run as their users, who may not reach a build tree under /root:
# the plugin their sbatch loads, the wrapper and ckptctl they exec are
# copied where everyone can.
publish_tools() {
	mkdir -p $STATE/bin
	chmod 755 $STATE $STATE/bin
	install -m 755 "$PLUGIN" $STATE/bin/ckpt.so
	install -m 755 "$WRAPPER" $STATE/bin/ckpt-batch
	install -m 755 "$CKPTCTL" $STATE/bin/ckptctl
	# ckptctl checkpoint runs the coordinator installed beside it
	local coord
	coord=$(pick "$(dirname "$CKPTCTL")/../coordinator/ckpt-coord" "$(dirname "$CKPTCTL")/ckpt-coord")
	[ ! -x "$coord" ] || install -m 755 "$coord" $STATE/bin/ckpt-coord
	PLUGIN=$STATE/bin/ckpt.so WRAPPER=$STATE/bin/ckpt-batch CKPTCTL=$STATE/bin/ckptctl
}

munge_key() {
	local key=/etc/munge/munge.key
	[ -s $key ] && return
	say "generating $key"
	mkdir -p /etc/munge
	dd if=/dev/urandom of=$key bs=1024 count=1 status=none
	chown munge:munge $key
	chmod 0400 $key
}

start_munge() {
	if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
		return
	fi
	mkdir -p /run/munge /var/log/munge /var/lib/munge
	chown munge:munge /run/munge /var/log/munge /var/lib/munge
	rm -f $MUNGE_SOCK
	runuser -u munge -- /usr/sbin/munged
	# We started it: stop takes it down again.
	touch $RUN/munged.ours
	for _ in $(seq 50); do
		munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
		sleep 0.1
	done
	skip "munged does not answer"
}

# stop_munge OTHER_RUN: munged goes if this cluster started it, unless the
# other cluster of this machine (its run directory OTHER_RUN) runs: then
# that one's stop takes it down.
stop_munge() {
	[ -f $RUN/munged.ours ] || return 0
	if alive "$1/slurmctld.pid"; then
		touch "$1/munged.ours"
	else
		stop_daemon /run/munge/munged.pid
	fi
	rm -f $RUN/munged.ours
}

# One file from the examples, with the installed paths replaced by the
# ones this cluster uses.
install_example() {
	sed -e "s|/usr/local/lib/ckpt/ckpt.so|$PLUGIN|" \
		-e "s|/usr/local/libexec/ckpt/ckpt-batch|$WRAPPER|" \
		-e "s|/usr/local/bin/ckptctl|$CKPTCTL|" \
		-e "s|/usr/local/libexec/ckpt/ckpt-epilog|$EPILOG|" \
		-e "s|GraceTime=[0-9]*|GraceTime=$GRACE|" \
		"$ROOT/examples/slurm.conf.d/$1"
}

# alive PIDFILE: the process the file names runs.  A pid of 0 or 1 (an
# empty or damaged file) never counts: kill 0 would signal our own group.
# Nor does a zombie: a daemon that has exited waits there until init,
# which may be slow to, reaps it.
alive() {
	local pid
	[ -f "$1" ] && pid=$(cat "$1") && [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] &&
		kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*zombie' /proc/$pid/status 2>/dev/null
}

# stop_daemons PIDFILE...: SIGTERM to each that runs, all at once, then
# SIGKILL to those still there after 10 s.
stop_daemons() {
	local f pids=()
	for f; do
		alive "$f" && pids+=("$(cat "$f")") && kill "${pids[-1]}"
	done
	for _ in $(seq 100); do
		for f; do alive "$f" || rm -f "$f"; done
		local left=0
		for f; do [ -f "$f" ] && left=1; done
		[ $left -eq 0 ] && return 0
		sleep 0.1
	done
	for f; do
		alive "$f" && kill -KILL "$(cat "$f")"
		rm -f "$f"
	done
	return 0
}

stop_daemon() { stop_daemons "$1"; }

close_fds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	return 0
}

# same_config DIR: every file under DIR is the same in $CONF.
same_config() {
	local f
	for f in $(cd "$1" && find . -type f); do
		cmp -s "$1/$f" "$CONF/$f" || return 1
	done
}

# write_config: render_config (the caller's) into a scratch directory, laid
# out as $CONF is, and copy it there if anything changed.  Returns 1 when
# it did (the daemons must restart), 0 when $CONF was already so.  Refuses
# a slurm.conf that is not ours (no $MARK line).
write_config() {
	local tmp changed=0
	tmp=$(mktemp -d)
	render_config "$tmp"
	if [ -f $CONF/slurm.conf ] && ! grep -q "^$MARK" $CONF/slurm.conf; then
		rm -rf "$tmp"
		skip "$CONF/slurm.conf was not written by me; not touching it"
	fi
	if ! same_config "$tmp"; then
		changed=1
		mkdir -p $CONF
		cp -r "$tmp/." $CONF/
	fi
	rm -rf "$tmp"
	return $changed
}

# Jobs left running would keep their slurmstepd (and the job's processes)
# alive after slurmd goes: cancel them and wait for them to end.
cancel_jobs() {
	alive $RUN/slurmctld.pid || return 0
	[ -n "$(squeue -h -o %i 2>/dev/null)" ] || return 0
	scancel --full --quiet --user=root 2>/dev/null || true
	squeue -h -o %i | xargs -r scancel --quiet 2>/dev/null || true
	for _ in $(seq 60); do
		[ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && return
		sleep 0.5
	done
	say "jobs still ending: $(squeue -h -o '%i %T' | tr '\n' ' ')"
}
