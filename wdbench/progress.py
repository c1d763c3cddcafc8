"""One progress display for a whole sweep: a live line on a terminal, a plain line every
``PERIOD_S`` seconds where nobody watches a terminal (CI, SLURM logs, nohup), and a last line at
the end. Each run's own lines go to its run directory (app.log), not to the sweep's console."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence, TextIO

PERIOD_S = 30.0
OUTCOMES = ("completed", "diverged", "failed", "elsewhere")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class SweepProgress:
    def __init__(self, total: int, skipped: int = 0, stream: Optional[TextIO] = None, live: Optional[bool] = None):
        stream = stream or sys.stderr  # looked up now: stderr may have been redirected since import
        self.total, self.skipped, self.stream = total, skipped, stream
        self.live = stream.isatty() if live is None else live
        self.counts: Counter = Counter()
        self.start = self._last = time.monotonic()

    def update(self, outcome: str) -> None:
        """One run ended: completed, diverged, failed or elsewhere (trained by another launch)."""
        self.counts[outcome] += 1
        self.show()

    def line(self) -> str:
        ended = sum(self.counts.values())
        trained = ended - self.counts["elsewhere"]  # runs found trained elsewhere end at once: not a rate
        elapsed = time.monotonic() - self.start
        to_go = self.total - self.skipped - ended
        eta = _duration(elapsed / trained * to_go) if trained and to_go else "--" if to_go else "0m00s"
        outcomes = ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES if o != "elsewhere" or self.counts[o])
        return (
            f"sweep: {ended + self.skipped}/{self.total} runs done ({outcomes}, {self.skipped} skipped) | "
            f"elapsed {_duration(elapsed)} | ETA {eta}"
        )

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if self.live:
            self.stream.write("\r" + self.line() + "\033[K" + ("\n" if final else ""))
        elif final or now - self._last >= PERIOD_S:
            self.stream.write(self.line() + "\n")
            self._last = now
        self.stream.flush()


class ResultWatcher(threading.Thread):
    """The same progress for launchers that wait without showing any (SLURM, basic): every
    ``PERIOD_S`` (a terminal: every second) it reads the launched runs' result files and shows the
    counts. ``stop`` shows the last line."""

    def __init__(self, run_dirs: Sequence[Path], total: int, skipped: int):
        super().__init__(daemon=True, name="wdbench-progress")
        self.progress = SweepProgress(total, skipped)
        self.before = {Path(d): self._stamp(Path(d)) for d in run_dirs}  # an old failed result is not news
        self.ended: dict = {}  # run dir -> outcome, never read again
        self._stop_event = threading.Event()

    @staticmethod
    def _stamp(run_dir: Path) -> Optional[float]:
        try:
            return (run_dir / "result.json").stat().st_mtime
        except OSError:
            return None

    def _poll(self) -> None:
        from wdbench.results import DamagedFile, read_result

        for run_dir, before in self.before.items():
            if run_dir in self.ended or self._stamp(run_dir) == before:
                continue
            try:
                status = (read_result(run_dir) or {}).get("status")
            except DamagedFile:
                continue
            if status in ("completed", "diverged", "failed"):
                self.ended[run_dir] = status
        self.progress.counts = Counter(self.ended.values())

    def run(self) -> None:
        while not self._stop_event.wait(1.0 if self.progress.live else PERIOD_S):
            self._poll()
            self.progress.show()

    def stop(self, outcomes: Optional[Sequence[str]] = None, last_line: bool = True) -> None:
        """The last line: from the launcher's own outcomes when it returned them, else the files;
        none when the sweep ends in an error line of its own (``last_line=False``)."""
        self._stop_event.set()
        if self.is_alive():  # its poll in flight ends first: two writers would interleave their lines
            self.join()
        if not last_line:
            return
        if outcomes is None:
            self._poll()
        else:
            self.progress.counts = Counter(outcomes)
        self.progress.show(final=True)
