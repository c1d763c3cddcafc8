"""The one result file per run: schema, atomic writes and provenance.

``result.json`` (documented in docs/results.md) is the only thing analysis reads from a run.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
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
SUBMITTED_DIR = ".submitit/wdbench_tasks"  # in a sweep directory: a JSON file per SLURM job array


def submitted_record(sweep_dir: Path, array_id: str) -> Path:
    """Where the SLURM launcher records each array task's job id -> its runs' overrides (JSON, so that
    wdbench.status never unpickles submitit's own records)."""
    return Path(sweep_dir) / SUBMITTED_DIR / f"{array_id}.json"


FINISHED = ("completed", "diverged")  # a rerun of the same config skips these
STATUSES = ("running", "completed", "diverged", "failed")
_PACKAGES = ("torch", "timm", "hydra-core", "omegaconf", "numpy", "scikit-learn", "submitit")


log = logging.getLogger("wdbench")


class SweepFailed(RuntimeError):
    """Some runs of a sweep failed; their results say why."""


class SweepStopped(BaseException):
    """The launching process was stopped (SIGTERM, Ctrl-C); its workers checkpointed their packs. Like
    KeyboardInterrupt a request, not an error: no `except Exception` on its way out rewords it."""

    def __init__(self, signum: int):
        super().__init__(
            f"stopped by {signal.Signals(signum).name}: the runs in training were checkpointed at "
            "their next step; rerun the same command to resume them"
        )
        self.signum = signum


class DamagedFile(ValueError):
    """A result, manifest or checkpoint file that cannot be read (truncated, half-copied, edited)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: damaged ({reason})")
        self.path = Path(path)


def set_aside(path: Path) -> str:
    """Keep a damaged file next to where it was, out of the way: ``NAME.damaged-<UTC time>``; says
    where it went (another launch may have moved it first)."""
    kept = Path(path).with_name(f"{Path(path).name}.damaged-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}")
    try:
        os.replace(path, kept)
    except FileNotFoundError:
        return "set aside by another launch"
    return f"kept as {kept.name}"


def _read_json(path: Path) -> Optional[dict]:
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError):
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedFile(path, f"not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise DamagedFile(path, f"a JSON {type(data).__name__}, not an object")
    return data


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
        Path(tmp).unlink(missing_ok=True)  # pragma: no mutate  (gone if an interrupt came after the rename)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_result(run_dir: Path, result: dict) -> Path:
    path = Path(run_dir) / RESULT_FILE
    previous = read_result_or_set_aside(run_dir)
    if previous and previous.get("status") in FINISHED:
        raise FileExistsError(f"{path}: refusing to replace a {previous['status']} result")
    result["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")  # NaN/Infinity kept (json's default)
    return path


def read_result(run_dir: Path) -> Optional[dict]:
    """The run's result, None if it has none; DamagedFile if it cannot be read or has no known status."""
    path = Path(run_dir) / RESULT_FILE
    result = _read_json(path)
    if result is not None and result.get("status") not in STATUSES:
        raise DamagedFile(path, f"status {result.get('status')!r} is none of {', '.join(STATUSES)}")
    return result


def read_result_or_set_aside(run_dir: Path) -> Optional[dict]:
    """For those about to (re)train the run: a damaged result is moved aside, kept, said in one
    line, and reads as none, so the run trains again instead of every command crashing."""
    try:
        return read_result(run_dir)
    except DamagedFile as err:
        log.warning(f"{err}; {set_aside(err.path)}, the run trains again")
        return None


def record_runs(sweep_dir: Path, runs: dict[str, list[str]]) -> None:
    """Add runs (run subdirectory -> overrides) to the sweep's manifest, so missing ones can be named."""
    try:
        known = read_runs(sweep_dir)
    except DamagedFile as err:  # the manifest is rebuilt from this launch's runs
        log.warning(f"{err}; {set_aside(err.path)}, the manifest starts again")
        known = {}
    known.update(runs)
    atomic_write_text(Path(sweep_dir) / RUNS_FILE, json.dumps(known, indent=1, sort_keys=True) + "\n")


def read_runs(sweep_dir: Path) -> dict[str, list[str]]:
    return _read_json(Path(sweep_dir) / RUNS_FILE) or {}


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def device_type(provenance: dict) -> str:
    """cpu or cuda; from the device string where a result recorded before device_type has none."""
    return provenance.get("device_type") or str(provenance.get("device", "cpu")).split(":")[0].split(" ")[0]


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
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # the GPU a local worker was given
    }
