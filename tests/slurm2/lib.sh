# shellcheck shell=bash
# tests/slurm2/lib.sh: what every test of the two-node bed sources: the
# single-node tests' lib.sh (submit, field, wait_for, release, ...) on the
# cluster of scripts/slurm-cluster2, which tests/slurm2/CMakeLists.txt
# starts as a ctest fixture; and on_node NODE COMMAND..., to run COMMAND
# in a node's namespaces (its ckptd, its slurmd's view).
export SLURM_CONF=/etc/slurm-ckpt2/slurm.conf
CLUSTER=slurm-cluster2
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../slurm/lib.sh"

on_node() { "$ROOT/scripts/slurm-cluster2" exec "$@"; }

# The programs the jobs run, published where the job's user reaches them
# (the checkout may be closed to others): the cluster's own copies.
# shellcheck disable=SC2034
CKPTCTL=/var/lib/ckpt-slurm2/bin/ckptctl

# nodes_idle: every node of the bed idle (the jobs of the test before
# this one gone), so that a 2-node job gets ckn[1-2].
nodes_idle() { [ "$(sinfo -h -o %t | sort -u)" = idle ]; }
