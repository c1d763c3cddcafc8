"""The one result file per run: schema, atomic writes and provenance.

``result.json`` (documented in the README) is the only thing analysis reads from a run.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
RUNS_FILE = "runs.json"  # in a sweep directory: every run any launch of the sweep asked for
FINISHED = ("completed", "diverged")  # a rerun of the same config skips these
STATUSES = ("running", "completed", "diverged", "failed")
_PACKAGES = ("torch", "timm", "hydra-core", "omegaconf", "numpy", "scikit-learn", "submitit")


class SweepFailed(RuntimeError):
    """Some runs of a sweep failed; their results say why."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a temp file in the same directory, fsync, rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_result(run_dir: Path, result: dict) -> Path:
    path = Path(run_dir) / RESULT_FILE
    previous = read_result(run_dir)
    if previous and previous.get("status") in FINISHED:
        raise FileExistsError(f"{path}: refusing to replace a {previous['status']} result")
    result["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(path, json.dumps(result, indent=1, allow_nan=True) + "\n")
    return path


def read_result(run_dir: Path) -> Optional[dict]:
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def record_runs(sweep_dir: Path, runs: dict[str, list[str]]) -> None:
    """Add runs (run subdirectory -> overrides) to the sweep's manifest, so missing ones can be named."""
    known = read_runs(sweep_dir)
    known.update(runs)
    atomic_write_text(Path(sweep_dir) / RUNS_FILE, json.dumps(known, indent=1, sort_keys=True) + "\n")


def read_runs(sweep_dir: Path) -> dict[str, list[str]]:
    path = Path(sweep_dir) / RUNS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(device: str) -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if dirty is None else bool(dirty),
        "packages": versions,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": device,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
