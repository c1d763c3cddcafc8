"""One progress display for a whole sweep: a live line on a terminal, a plain line every
``PERIOD_S`` seconds where nobody watches a terminal (CI, SLURM logs, nohup), and a last line at
the end. Each run's own lines go to its run directory (app.log), not to the sweep's console."""
from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Optional, TextIO

PERIOD_S = 30.0
OUTCOMES = ("completed", "diverged", "failed", "elsewhere")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


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
        elapsed = time.monotonic() - self.start
        to_go = self.total - self.skipped - ended
        eta = _duration(elapsed / ended * to_go) if ended and to_go else "--" if to_go else "0m00s"
        outcomes = ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES if o != "elsewhere" or self.counts[o])
        return (f"sweep: {ended + self.skipped}/{self.total} runs done ({outcomes}, {self.skipped} skipped) | "
                f"elapsed {_duration(elapsed)} | ETA {eta}")

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if self.live:
            self.stream.write("\r" + self.line() + "\033[K" + ("\n" if final else ""))
        elif final or now - self._last >= PERIOD_S:
            self.stream.write(self.line() + "\n")
            self._last = now
        self.stream.flush()
