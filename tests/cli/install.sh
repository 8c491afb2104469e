#!/usr/bin/env bash
# `cmake --install` puts every piece a site runs where the docs and the
# plugin's defaults say: ckptctl and ckpt-sbatch in bin/ (users run
# them), ckptd in sbin/, the plugin in lib/ckpt/, the batch wrapper, the
# epilog and the demo's counter in libexec/ckpt/, every man page of
# man/ in share/man/manN/ (ckpt-spank.8 with the plugin), and ckptd's
# systemd unit in lib/systemd/system/, starting the ckptd installed.
#   install.sh BUILD_DIR
set -euo pipefail
BUILD=$1
T=$(mktemp -d /tmp/ckpt-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: install: $*"; exit 1; }
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
DESTDIR=$T cmake --install "$BUILD" >"$T.log" 2>&1 || { cat "$T.log"; fail "cmake --install"; }
rm -f "$T.log"
want=(bin/ckptctl bin/ckpt-sbatch sbin/ckptd libexec/ckpt/ckpt-counter)
# The step proxy is built where libpmix is.
[ -f "$BUILD/step/ckpt-step" ] && want+=(bin/ckpt-step)
# The Slurm pieces are built where slurm/spank.h is.
[ -f "$BUILD/slurm-plugin/ckpt.so" ] &&
	want+=(lib/ckpt/ckpt.so libexec/ckpt/ckpt-batch libexec/ckpt/ckpt-epilog)
for f in "${want[@]}"; do
	[ -f "$T$prefix/$f" ] || fail "$prefix/$f is not installed"
	case $f in *.so) ;; *) [ -x "$T$prefix/$f" ] || fail "$prefix/$f is not executable" ;; esac
done
# The man pages, from the source's man/, where man(1) looks.
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")
# GNUInstallDirs: share/man unless the build says otherwise.
mandir=$(sed -n 's/^CMAKE_INSTALL_MANDIR:PATH=//p' "$BUILD/CMakeCache.txt")
mandir=${mandir:-share/man}
pages=()
for p in "$src"/man/*.[1-8]; do
	name=$(basename "$p")
	[ "$name" = ckpt-spank.8 ] && [ ! -f "$BUILD/slurm-plugin/ckpt.so" ] && continue
	f=$mandir/man${name##*.}/$name
	cmp -s "$p" "$T$prefix/$f" || fail "$prefix/$f is not installed (or differs from man/$name)"
	pages+=("$f")
done
[ ${#pages[@]} -ge 3 ] || fail "only ${#pages[@]} man pages installed"
want+=("${pages[@]}")
# The unit runs the ckptd installed, in the foreground, as root.
unit=lib/systemd/system/ckptd.service
[ -f "$T$prefix/$unit" ] || fail "$prefix/$unit is not installed"
exec_start=$(sed -n 's/^ExecStart=//p' "$T$prefix/$unit")
[ "$exec_start" = "$prefix/sbin/ckptd -f" ] || fail "$unit: ExecStart=$exec_start, not $prefix/sbin/ckptd -f"
! grep -q '@' "$T$prefix/$unit" || fail "$unit: unsubstituted: $(grep '@' "$T$prefix/$unit")"
want+=("$unit")
# ckpt-sbatch runs from there: it hands its arguments to sbatch.
out=$(CKPT_SBATCH=echo "$T$prefix/bin/ckpt-sbatch" -p low job.sh)
[ "$out" = "--open-mode=append --checkpoint -p low job.sh" ] || fail "ckpt-sbatch ran: $out"
echo "ok: ${want[*]} under $prefix"
