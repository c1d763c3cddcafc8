#!/usr/bin/env bash
# Rebuild the paper from the kept results tables (paper/results/): figures, tables, numbers, then the PDF
# (paper/build/main.pdf) where latexmk is installed. Trains nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m analysis paper "$@"
if command -v latexmk > /dev/null; then
  (cd paper && latexmk -pdf -interaction=nonstopmode -halt-on-error -outdir=build main.tex > build.log 2>&1) \
    || { tail -30 paper/build.log; exit 1; }
  echo "paper/build/main.pdf"
else
  echo "latexmk not found: figures and tables are rebuilt; for the PDF install texlive-latex-base" \
       "texlive-latex-recommended texlive-latex-extra latexmk" >&2
fi
