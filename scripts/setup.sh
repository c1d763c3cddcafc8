#!/usr/bin/env bash
# Idempotent setup: a virtualenv in .venv with the exact versions of requirements.lock (so a paper's
# numbers can be rebuilt with the libraries that made them) and wdbench itself, editable.
# Reinstalls only when pyproject.toml or the lock changed since the last install.
# (pip, not uv: pip follows this machine's registry configuration in pip.conf, which uv does not read.)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
stamp=.venv/.wdbench-installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the locked versions (requirements.lock) into .venv (a few minutes the first time)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  .venv/bin/python -m pip check >&2  # the lock covers every dependency of pyproject.toml
  echo "$want" > "$stamp"
fi
