#!/usr/bin/env bash
# Mutation testing of the modules that decide the numbers against the fast tests (-m "not slow and
# not slurm"); prints the score per module. Not part of CI: hours on 2 cores. mutmut keeps every
# verdict in mutants/ and reruns a mutant only when its function changed, not when the tests did.
#   bash scripts/mutation.sh                      # every module in [tool.mutmut] of pyproject.toml
#   bash scripts/mutation.sh "wdbench.optim*"     # one module's mutants
#   bash scripts/mutation.sh --retest-survivors   # after adding tests: survivors and time-outs again
# Log: mutants/run.log; what survived: .venv/bin/mutmut results, .venv/bin/mutmut show NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# not in requirements.lock (a test tool, not a dependency of the results): the version these scores were measured with
[ -x .venv/bin/mutmut ] || .venv/bin/python -m pip install -q mutmut==3.8.1
cores=$(nproc)  # before OMP_NUM_THREADS is set: nproc honours it
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per worker and a worker per core: no oversubscription
mkdir -p mutants
# Which tests run which function is collected afresh every time (one pass of the fast tests): mutmut
# keeps it from an earlier run otherwise, and a renamed test then fails its "clean test" run.
rm -f mutants/mutmut-stats.json
if [ "${1:-}" = --retest-survivors ]; then
  shift
  .venv/bin/python - <<'PY'
import json, pathlib
for meta in pathlib.Path("mutants").glob("**/*.py.meta"):
    data = json.loads(meta.read_text())
    data["exit_code_by_key"] = {k: None if v not in (1, 3) else v for k, v in data["exit_code_by_key"].items()}
    meta.write_text(json.dumps(data))
PY
fi
.venv/bin/mutmut run --max-children "$cores" "$@" > mutants/run.log 2>&1 || { tail -c 2000 mutants/run.log; exit 1; }
.venv/bin/python scripts/mutation_score.py
