"""Local multiruns on every core: long-lived worker processes forked from the launching process,
one single-threaded worker per core (threads=0 gives each run 1 thread under this launcher), each
training a pack of up to ``pack`` compatible runs at a time (wdbench.train: one stacked model).

Forked workers inherit the imported torch/timm/Hydra, so a sweep pays no per-worker import cost
(Hydra's joblib launcher forces loky, whose fresh workers spend ~5 s importing and ~3 s shutting
down: more than a whole run of the default sweep). A worker that dies (the out-of-memory killer's
SIGKILL) costs only its own pack: its runs are reported failed, keep their checkpoints for a rerun
to resume, and a fresh worker takes the next pack (concurrent.futures' pool would break as a whole
and kill the other workers' packs with it).
"""
import collections
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
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
from wdbench.results import FINISHED, SweepStopped, read_result

log = logging.getLogger(__name__)

STOP_GRACE_S = 60  # a stopped worker's time to reach a step boundary and write its pack's checkpoints
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


class WorkerDied(RuntimeError):
    """The process training a run's pack ended without reporting (killed, or crashed in C code)."""


def _serve(conn) -> None:
    """A worker's life: train each pack it is sent and send back its job returns (or the exception).
    The launcher decides when it stops: Ctrl-C reaches the whole process group, so a worker ignores
    it and waits for the launcher's SIGTERM, on which training checkpoints at its next step and ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the launcher's handler, inherited through fork
    while (jobs := conn.recv()) is not None:
        try:
            returns = run_pack(_LAUNCHER.hydra_context, _LAUNCHER.config, jobs, composed=_LAUNCHER.composed)
        except SystemExit:  # stopped by the launcher's SIGTERM, its pack checkpointed: the process ends
            raise
        except BaseException as err:  # a launcher error, not a run's (runs record their own failures)
            returns = err
        conn.send(returns)


class _Worker:
    """A forked worker process and the pack it is training, if any."""

    def __init__(self) -> None:
        self.conn, child_end = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(target=_serve, args=(child_end,))
        self.process.start()
        child_end.close()
        self.pack: Optional[List[tuple]] = None

    def give(self, pack: List[tuple]) -> bool:
        """Send the worker its next pack; False if it died since its last one (nothing was sent)."""
        try:
            self.conn.send(pack)
        except OSError:
            return False
        self.pack = pack
        return True

    def take(self) -> "List[JobReturn] | BaseException | None":
        """What the worker sent back for its pack, or None if it died without sending it all."""
        try:
            returns = self.conn.recv()
        except (EOFError, OSError):
            return None
        self.pack = None
        return returns

    def ask_to_stop(self) -> None:
        """An idle worker is told to exit; a busy one (the sweep is being stopped) gets SIGTERM, on
        which its pack checkpoints at the next step boundary."""
        if self.pack is None:
            try:
                self.conn.send(None)
            except OSError:
                pass  # already gone
        else:
            self.process.terminate()

    def wait(self, grace_s: float = STOP_GRACE_S) -> None:
        self.process.join(grace_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _raise_stopped(signum, frame) -> None:
    raise SweepStopped(signum)


def _died(process) -> str:
    process.join()
    code = process.exitcode
    how = f"exit code {code}" if code >= 0 else signal.Signals(-code).name + (
        ": killed from outside, e.g. by the out-of-memory killer" if code == -signal.SIGKILL else "")
    return f"worker process {process.pid} died ({how})"


def _lost_returns(launcher, pack: Sequence[tuple], why: str) -> List[JobReturn]:
    """The returns of a dead worker's pack: a run that finished before it died keeps its status;
    the others failed here, their results and checkpoints left for a rerun to resume from."""
    returns = []
    for idx, overrides in pack:
        cfg = launcher.composed.get(idx) or launcher.hydra_context.config_loader.load_sweep_config(
            launcher.config, list(overrides))
        result = read_result(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir))
        if result and result.get("status") in FINISHED:
            returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED,
                                     _return_value=result["status"]))
        else:
            returns.append(JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=WorkerDied(
                f"{why} while training this run's pack; rerun the sweep to resume it from its last checkpoint")))
    return returns


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
        queue = collections.deque([[(initial_job_idx + i, job_overrides[i]) for i in pack] for pack in packs])
        pool = [_Worker() for _ in range(workers)]

        def hand_next_pack(i: int) -> None:
            if not pool[i].give(queue[0]):
                log.error(f"{_died(pool[i].process)} between packs; a fresh worker takes the next pack")
                pool[i].wait()
                pool[i] = _Worker()
                pool[i].give(queue[0])
            queue.popleft()

        previous = signal.signal(signal.SIGTERM, _raise_stopped)  # kill <launcher>: stop the workers cleanly too
        try:
            for i in range(len(pool)):
                hand_next_pack(i)
            while busy := [w for w in pool if w.pack is not None]:  # a line when a pack ends, and while long ones train
                ready = multiprocessing.connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                                                        timeout=1.0 if progress.live else PERIOD_S)
                for worker in busy:
                    if worker.conn not in ready and worker.process.sentinel not in ready:
                        continue
                    i, pack = pool.index(worker), worker.pack
                    pack_returns = worker.take()
                    if pack_returns is None:
                        why = _died(worker.process)
                        log.error(f"{why} while training {len(pack)} runs; a fresh worker takes the next pack")
                        pack_returns = _lost_returns(self, pack, why)
                        worker.wait()
                        if queue:
                            pool[i] = _Worker()
                        else:
                            del pool[i]
                    elif isinstance(pack_returns, BaseException):
                        raise pack_returns
                    for (idx, _), job in zip(pack, pack_returns):
                        returns[idx - initial_job_idx] = job
                        progress.update(outcome(job))
                    if queue:
                        hand_next_pack(i)
                progress.show()
        except KeyboardInterrupt:
            raise SweepStopped(signal.SIGINT) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            for worker in pool:
                worker.ask_to_stop()
            for worker in pool:
                worker.wait()
        progress.show(final=True)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns


def outcome(job: JobReturn) -> str:
    """completed, diverged, failed or elsewhere: what a run's job came back with."""
    if job.status == JobStatus.FAILED:
        return "failed"
    return "elsewhere" if job._return_value == ELSEWHERE else str(job._return_value)
