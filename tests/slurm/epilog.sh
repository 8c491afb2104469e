#!/usr/bin/env bash
# ckpt-epilog without Slurm: it takes jobdir= and ckptctl= from the ckpt.so
# line of plugstack.conf (PlugStackConfig of $SLURM_CONF, include lines
# followed), as the plugin does, and nothing from the environment; without
# ckptctl= it runs bin/ckptctl of its own install prefix, else the one on
# PATH.  It removes the job's policy file and scratch there, and runs
# `ckptctl image gc` for the job in storage.base, its --checkpoint-dir
# and storage.local, and `image gc --ended`.
#   epilog.sh EPILOG
set -euo pipefail
EPILOG=$1
T=$(mktemp -d /tmp/ckpt-epilog.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: epilog: $*"; exit 1; }
# A job id no real job has: an epilog that missed jobdir= would remove
# its files in the node's /run/ckpt/jobs.
J=4000000042

# fake_ckptctl PATH: a ckptctl that logs its arguments to $T/calls.
fake_ckptctl() {
	mkdir -p "$(dirname "$1")"
	printf '#!/bin/sh\necho "%s $*" >>%s/calls\n' "$1" "$T" >"$1"
	chmod +x "$1"
}
# job_files: job J's policy file and scratch in $T/jobs, another job's policy.
job_files() {
	mkdir -p "$T/jobs/$J" "$T/victim/$J"
	printf 'policy=on-preempt\ndir=%s/ckdir\n' "$T" >"$T/jobs/$J.policy"
	: >"$T/jobs/$J.tmp"
	: >"$T/jobs/4000000043.policy"
	: >"$T/calls"
}
# run_epilog [VAR=VALUE...]: the epilog for job J as slurmd runs it.
run_epilog() {
	env -i PATH=/usr/bin:/bin SLURM_JOB_ID=$J SLURM_CONF="$T/etc/slurm.conf" \
		CKPT_CONF="$T/ckpt.conf" "$@" "$EPILOG" >"$T/out" 2>&1 || fail "exit $?: $(cat "$T/out")"
}

mkdir -p "$T/etc/plugstack.conf.d"
printf 'ClusterName=test\nplugstackconfig = %s/etc/plugstack.conf\n' "$T" >"$T/etc/slurm.conf"
printf '# the site'"'"'s plugins\ninclude plugstack.conf.d/*.conf\n' >"$T/etc/plugstack.conf"
echo "optional /usr/lib/other.so jobdir=/wrong" >"$T/etc/plugstack.conf.d/a.conf"
echo "required /opt/ckpt/lib/ckpt/ckpt.so wrapper=/x ckptctl=$T/site/ckptctl jobdir=$T/jobs socket=/s" \
	>"$T/etc/plugstack.conf.d/ckpt.conf"
echo "storage.local = $T/local" >"$T/ckpt.conf"
fake_ckptctl "$T/site/ckptctl"

# jobdir= and ckptctl= of the plugin's line; CKPT_JOB_DIR of a job is
# nothing to it.
job_files
run_epilog CKPT_JOB_DIR="$T/victim" CKPT_CKPTCTL=/bin/false
[ ! -e "$T/jobs/$J.policy" ] && [ ! -e "$T/jobs/$J.tmp" ] && [ ! -e "$T/jobs/$J" ] ||
	fail "job $J's files are left in jobdir=: $(ls "$T/jobs")"
[ -e "$T/jobs/4000000043.policy" ] || fail "job 4000000043's policy file went too"
[ -e "$T/victim/$J" ] || fail "CKPT_JOB_DIR was used"
for want in "image gc $J" "image gc --base $T/ckdir $J" "image gc --base $T/local $J" \
	"image gc --ended" "image gc --ended --base $T/ckdir"; do
	grep -qx "$T/site/ckptctl $want" "$T/calls" || fail "no '$want' by ckptctl=: $(cat "$T/calls")"
done
echo "ok: jobdir= and ckptctl= from plugstack.conf"

# Without ckptctl=: PREFIX/bin/ckptctl next to PREFIX/libexec/ckpt/ckpt-epilog.
echo "required /opt/ckpt/lib/ckpt/ckpt.so jobdir=$T/jobs" >"$T/etc/plugstack.conf.d/ckpt.conf"
install -D -m 755 "$EPILOG" "$T/prefix/libexec/ckpt/ckpt-epilog"
fake_ckptctl "$T/prefix/bin/ckptctl"
EPILOG=$T/prefix/libexec/ckpt/ckpt-epilog
job_files
run_epilog
grep -q "^$T/prefix/bin/ckptctl image gc $J\$" "$T/calls" ||
	fail "not the prefix's ckptctl: $(cat "$T/calls")"
# ... else the one on PATH.
rm "$T/prefix/bin/ckptctl"
fake_ckptctl "$T/path/ckptctl"
job_files
run_epilog PATH="$T/path:/usr/bin:/bin"
grep -q "^$T/path/ckptctl image gc $J\$" "$T/calls" || fail "not PATH's ckptctl: $(cat "$T/calls")"
[ ! -e "$T/jobs/$J.policy" ] || fail "jobdir= not used without ckptctl="
echo "ok: ckptctl from the install prefix, else PATH"
