"""Who is training a run: a claim in its directory, so that two launches of one sweep (two
terminals, a SLURM resubmission while jobs are queued or running) never train a run twice.

A run is claimed when it starts, by creating ``claim.json`` exclusively (O_EXCL: of two processes
exactly one succeeds, also over NFS v3+), holding host, pid, SLURM job id and time. While the run
trains, a thread refreshes the file's modification time every ``HEARTBEAT_S``. A claim is *stale*
when its process is gone on this host, its SLURM job has left the queue, or its heartbeat is older
than ``STALE_S``; a stale claim is taken over (and the takeover recorded in result.json); a live
one makes the run be skipped here, which is not a failure. The claim is removed when the run stops
for any reason a process can see (finished, failed, preempted); a killed process leaves a claim
that goes stale.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from wdbench.results import atomic_write_text

CLAIM_FILE = "claim.json"
ELSEWHERE = "running elsewhere"  # what a job returns for a run it found claimed: not a failure
TAKEOVER_LOCK = "claim.json.takeover"
HEARTBEAT_S = 30.0
# 20 missed heartbeats: long enough for NFS attribute caching (up to a minute), clock skew between
# the nodes that write and read the file, and a process stalled on I/O; short enough that a run
# whose node died is retrained by the next launch ten minutes later, not hours.
STALE_S = 600.0
ASK_SLURM = object()  # default of Claim.acquire's ``queued``: ask squeue if a claim must be judged


def squeue(*args: str) -> Optional[list[str]]:
    """The words ``squeue -h ARGS`` prints; None where there is no SLURM (or it does not answer)."""
    if not shutil.which("squeue"):
        return None
    try:
        out = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split() if out.returncode == 0 else None


def queued_slurm_jobs() -> Optional[set[str]]:
    """Job ids SLURM knows as pending or running (array tasks as JOB_TASK too); None without SLURM."""
    jobs = squeue("-o", "%A %i")
    return None if jobs is None else set(jobs)


def this_holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "claimed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def describe(holder: dict) -> str:
    if "host" not in holder:
        return "an unreadable claim"
    job = holder.get("slurm_job_id")
    return f"{holder.get('host')} pid {holder.get('pid')}" + (f", SLURM job {job}" if job else "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_claim(run_dir: Path) -> Optional[dict]:
    """The claim (with its heartbeat age in seconds), None if the run is unclaimed."""
    path = Path(run_dir) / CLAIM_FILE
    try:
        age = time.time() - path.stat().st_mtime
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        holder = {}  # a damaged claim: judged by its heartbeat alone
    return {**(holder if isinstance(holder, dict) else {}), "heartbeat_age_s": age}


def stale_reason(claim: dict, queued: Optional[set[str]]) -> Optional[str]:
    """Why a claim no longer holds, or None if it is alive. For a SLURM job the queue decides when
    it answers (a suspended job beats no heart but holds its run); otherwise the heartbeat does."""
    job = claim.get("slurm_job_id")
    if job and job == os.environ.get("SLURM_JOB_ID"):
        return f"left by an earlier start of this SLURM job ({job}, requeued)"
    if job and queued is not None:
        return None if job in queued else f"SLURM job {job} is no longer queued"
    if claim["heartbeat_age_s"] > STALE_S:
        return f"no heartbeat for {claim['heartbeat_age_s']:.0f} s (limit {STALE_S:.0f} s)"
    if not job and claim.get("host") == socket.gethostname() and not _pid_alive(int(claim.get("pid", -1))):
        return f"process {claim.get('pid')} is gone on {claim.get('host')}"
    return None


class Claim:
    """This process's claim on a run: ``acquire`` it, then ``release`` it whatever happens."""

    def __init__(self, run_dir: Path, taken_over: Optional[dict] = None):
        self.path = Path(run_dir) / CLAIM_FILE
        self.holder = this_holder()
        self.taken_over = taken_over  # {"from": holder, "reason": ..., "at": ...} when a stale claim was replaced
        self.lost = False  # set by the heartbeat when someone else took the claim over: stop, write nothing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="wdbench-heartbeat")

    @classmethod
    def acquire(cls, run_dir: Path, queued=ASK_SLURM) -> "Claim | dict":
        """This process's claim, or the live claim of whoever holds the run (a dict). ``queued``: the
        SLURM job ids in the queue (None: no SLURM here), asked of squeue when needed by default."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            claim = cls(run_dir)
            if claim._create():
                return claim.start()
            current = read_claim(run_dir)
            if current is None:
                continue  # released in between: try again
            if queued is ASK_SLURM:
                queued = queued_slurm_jobs()
            reason = stale_reason(current, queued)
            if reason is None:
                return current
            taken = cls._take_over(run_dir, current, reason, queued)
            if taken is not None:
                return taken.start()
        return read_claim(run_dir) or {"host": "?", "heartbeat_age_s": 0.0}

    @classmethod
    def _take_over(cls, run_dir: Path, stale: dict, reason: str, queued: Optional[set[str]]) -> "Optional[Claim]":
        """Replace a stale claim, one taker at a time (a lock, itself ignored once STALE_S old)."""
        lock = run_dir / TAKEOVER_LOCK
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > STALE_S:
                    lock.unlink(missing_ok=True)
            except FileNotFoundError:  # the other taker just finished: look again
                pass
            return None
        try:
            os.close(fd)
            current = read_claim(run_dir)
            if current is not None and stale_reason(current, queued) is None:
                return None  # someone else took it over first
            claim = cls(
                run_dir,
                taken_over={
                    "from": {k: v for k, v in stale.items() if k != "heartbeat_age_s"},
                    "reason": reason,
                    "at": this_holder()["claimed_at"],
                },
            )
            atomic_write_text(claim.path, json.dumps(claim.holder) + "\n")
            return claim
        finally:
            lock.unlink(missing_ok=True)

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(self.holder) + "\n")
        return True

    def start(self) -> "Claim":
        self._thread.start()
        return self

    def owned(self) -> bool:
        """Whether the claim file is still this process's (checked before every write)."""
        try:
            return json.loads(self.path.read_text()) == self.holder
        except FileNotFoundError:
            return False
        except (OSError, json.JSONDecodeError):
            return True  # unreadable for a moment (NFS): not evidence of a takeover

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            if not self.owned():
                self.lost = True
                return
            try:
                os.utime(self.path)
            except OSError:  # a transient NFS error: try again at the next beat
                continue

    def release(self) -> None:
        """Stop the heartbeat and remove the claim if it is still this process's."""
        self._stop.set()
        if self.owned():
            self.path.unlink(missing_ok=True)
