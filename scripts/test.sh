#!/usr/bin/env bash
# The test suite (README quick start, CI): setup, a real single-node SLURM cluster when running as
# root (WDBENCH_SLURM=0 skips it; the SLURM tests are then skipped), then pytest. Extra arguments
# go to pytest, e.g. `bash scripts/test.sh -m "not slow"` for the fast unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${WDBENCH_SLURM:-1}" != 0 ] && [ "$(id -u)" = 0 ] && [ -z "${SLURM_CONF:-}" ]; then
  eval "$(bash scripts/slurm_cluster.sh start)"
  trap 'bash scripts/slurm_cluster.sh stop' EXIT
fi
.venv/bin/python -m pytest "$@"
