"""The layers point one way (pyproject.toml's [tool.importlinter] contracts; docs/decisions.md)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_hydras_internals_are_imported_by_hydra_compat_only():
    """import-linter cannot forbid an external package's subpackage, so this reads the imports."""
    import ast

    users = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        if path.parts[len(ROOT.parts)] in (".venv", "mutants") or path.name == "hydra_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            users += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("hydra._internal")]
    assert not users
