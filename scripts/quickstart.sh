#!/usr/bin/env bash
# The main job on a fresh machine: setup, the quickstart sweep (ResNet widths 2-32 on the embedded
# digits data, a grid in coef space plus a lambda = 0 baseline, 5 seeds: 300 runs on every core),
# then collect, fit and figures. Rerunning skips finished runs. Extra arguments go to the sweep
# (e.g. optim.epochs=5). Outputs under $WDBENCH_OUT (default outputs/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py=.venv/bin/python
out=${WDBENCH_OUT:-outputs}
"$py" -m wdbench -m experiment=quickstart progress=false "out_dir=$out" "$@"
"$py" -m analysis collect "$out/multirun/quickstart" --out "$out/quickstart/results.csv"
"$py" -m analysis fit "$out/quickstart/results.csv" --out "$out/quickstart/fit"
"$py" -m analysis figures "$out/quickstart/results.csv" --out "$out/quickstart/figures" > /dev/null
echo "figures: $out/quickstart/figures/ (lambda_star_vs_width.png answers the question)"
