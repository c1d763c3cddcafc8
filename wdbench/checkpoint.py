"""Preemption-safe runs: atomic checkpoints in the run directory, and the stop signal turned into
a clean stop at the next step boundary (a signal can arrive in the middle of an optimizer step)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Optional

import torch

from wdbench.results import DamagedFile, atomic_write

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict) -> None:
    atomic_write(Path(run_dir) / CHECKPOINT_FILE, lambda fh: torch.save(state, fh))


def load_checkpoint(run_dir: Path) -> Optional[dict]:
    """The run's checkpoint, None if it has none; DamagedFile if it cannot be read, or holds anything
    but tensors, numbers, strings, lists, tuples and dicts (torch's weights_only unpickler: a file
    planted in a run directory cannot run code; docs/trust.md)."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, ...: torch raises many kinds
        raise DamagedFile(path, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None


def remove_checkpoint(run_dir: Path) -> None:
    (Path(run_dir) / CHECKPOINT_FILE).unlink(missing_ok=True)


class StopSignal:
    """Records the preemption/timeout signal instead of acting on it at once.

    Under submitit (SLURM) that is its preemption signal (USR2 unless SUBMITIT_PREEMPT_SIGNAL says
    otherwise), whose handler requeues the job; elsewhere SIGTERM. Call the instance to ask whether
    one arrived; ``hand_over`` then runs the original handler: submitit requeues the job with the
    same overrides and exits, so the next start finds the checkpoint.
    """

    def __init__(self) -> None:
        name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2") if os.environ.get("SUBMITIT_EXECUTOR") else "TERM"
        self.signum = getattr(signal, f"SIG{name}")
        self.received: Optional[int] = None
        self.previous = signal.signal(self.signum, self._record)

    def _record(self, signum, frame) -> None:
        self.received = signum

    def __call__(self) -> bool:
        return self.received is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def restore(self) -> None:
        signal.signal(self.signum, self.previous)

    def hand_over(self) -> None:
        self.restore()
        if callable(self.previous):
            self.previous(self.signum, None)  # submitit: checkpoint the submission, requeue, exit
        raise SystemExit(128 + self.signum)
