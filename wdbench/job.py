"""A run ready to train: what the app prepared (its validated config, claim, directory and log) and
the runner trains. Its own module, so the app (which prepares it) and the runner (which trains it)
import it from below rather than from each other."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from wdbench.claims import Claim
from wdbench.config import RunConfig


@dataclass
class Job:
    """A validated, claimed run about to train (alone or in a pack), with what it needs of its Hydra job."""

    cfg: DictConfig
    run: RunConfig
    run_dir: Path
    overrides: list[str]
    desc: str
    in_local_sweep: bool
    claim: Claim
    previous: Optional[dict]
    log_file: Optional[str]  # the run's own log (Hydra's app.log in its directory), if logging goes to a file

    @property
    def log(self) -> logging.Logger:
        """Where this run's lines go while it trains in a pack (wdbench.runner._own_log_files)."""
        return logging.getLogger(f"wdbench.run.{self.run_dir}")
