#!/usr/bin/env bash
# The test suite (README quick start, CI): setup, then pytest. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not slow"` for the fast unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
