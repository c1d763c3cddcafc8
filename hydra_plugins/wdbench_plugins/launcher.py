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
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from hydra_plugins.wdbench_plugins._handover import PackingLauncher, SweepBatch
from hydra_plugins.wdbench_plugins.hydra_compat import BasicLauncher, job_return, job_value, set_job_value
from wdbench.claims import ELSEWHERE
from wdbench.progress import PERIOD_S, SweepProgress
from wdbench.results import FINISHED, SweepStopped, read_result

log = logging.getLogger(__name__)

STOP_GRACE_S = 60  # a stopped worker's time to reach a step boundary and write its pack's checkpoints
DEFAULT_PACK = 16  # runs per pack on the CPU; see docs/speed.md's packing measurements
FEW_PACKS = 4  # packs per worker below which pack counts are rounded to a multiple of the workers
GPU_PACK = 128  # runs per pack on a GPU, at most: its memory splits a pack further (wdbench.runner)


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.wdbench_plugins.launcher.LocalLauncher"
    n_jobs: int = -1  # worker processes; -1: one per core, or on a GPU machine one per visible GPU
    # at most this many compatible runs trained together as one stacked model (1: each alone);
    # null: 16 on CPUs, 128 on a GPU; on either, fewer where the device's memory says so
    pack: Optional[int] = None


ConfigStore.instance().store(group="hydra/launcher", name="local", node=LocalLauncherConf, provider="wdbench")


def pack_jobs(
    keys: Sequence[str],
    size: int,
    workers: int = 1,
    caps: Optional[Dict[str, int]] = None,
    costs: Optional[Dict[str, float]] = None,
) -> List[List[int]]:
    """Group job indices by pack key into packs of at most ``size`` (and of ``caps[key]``, what the
    device's memory allows), as even as can be, in order of first appearance. For several workers
    and fewer than FEW_PACKS packs each, the packs of a key are as many as a multiple of ``workers``
    where that keeps them at least half full (a third pack would leave one of two workers idle for a
    third of the sweep), split further while there are fewer packs than workers, and
    queued largest first (``costs[key]``: one run's relative cost), so the longest does not start last."""
    groups: Dict[str, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    caps = {key: max(1, min(size, (caps or {}).get(key, size))) for key in groups}
    counts = {key: math.ceil(len(members) / caps[key]) for key, members in groups.items()}
    if workers > 1 and sum(counts.values()) < FEW_PACKS * workers:  # (with many, the queue evens them out)
        for key, n in counts.items():
            even = math.ceil(n / workers) * workers
            if len(groups[key]) / even >= caps[key] / 2:  # not at the price of packs under half their size
                counts[key] = min(even, len(groups[key]))
    packs = []
    for key, members in groups.items():
        n = counts[key]
        packs += [members[j * len(members) // n : (j + 1) * len(members) // n] for j in range(n)]
    while len(packs) < workers and max(map(len, packs)) > 1:
        largest = max(range(len(packs)), key=lambda j: len(packs[j]))
        members = packs.pop(largest)
        packs[largest:largest] = [members[: len(members) // 2], members[len(members) // 2 :]]
    if workers > 1:
        packs.sort(key=lambda pack: -len(pack) * (costs or {}).get(keys[pack[0]], 1.0))
    return packs


def visible_gpus(device: str) -> List[str]:
    """The GPUs local workers train on, as CUDA_VISIBLE_DEVICES entries; none for device=cpu or on a
    machine without one. Asked through NVML (wdbench.__main__): the launching process must not
    initialise CUDA, or no forked worker could use it."""
    if device == "cpu":
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    listed = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed if "CUDA_VISIBLE_DEVICES" in os.environ else [str(i) for i in range(torch.cuda.device_count())]


def run_pack(
    hydra_context,
    config,
    jobs: Sequence[tuple],
    job_dir_key: str = "hydra.sweep.dir",
    job_id=None,
    composed: Optional[Dict[int, DictConfig]] = None,
) -> List[JobReturn]:
    """Prepare each (number, overrides) job as Hydra would run it (its directory, .hydra files and
    log), claiming it; then train the claimed ones together (wdbench.runner.train_jobs). ``composed``:
    job configs by number that the sweeper already composed (Hydra's composition costs ~0.1 s a run)."""
    from wdbench.app import prepare_job
    from wdbench.job import Job
    from wdbench.runner import train_jobs

    returns = []
    for idx, overrides in jobs:
        sweep_config = (composed or {}).get(idx) or hydra_context.config_loader.load_sweep_config(
            config, list(overrides)
        )
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx if job_id is None else job_id
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        returns.append(
            run_job(
                hydra_context=hydra_context,
                task_function=prepare_job,
                config=sweep_config,
                job_dir_key=job_dir_key,
                job_subdir_key="hydra.sweep.subdir",
            )
        )
    ready = [r for r in returns if r.status == JobStatus.COMPLETED and isinstance(job_value(r), Job)]
    if ready:
        for ret, outcome in zip(ready, train_jobs([job_value(r) for r in ready])):
            if isinstance(outcome, BaseException):
                ret.status = JobStatus.FAILED
            set_job_value(ret, outcome)
    return returns


# set before forking: workers read them instead of unpickling a task function and configs
_LAUNCHER = None
_COMPOSED: Dict[int, DictConfig] = {}  # the batch's configs by job number


class WorkerDied(RuntimeError):
    """The process training a run's pack ended without reporting (killed, or crashed in C code)."""


def _serve(conn, environ: Dict[str, str]) -> None:
    """A worker's life: train each pack it is sent and send back its job returns (or the exception).
    The launcher decides when it stops: Ctrl-C reaches the whole process group, so a worker ignores
    it and waits for the launcher's SIGTERM, on which training checkpoints at its next step and ends.
    ``environ``: set before anything here touches CUDA (the worker's GPU, and how many share it)."""
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the launcher's handler, inherited through fork
    while (jobs := conn.recv()) is not None:
        try:
            returns = run_pack(_LAUNCHER.hydra_context, _LAUNCHER.config, jobs, composed=_COMPOSED)
        except SystemExit:  # stopped by the launcher's SIGTERM, its pack checkpointed: the process ends
            raise
        except BaseException as err:  # a launcher error, not a run's (runs record their own failures)
            returns = err
        conn.send(returns)


class _Worker:
    """A forked worker process and the pack it is training, if any."""

    def __init__(self, environ: Dict[str, str]) -> None:
        self.conn, child_end = multiprocessing.Pipe()
        self.environ = environ
        self.process = multiprocessing.get_context("fork").Process(target=_serve, args=(child_end, environ))
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
    how = (
        f"exit code {code}"
        if code >= 0
        else signal.Signals(-code).name
        + (": killed from outside, e.g. by the out-of-memory killer" if code == -signal.SIGKILL else "")
    )
    return f"worker process {process.pid} died ({how})"


def _lost_returns(pack: Sequence[tuple], why: str, composed: Dict[int, DictConfig]) -> List[JobReturn]:
    """The returns of a dead worker's pack: a run that finished before it died keeps its status;
    the others failed here, their results and checkpoints left for a rerun to resume from."""
    returns = []
    for idx, overrides in pack:
        cfg = composed[idx]
        result = read_result(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir))
        if result and result.get("status") in FINISHED:
            returns.append(job_return(overrides, JobStatus.COMPLETED, result["status"]))
        else:
            returns.append(
                job_return(
                    overrides,
                    JobStatus.FAILED,
                    WorkerDied(
                        f"{why} while training this run's pack; rerun the sweep to resume it from its last checkpoint"
                    ),
                )
            )
    return returns


class _Pool:
    """The forked workers and the packs queued for them. A worker found dead is replaced while packs
    remain: a death costs only the pack it was training."""

    def __init__(
        self, environ: List[Dict[str, str]], queue: "collections.deque[List[tuple]]", composed: Dict[int, DictConfig]
    ) -> None:
        self.queue, self.composed = queue, composed  # composed: the configs by job number
        self.workers = [_Worker(e) for e in environ]

    def hand_next_pack(self, i: int) -> None:
        if not self.workers[i].give(self.queue[0]):
            log.error(f"{_died(self.workers[i].process)} between packs; a fresh worker takes the next pack")
            self.workers[i].wait()
            self.workers[i] = _Worker(self.workers[i].environ)
            self.workers[i].give(self.queue[0])
        self.queue.popleft()

    def busy(self) -> List[_Worker]:
        return [w for w in self.workers if w.pack is not None]

    def ready(self, busy: List[_Worker], timeout: float) -> List[_Worker]:
        """Of the busy workers, those that sent back their pack's returns or died, within ``timeout``."""
        ready = multiprocessing.connection.wait(
            [w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=timeout
        )
        return [w for w in busy if w.conn in ready or w.process.sentinel in ready]

    def take(self, worker: _Worker) -> "tuple[int, List[tuple], List[JobReturn]]":
        """A ready worker's slot, its pack and the pack's returns (a dead worker's, read from its runs'
        result files: it is replaced in its slot while packs remain)."""
        i, pack = self.workers.index(worker), worker.pack
        returns = worker.take()
        if returns is None:
            why = _died(worker.process)
            log.error(f"{why} while training {len(pack)} runs; a fresh worker takes the next pack")
            returns = _lost_returns(pack, why, self.composed)
            worker.wait()
            if self.queue:
                self.workers[i] = _Worker(worker.environ)
            else:
                del self.workers[i]
        elif isinstance(returns, BaseException):
            raise returns
        return i, pack, returns

    def close(self) -> None:
        for worker in self.workers:
            worker.ask_to_stop()
        for worker in self.workers:
            worker.wait()


@dataclass
class _Layout:
    """How a batch is spread over the local workers."""

    packs: List[List[int]]  # positions in the batch, a list per pack, in the order they are handed out
    environ: List[Dict[str, str]]  # one per worker
    size: int  # the most runs in a pack
    where: str  # the devices, for the log


class LocalLauncher(PackingLauncher, BasicLauncher):
    shows_progress = True  # its own line, from the returns as packs end

    def __init__(self, n_jobs: int = -1, pack: Optional[int] = None) -> None:
        super().__init__()
        self.n_jobs, self.pack = n_jobs, pack

    def launch_planned(self, batch: SweepBatch, initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        layout = self._layout(batch)
        log.info(
            f"Launching {len(batch)} jobs in {len(layout.packs)} packs of at most {layout.size} on "
            f"{len(layout.environ)} local workers on {layout.where} (each run's log: app.log in its directory)"
        )
        for idx, overrides in enumerate(batch.overrides, start=initial_job_idx):
            log.debug(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        composed = {initial_job_idx + i: cfg for i, cfg in enumerate(batch.configs)}
        self._ready_to_fork(composed)
        progress = SweepProgress(len(batch) + batch.skipped, batch.skipped)
        queue = collections.deque([[(initial_job_idx + i, batch.overrides[i]) for i in pack] for pack in layout.packs])
        returns = _train(_Pool(layout.environ, queue, composed), initial_job_idx, len(batch), progress)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns

    def _layout(self, batch: SweepBatch) -> _Layout:
        """Workers: one per core, or per visible GPU (each pinned to its GPU, shared by how many); packs
        of a key no larger than the device allows (the CPU's: by memory; a GPU's: split in training)."""
        gpus = visible_gpus(json.loads(batch.pack_keys[0])["device"])
        workers = min(len(batch), self.n_jobs if self.n_jobs > 0 else len(gpus) or os.cpu_count() or 1)
        size = self.pack or (GPU_PACK if gpus else DEFAULT_PACK)
        caps, costs = ({}, {}) if gpus else _cpu_pack_limits(batch)
        packs = pack_jobs(batch.pack_keys, size, workers, caps, costs)
        environ = [
            {
                "CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)],
                "WDBENCH_WORKERS_PER_GPU": str(len(range(i % len(gpus), workers, len(gpus)))),
            }
            if gpus
            else {}
            for i in range(workers)
        ]
        where = (
            f"{len(gpus)} GPU(s) ({', '.join(sorted(set(e['CUDA_VISIBLE_DEVICES'] for e in environ)))})"
            if gpus
            else "the CPU"
        )
        return _Layout(packs, environ, size, where)

    def _ready_to_fork(self, composed: Dict[int, DictConfig]) -> None:
        """What every forked worker inherits: this launcher, the batch's configs, torch and timm imported."""
        global _LAUNCHER, _COMPOSED
        import torch  # a parent that initialised CUDA forks workers that cannot use it

        if torch.cuda.is_initialized():
            raise RuntimeError(
                "CUDA was initialised in the launching process, so forked workers cannot use it; "
                "launch through python -m wdbench (which asks about GPUs through NVML)"
            )
        _LAUNCHER, _COMPOSED = self, composed
        import wdbench.runner  # noqa: F401  (torch, timm: imported once here, inherited by every forked worker)


def _train(pool: _Pool, first_idx: int, n_jobs: int, progress: SweepProgress) -> List[JobReturn]:
    """Hand out the queued packs and collect their returns, in job order, until every pack ended. A
    stop (Ctrl-C, or SIGTERM to this process) stops the workers too, each checkpointing its pack."""
    returns: List[Optional[JobReturn]] = [None] * n_jobs
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        for i in range(len(pool.workers)):
            pool.hand_next_pack(i)
        while busy := pool.busy():  # a line when a pack ends, and while long ones train
            for worker in pool.ready(busy, timeout=1.0 if progress.live else PERIOD_S):
                i, pack, pack_returns = pool.take(worker)
                for (idx, _), job in zip(pack, pack_returns):
                    returns[idx - first_idx] = job
                    progress.update(outcome(job))
                if pool.queue:
                    pool.hand_next_pack(i)
            progress.show()
    except KeyboardInterrupt:
        raise SweepStopped(signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        pool.close()
    progress.show(final=True)
    return returns


def _cpu_pack_limits(batch: SweepBatch) -> "tuple[Dict[str, int], Dict[str, float]]":
    """Per pack key, how many members a CPU pack may have (wdbench.runner.cpu_pack_limits) and a run's
    relative cost (its memory times its samples: wider and longer runs take longer)."""
    from wdbench.config import parse_run_config
    from wdbench.runner import cpu_pack_limits

    caps, costs = {}, {}
    for key in dict.fromkeys(batch.pack_keys):
        caps[key], costs[key] = cpu_pack_limits(parse_run_config(batch.configs[batch.pack_keys.index(key)]))
    return caps, costs


def outcome(job: JobReturn) -> str:
    """completed, diverged, failed or elsewhere: what a run's job came back with."""
    if job.status == JobStatus.FAILED:
        return "failed"
    return "elsewhere" if job_value(job) == ELSEWHERE else str(job_value(job))
