#!/usr/bin/env bash
# The plugin's hooks without Slurm (test-spank plays slurmstepd): what a
# --checkpoint job's tasks find in their environment.  socket= of
# plugstack.conf reaches every task as CKPT_SOCKET (the batch wrapper's
# ckptctl, the user's own), so that a site that moves ckptd's socket says
# so once; a job without --checkpoint is left alone.
#   plugin-env.sh TEST_SPANK PLUGIN
set -euo pipefail
HARNESS=$1 PLUGIN=$2
fail() { echo "FAIL: plugin-env: $*"; exit 1; }
out=$("$HARNESS" "$PLUGIN" batch "" wrapper=/bin/true socket=/site/ckptd.sock) || fail "batch: exit $?"
grep -qx "setenv CKPT_SOCKET=/site/ckptd.sock" <<<"$out" || fail "batch step: no CKPT_SOCKET: $out"
grep -qx "setenv CKPT_BATCH_SCRIPT=/job/script.sh" <<<"$out" || fail "batch step: not wrapped: $out"
grep -qx "exec /bin/true" <<<"$out" || fail "batch step: the wrapper is not run: $out"
out=$("$HARNESS" "$PLUGIN" step periodic socket=/site/ckptd.sock) || fail "step: exit $?"
grep -qx "setenv CKPT_SOCKET=/site/ckptd.sock" <<<"$out" || fail "srun step: no CKPT_SOCKET: $out"
out=$("$HARNESS" "$PLUGIN" batch "" wrapper=/bin/true) || fail "no socket=: exit $?"
! grep -q "CKPT_SOCKET" <<<"$out" || fail "CKPT_SOCKET without socket=: $out"
out=$("$HARNESS" "$PLUGIN" batch - wrapper=/bin/true socket=/site/ckptd.sock) || fail "no --checkpoint: exit $?"
! grep -q "setenv" <<<"$out" || fail "a job without --checkpoint got: $out"
echo "ok: socket= reaches the job's tasks as CKPT_SOCKET"
