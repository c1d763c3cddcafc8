#!/usr/bin/env bash
# Mutation testing of the modules that decide the numbers against the fast tests (-m "not slow and
# not slurm"); prints the score per module. Not part of CI: hours on 2 cores. mutmut keeps every
# verdict in mutants/, so a rerun tests only mutants of functions that changed, or not yet tested.
#   bash scripts/mutation.sh                      # every module in [tool.mutmut] of pyproject.toml
#   bash scripts/mutation.sh "wdbench.optim*"     # one module's mutants
# Log: mutants/run.log; what survived: .venv/bin/mutmut results, .venv/bin/mutmut show NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per worker and a worker per core: no oversubscription
mkdir -p mutants
.venv/bin/mutmut run --max-children "$(nproc)" "$@" > mutants/run.log 2>&1 || { tail -c 2000 mutants/run.log; exit 1; }
.venv/bin/python scripts/mutation_score.py
