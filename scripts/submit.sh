#!/usr/bin/env bash
# Submit a sweep to SLURM and return at once:
#   bash scripts/submit.sh name=wide model.width=64,128,256 'penalty.log10_lam=range(-5,-1,0.5)'
# The launcher that watches the job array runs under nohup with its log in $WDBENCH_OUT/submit/
# (default outputs/). The jobs write their results themselves, so that watcher may die or be killed
# without loss; follow progress with `python -m wdbench.status <out_dir>/multirun/<name>`, and rerun
# the same command to resubmit only what failed or never ran. WDBENCH_LAUNCHER=slurm_cpu for CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
log=${WDBENCH_OUT:-outputs}/submit/$(date +%Y-%m-%d_%H-%M-%S)_$$.log
mkdir -p "$(dirname "$log")"
nohup .venv/bin/python -m wdbench -m "hydra/launcher=${WDBENCH_LAUNCHER:-slurm}" progress=false "$@" \
  > "$log" 2>&1 < /dev/null &
echo "submitting in the background (pid $!), log: $log"
echo "progress: .venv/bin/python -m wdbench.status <out_dir>/multirun/<name>"
