"""Local multiruns on every core: long-lived worker processes forked from the launching process,
one single-threaded worker per core (threads=0 gives each run 1 thread under this launcher), each
training a pack of up to ``pack`` compatible runs at a time (wdbench.train: one stacked model).

Forked workers inherit the imported torch/timm/Hydra, so a sweep pays no per-worker import cost
(Hydra's joblib launcher forces loky, whose fresh workers spend ~5 s importing and ~3 s shutting
down: more than a whole run of the default sweep).
"""
import logging
import math
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from wdbench.claims import ELSEWHERE
from wdbench.progress import PERIOD_S, SweepProgress

log = logging.getLogger(__name__)

DEFAULT_PACK = 16  # runs per pack on the CPU; see the README's packing measurements


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.wdbench_plugins.launcher.LocalLauncher"
    n_jobs: int = -1  # worker processes; -1: one per core
    pack: int = DEFAULT_PACK  # at most this many compatible runs trained together as one stacked model; 1: each alone


ConfigStore.instance().store(group="hydra/launcher", name="local", node=LocalLauncherConf, provider="wdbench")


def pack_jobs(keys: Sequence[str], size: int, workers: int = 1) -> List[List[int]]:
    """Group job indices by pack key into packs of at most ``size``, as even as can be, in order of
    first appearance; packs are split further while there are fewer of them than ``workers``."""
    groups: Dict[str, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    packs = []
    for members in groups.values():
        n = math.ceil(len(members) / size)
        packs += [members[j * len(members) // n:(j + 1) * len(members) // n] for j in range(n)]
    while len(packs) < workers and max(map(len, packs)) > 1:
        largest = max(range(len(packs)), key=lambda j: len(packs[j]))
        members = packs.pop(largest)
        packs[largest:largest] = [members[:len(members) // 2], members[len(members) // 2:]]
    return packs


def pack_keys(launcher, job_overrides: Sequence[Sequence[str]]) -> List[str]:
    """Each job's pack key (wdbench.config.pack_key), from its composed config."""
    from wdbench.config import pack_key, parse_run_config

    return [pack_key(parse_run_config(launcher.hydra_context.config_loader.load_sweep_config(launcher.config,
                                                                                             list(overrides))))
            for overrides in job_overrides]


def run_pack(hydra_context, config, jobs: Sequence[tuple], job_dir_key: str = "hydra.sweep.dir",
             job_id=None, composed: Optional[Dict[int, DictConfig]] = None) -> List[JobReturn]:
    """Prepare each (number, overrides) job as Hydra would run it (its directory, .hydra files and
    log), claiming it; then train the claimed ones together (wdbench.runner.train_jobs). ``composed``:
    job configs by number that the sweeper already composed (Hydra's composition costs ~0.1 s a run)."""
    from wdbench.app import Job, prepare_job
    from wdbench.runner import train_jobs

    returns = []
    for idx, overrides in jobs:
        sweep_config = (composed or {}).get(idx) or hydra_context.config_loader.load_sweep_config(config,
                                                                                                 list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx if job_id is None else job_id
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        returns.append(run_job(hydra_context=hydra_context, task_function=prepare_job, config=sweep_config,
                               job_dir_key=job_dir_key, job_subdir_key="hydra.sweep.subdir"))
    ready = [r for r in returns if r.status == JobStatus.COMPLETED and isinstance(r._return_value, Job)]
    if ready:
        for ret, outcome in zip(ready, train_jobs([r._return_value for r in ready])):
            if isinstance(outcome, BaseException):
                ret.status = JobStatus.FAILED
            ret._return_value = outcome
    return returns


_LAUNCHER = None  # set before forking: workers read it instead of unpickling a task function


def _run_pack(jobs: Sequence[tuple]) -> List[JobReturn]:
    return run_pack(_LAUNCHER.hydra_context, _LAUNCHER.config, jobs, composed=_LAUNCHER.composed)


class LocalLauncher(BasicLauncher):
    def __init__(self, n_jobs: int = -1, pack: int = DEFAULT_PACK) -> None:
        super().__init__()
        self.n_jobs, self.pack = n_jobs, pack
        self.skipped = 0  # runs of the sweep that the sweeper did not launch (finished, or trained elsewhere)
        self.pack_keys: Optional[List[str]] = None  # of the jobs to launch, when the sweeper knows them
        self.composed: Dict[int, DictConfig] = {}  # their configs by job number, when the sweeper composed them

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        global _LAUNCHER
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        workers = min(len(job_overrides), self.n_jobs if self.n_jobs > 0 else os.cpu_count() or 1)
        keys = self.pack_keys or pack_keys(self, job_overrides)
        packs = pack_jobs(keys, self.pack, workers)
        log.info(f"Launching {len(job_overrides)} jobs in {len(packs)} packs of at most {self.pack} on {workers} "
                 "local workers (each run's log: app.log in its directory)")
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.debug(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        _LAUNCHER = self
        import wdbench.runner  # noqa: F401  (torch, timm: imported once here, inherited by every forked worker)
        progress = SweepProgress(len(job_overrides) + self.skipped, self.skipped)
        returns: List[Optional[JobReturn]] = [None] * len(job_overrides)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_run_pack, [(initial_job_idx + i, job_overrides[i]) for i in pack]): pack
                       for pack in packs}
            pending = set(futures)
            while pending:  # a line when a pack ends, and the periodic one while long packs train
                done, pending = wait(pending, timeout=1.0 if progress.live else PERIOD_S, return_when=FIRST_COMPLETED)
                for future in done:
                    for i, job in zip(futures[future], future.result()):
                        returns[i] = job
                        progress.update(outcome(job))
                progress.show()
        progress.show(final=True)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns


def outcome(job: JobReturn) -> str:
    """completed, diverged, failed or elsewhere: what a run's job came back with."""
    if job.status == JobStatus.FAILED:
        return "failed"
    return "elsewhere" if job._return_value == ELSEWHERE else str(job._return_value)
