"""Local multiruns on every core: long-lived worker processes forked from the launching process,
one single-threaded worker per core (threads=0 gives each run 1 thread under this launcher).

Forked workers inherit the imported torch/timm/Hydra, so a sweep pays no per-worker import cost
(Hydra's joblib launcher forces loky, whose fresh workers spend ~5 s importing and ~3 s shutting
down: more than a whole run of the default sweep).
"""
import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import open_dict

from wdbench.claims import ELSEWHERE
from wdbench.progress import PERIOD_S, SweepProgress

log = logging.getLogger(__name__)


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.wdbench_plugins.launcher.LocalLauncher"
    n_jobs: int = -1  # worker processes; -1: one per core


ConfigStore.instance().store(group="hydra/launcher", name="local", node=LocalLauncherConf, provider="wdbench")

_LAUNCHER = None  # set before forking: workers read it instead of unpickling a task function


def _run_one(idx: int, overrides: Sequence[str]) -> JobReturn:
    launcher = _LAUNCHER
    sweep_config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = idx
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=launcher.hydra_context, task_function=launcher.task_function,
                   config=sweep_config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


class LocalLauncher(BasicLauncher):
    def __init__(self, n_jobs: int = -1) -> None:
        super().__init__()
        self.n_jobs = n_jobs
        self.skipped = 0  # runs of the sweep that the sweeper did not launch (finished, or trained elsewhere)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        global _LAUNCHER
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        workers = min(len(job_overrides), self.n_jobs if self.n_jobs > 0 else os.cpu_count() or 1)
        log.info(f"Launching {len(job_overrides)} jobs on {workers} local workers (each run's log: app.log in "
                 "its directory)")
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.debug(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        _LAUNCHER = self
        progress = SweepProgress(len(job_overrides) + self.skipped, self.skipped)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_run_one, idx, overrides)
                       for idx, overrides in enumerate(job_overrides, start=initial_job_idx)]
            pending = set(futures)
            while pending:  # a line when a run ends, and the periodic one while long runs train
                done, pending = wait(pending, timeout=1.0 if progress.live else PERIOD_S, return_when=FIRST_COMPLETED)
                for future in done:
                    progress.update(outcome(future.result()))
                progress.show()
            runs: List[JobReturn] = [f.result() for f in futures]
        progress.show(final=True)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return runs


def outcome(job: JobReturn) -> str:
    """completed, diverged, failed or elsewhere: what a run's job came back with."""
    if job.status == JobStatus.FAILED:
        return "failed"
    return "elsewhere" if job._return_value == ELSEWHERE else str(job._return_value)
