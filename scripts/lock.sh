#!/usr/bin/env bash
# Regenerate requirements.lock after changing dependencies in pyproject.toml: resolve them (with the
# test extras) in a fresh virtualenv and record every installed package at its exact version.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q -e '.[dev]'
{
  echo "# Exact versions of every package wdbench and its tests install (pip freeze of a fresh '.[dev]' install)."
  echo "# scripts/setup.sh installs from this file; regenerate it with: bash scripts/lock.sh"
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | sort -f
} > requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) packages"
