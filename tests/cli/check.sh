#!/usr/bin/env bash
# `ckptctl check`: one line per kernel feature, exit 1 when one the engine
# needs is missing; -v adds, under each missing feature, why (the call
# that failed and its error, or what was not found).  Root without
# CAP_SYS_ADMIN (dropped from the bounding set) misses two of them.
#   check.sh CKPTCTL
set -euo pipefail
CKPTCTL=$1
fail() { echo "FAIL: check: $*"; exit 1; }
[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null || { echo "SKIP: needs root and setpriv"; exit 77; }
T=$(mktemp -d /tmp/ckpt-check.XXXXXX)
trap 'rm -rf "$T"' EXIT
rc=0
setpriv --bounding-set -sys_admin "$CKPTCTL" check >"$T/plain" 2>&1 || rc=$?
[ $rc = 1 ] || fail "without CAP_SYS_ADMIN: exit $rc, not 1: $(cat "$T/plain")"
grep -q "^capabilities *MISSING" "$T/plain" || fail "capabilities not missing: $(cat "$T/plain")"
! grep -q "why:" "$T/plain" || fail "why without -v: $(cat "$T/plain")"
rc=0
setpriv --bounding-set -sys_admin "$CKPTCTL" check -v >"$T/v" 2>&1 || rc=$?
[ $rc = 1 ] || fail "check -v: exit $rc, not 1"
grep -A1 "^capabilities *MISSING" "$T/v" | grep -q "why: the effective set lacks CAP_SYS_ADMIN (euid 0)" ||
	fail "check -v does not say why capabilities are missing: $(cat "$T/v")"
grep -A1 "^clone3_set_tid *MISSING" "$T/v" | grep -q "why: clone3(CLONE_NEWPID, set_tid 1): Operation not permitted" ||
	fail "check -v does not say why clone3 fails: $(cat "$T/v")"
# Every MISSING line, and only those, is followed by its why.
[ "$(grep -c MISSING "$T/v")" = "$(grep -c 'why:' "$T/v")" ] || fail "a why per missing feature: $(cat "$T/v")"
echo "ok: check -v says why: $(grep -c 'why:' "$T/v") missing features"
