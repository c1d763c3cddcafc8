#!/usr/bin/env bash
# The main job on a fresh machine: setup, the quickstart sweep (ResNet widths 4-32 on the embedded
# digits data, a log grid of lambda under each normalisation, 2 seeds: 272 runs on every core),
# then collect, fit and figures. Rerunning skips finished runs. Extra arguments go to every sweep
# (e.g. optim.epochs=5). Outputs under $WDBENCH_OUT (default outputs/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py=.venv/bin/python
out=${WDBENCH_OUT:-outputs}
for norm in sum mean per_step; do
  "$py" -m wdbench -m "experiment=quickstart_$norm" progress=false "out_dir=$out" "$@"
done
"$py" -m analysis collect "$out/multirun/quickstart" --out "$out/quickstart/results.csv"
"$py" -m analysis fit "$out/quickstart/results.csv" --out "$out/quickstart/fit"
"$py" -m analysis figures "$out/quickstart/results.csv" --out "$out/quickstart/figures" > /dev/null
echo "figures: $out/quickstart/figures/ (lambda_star_vs_width.png answers the question)"
