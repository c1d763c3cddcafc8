"""Training prepared runs (wdbench.app.Job), alone or as one pack: each run's record (its
result.json, checkpoint and experiment logger) written as it trains, its claim released at the end."""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import math
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Optional, Sequence

import torch
from omegaconf import OmegaConf

from wdbench.checkpoint import StopSignal, load_checkpoint, remove_checkpoint, save_checkpoint
from wdbench.claims import ELSEWHERE
from wdbench.config import RunConfig, made_by
from wdbench.job import Job
from wdbench.loggers import open_logger
from wdbench.numerics import autocast_reaches_vmap, gpu_versions
from wdbench.results import SCHEMA_VERSION, DamagedFile, device_type, provenance, set_aside, write_result
from wdbench.sources import input_shape, split_sizes, train_size
from wdbench.train import Interrupted, Member, NoDevice, Pack, alone_only, member_bytes, resolve_device

log = logging.getLogger("wdbench")


def _threads(job: Job) -> int:
    if job.run.threads:
        return job.run.threads
    if job.in_local_sweep:
        return 1  # one single-threaded worker per core
    return int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or torch.get_num_threads()


class Record:
    """One run's result.json, checkpoint and experiment logger while it trains, alone or in a pack."""

    def __init__(self, job: Job, member: Member, pack: Pack, checkpoint: Optional[dict], pack_provenance: dict):
        self.job, self.member, self.pack = job, member, pack
        run, run_dir = job.run, job.run_dir
        if checkpoint is not None:
            self.result = job.previous
            self.result["resumes"] += 1
            job.log.info(f"{run_dir}: resuming at epoch {len(checkpoint['history'])}, step {checkpoint['step']}")
            devices = self.result.setdefault("device_types", [device_type(self.result["provenance"])])
            if pack_provenance["device_type"] not in devices:  # resumed on another kind of device: its rounding
                devices.append(pack_provenance["device_type"])  # differs (analysis collect says so)
        else:
            remove_checkpoint(run_dir)  # a failed (or changed) run starts again from scratch
            self.result = _result_header(job, member, pack, pack_provenance)
        taken_over = self.result.setdefault("claims_taken_over", []) if job.claim.taken_over else None
        if taken_over is not None and job.claim.taken_over not in taken_over:  # (a pack split retrains it here)
            taken_over.append(job.claim.taken_over)
        self.logger = open_logger(
            run.logger,
            run_dir,
            self.result["config"],
            job.desc,
            run.out_dir,
            run.name,
            (self.result.get("logger") or {}).get("mlflow_run_id"),
        )
        if getattr(self.logger, "run_id", None):
            self.result["logger"] = {"mlflow_run_id": self.logger.run_id}
        write_result(run_dir, self.result)
        self.last_save = time.monotonic()
        self.done = False  # finished (or lost its claim): nothing more is written here

    def save(self, state: dict) -> None:
        if not self.job.claim.owned():  # taken over while this process stalled: the taker writes from now on
            self.job.claim.lost = True
            return
        save_checkpoint(self.job.run_dir, state)
        self.result["history"] = self.member.history
        write_result(self.job.run_dir, self.result)
        self.last_save = time.monotonic()

    def epoch_end(self, write_s: float = 0.0) -> bool:
        """Log the epoch; whether a checkpoint is due: checkpoint_every_s since the last, and at least
        CHECKPOINT_GAP times as long as the pack's last one took to write (a wide pack's state is GBs)."""
        if self.logger:
            self.logger.log(self.member.history[-1])
        return time.monotonic() - self.last_save >= max(self.job.run.checkpoint_every_s, CHECKPOINT_GAP * write_s)

    def preempted(self, stop: StopSignal, state: dict) -> None:
        self.result["preemptions"].append(
            {
                "signal": stop.name,
                "epoch": len(self.member.history),
                "step": self.pack.step,
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        )
        self.save(state)
        self.close("stopped")

    def finish(self, status: str) -> str:
        """The final result; ELSEWHERE if the claim was taken over meanwhile (nothing written)."""
        self.close(status)
        if not self.job.claim.owned():
            self.job.log.warning(
                f"{self.job.run_dir}: the claim was taken over by another launch; finished here without writing"
            )
            return ELSEWHERE
        self.result.update(
            status=status, metrics=self.member.metrics(), history=self.member.history, timing=self.pack.timing()
        )
        path = write_result(self.job.run_dir, self.result)
        remove_checkpoint(self.job.run_dir)
        m = self.result["metrics"]
        accuracy = f" val_acc={m['val_acc']:.4f}" if m["val_acc"] is not None else ""  # a regression has none
        self.job.log.info(f"{status}: val_loss={m['val_loss']:.4f}{accuracy} -> {path}")
        return status

    def fail(self, err: BaseException) -> None:
        self.close("failed")
        if self.job.claim.owned():
            self.result.update(status="failed", **_error(err), history=self.member.history)
            write_result(self.job.run_dir, self.result)

    def close(self, ended: str) -> None:
        """Tell the experiment logger how the run ended (completed, diverged, failed or stopped), once."""
        if not self.done and self.logger:
            self.logger.close(ended)
        self.done = True


CHECKPOINT_GAP = 20  # checkpoints at most 1/20 of a pack's time (a stop signal always checkpoints)


def _pack_provenance(pack: Pack, pack_dirs: list[str]) -> dict:
    """Where and with what a pack's runs trained (one call for the pack: git and the package
    versions take ~0.1 s to ask, as long as a small run's training step)."""
    gpu = gpu_versions(pack.device)
    return {
        **provenance(str(pack.device) + (f" ({gpu['gpu']})" if gpu else "")),
        "device_type": pack.device.type,
        **gpu,
        "numerics": pack.numerics,
        "threads": torch.get_num_threads(),
        "pack": {"size": pack.size, "members": pack_dirs},
    }


def recorded_config(job: Job) -> dict:
    """A run's config as composed (the λ it resolves to is under "penalty"), with the fingerprint of the
    data it read (wdbench.checks fills it in): what a later launch compares to know the run (config.made_by)."""
    config = OmegaConf.to_container(job.cfg, resolve=True)
    config["data"]["fingerprint"] = job.run.data.fingerprint
    return config


def _result_header(job: Job, member: Member, pack: Pack, pack_provenance: dict) -> dict:
    run, config = job.run, recorded_config(job)
    p, o, d = run.penalty, run.optim, run.data
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "run_dir": str(job.run_dir.resolve()),
        "overrides": job.overrides,
        "config": config,
        "model": {
            "name": run.model.name,
            **({"arch": run.model.arch} if hasattr(run.model, "arch") else {}),  # model=timm: which architecture
            "width": run.model.width,
            "n_params": member.n_params,
            "n_decayed": member.n_decayed,
        },
        "penalty": {
            "norm": p.norm,
            "apply": p.apply,
            "lam": member.penalty.lam,
            "coef": member.penalty.coef,
            "exclude": list(p.exclude),
        },
        "optim": {
            "name": o.name,
            "lr": o.lr,
            "momentum": o.momentum,
            "nesterov": o.nesterov,
            "betas": list(o.betas),
            "schedule": o.schedule,
            "warmup_epochs": o.warmup_epochs,
            "epochs": o.epochs,
        },
        "data": {
            "name": d.name,
            "n_train": pack.n_train,
            "n_val": len(pack.data.y_val),
            "batch_size": o.batch_size,
            "image_size": pack.data.image_size,
            "augment": d.augment,
        },
        "seed": run.seed,
        "resumes": 0,
        "preemptions": [],
        "provenance": copy.deepcopy(pack_provenance),
        "device_types": [pack_provenance["device_type"]],  # every kind of device it trained on, resumes included
    }


def _error(err: BaseException) -> dict:
    return {"error": f"{type(err).__name__}: {err}", "traceback": "".join(traceback.format_exception(err))}


def _failed_before_training(job: Job, err: BaseException) -> None:
    """A run that could not even be built (e.g. unreadable data) still leaves one result saying why."""
    write_result(
        job.run_dir,
        {
            "schema_version": SCHEMA_VERSION,
            "status": "failed",
            **_error(err),
            "run_dir": str(job.run_dir.resolve()),
            "overrides": job.overrides,
            "config": recorded_config(job),
            "seed": job.run.seed,
            "provenance": provenance(job.run.device),
        },
    )


def _checkpoint(job: Job) -> Optional[dict]:
    """The checkpoint a run resumes from, if its recorded result says it is this run, still running."""
    previous = job.previous
    if not (previous and previous.get("status") == "running" and made_by(previous, job.run)):
        return None
    try:
        return load_checkpoint(job.run_dir)
    except DamagedFile as err:
        job.log.warning(f"{err}; {set_aside(err.path)}, the run starts again from scratch")
        return None


@contextlib.contextmanager
def _own_log_files(jobs: Sequence[Job]):
    """While runs train together, each one's lines go to its own log file (as they would alone), not
    to the file Hydra set up for the last one prepared; the console keeps getting them all."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    own = []
    for job in jobs:
        if job.log_file:
            handler = logging.FileHandler(job.log_file)
            handler.setFormatter(files[0].formatter if files else None)
            job.log.addHandler(handler)
            own.append((job, handler))
    for handler in files:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in files:
            root.addHandler(handler)
        for job, handler in own:
            job.log.removeHandler(handler)
            handler.close()


def train_jobs(jobs: Sequence[Job]) -> list:
    """Train claimed runs that share a pack key together, and release their claims; returns each
    one's status, or the exception it failed with. Runs resuming from different steps train as
    separate packs, one after another."""
    try:
        with _own_log_files(jobs):
            torch.set_num_threads(_threads(jobs[0]))
            outcomes: list = [None] * len(jobs)
            _train_runs(jobs, list(range(len(jobs))), outcomes, data=None)
            return outcomes
    finally:
        for job in jobs:
            job.claim.release()


def _train_runs(jobs: Sequence[Job], indices: list[int], outcomes: list, data):
    """Train jobs[i] for i in ``indices`` in packs that fit; a pack that runs out of GPU memory is
    split in two and each half trained on from what the whole saved. Returns the dataset loaded."""
    checkpoints = {i: _checkpoint(jobs[i]) for i in indices}
    position = {i: (c["step"], len(c["history"])) if c else (0, 0) for i, c in checkpoints.items()}
    for start in sorted(set(position.values())):
        starting = [i for i in indices if position[i] == start]
        for group in _packs_that_fit(jobs, starting, data_loaded=data is not None):
            data, out_of_memory = _train_pack(
                [jobs[i] for i in group], [checkpoints[i] for i in group], data, outcomes, group
            )
            if out_of_memory:
                log.warning(
                    f"a pack of {len(group)} runs ran out of memory on {jobs[group[0]].run.device} "
                    f"({out_of_memory}); training it as two packs of about {len(group) // 2}"
                )
                left = [i for i in group if outcomes[i] is None]  # not those that diverged or were taken over
                for half in (left[: len(left) // 2], left[len(left) // 2 :]):
                    data = _train_runs(jobs, half, outcomes, data) if half else data
    return data


# On a CPU a pack whose members together hold much more than this (train.member_bytes) trains slower
# than its runs one after another: steps >= 1.2x faster up to ~150 MiB, ResNet width 32 in packs of 16
# (290 MiB) at 1.04x and of 32 at 0.76x (scripts/bench.py; docs/speed.md).
CPU_PACK_BYTES = 128 * 2**20


def _memory_budget(device: torch.device) -> int:
    """Bytes a pack may use on its device: 80% of the GPU's free memory, counting what the caching
    allocator holds unused (the rest for its slack and cuDNN's workspaces), shared evenly by the local
    workers on that GPU; on a CPU, CPU_PACK_BYTES."""
    if device.type != "cuda":
        return CPU_PACK_BYTES
    unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    sharing = int(os.environ.get("WDBENCH_WORKERS_PER_GPU", "1"))  # set by the local launcher
    return int(0.8 * (torch.cuda.mem_get_info(device)[0] + unused)) // sharing


def cpu_pack_limits(run: RunConfig) -> tuple[int, float]:
    """For the local launcher, from one memory estimate: how many members a CPU pack of ``run``'s kind
    may have before it trains slower than its runs one after another (CPU_PACK_BYTES; a GPU's is known
    only on the node that trains, _packs_that_fit), and a run's relative cost, to queue the longest
    packs first (its memory, which grows with its FLOPs per sample, times the samples it trains on)."""
    side, in_chans, n_classes = input_shape(run)
    alone = alone_only(run) is not None
    each = member_bytes(run, in_chans, n_classes, side, packed=not alone)
    return 1 if alone else max(1, CPU_PACK_BYTES // each), float(each) * run.optim.epochs * train_size(run.data)


def _packs_that_fit(jobs: Sequence[Job], group: list[int], data_loaded: bool) -> list[list[int]]:
    """``group`` (indices of runs that start together) split into even packs within the device's
    budget (train.member_bytes; on a GPU the dataset too, if it is still to be loaded). On a GPU a
    split is said in one line; on a CPU, where it is the rule for wide models, in each run's log."""
    run = jobs[group[0]].run
    if len(group) == 1:
        return [group]
    try:
        device = resolve_device(run.device)  # no GPU here for device=cuda: each run records that it failed
    except NoDevice:
        return [group]
    if run.precision == "bf16" and not autocast_reaches_vmap(device.type):
        for i in group:
            jobs[i].log.info(
                f"precision=bf16 on {device.type}: autocast does not reach the convolutions of a pack "
                "here (they would stay float32), so each run trains alone"
            )
        return [[i] for i in group]
    try:
        alone = alone_only(run)
    except Exception:  # a model that cannot be built: its pack's own build fails and records why
        alone = None
    if alone:
        for i in group:
            jobs[i].log.info(alone)
        return [[i] for i in group]
    budget = _memory_budget(device)
    try:
        side, in_chans, n_classes = input_shape(run)
        each = member_bytes(run, in_chans, n_classes, side)
        if device.type == "cuda" and not data_loaded:
            budget -= 4 * sum(split_sizes(run.data)) * in_chans * side**2
    except Exception as err:  # an estimate must never stop training: the pack trains whole, as asked
        log.warning(f"the memory a pack of {len(group)} runs needs could not be estimated ({err}); training it whole")
        return [group]
    fits = max(1, budget // each)
    if len(group) <= fits:
        return [group]
    n = math.ceil(len(group) / fits)
    if device.type == "cuda":
        log.warning(
            f"a pack of {len(group)} runs needs about {_size(len(group) * each)} ({_size(each)} each) but "
            f"{_size(max(budget, 0))} of {device} is free for it: training {n} packs of at most "
            f"{math.ceil(len(group) / n)}, one after another"
        )
    else:
        for i in group:
            jobs[i].log.info(
                f"on a CPU a pack over {_size(budget)} trains slower than its runs alone ({_size(each)} "
                f"each here): the {len(group)} runs launched together train as {n} packs"
            )
    return [group[j * len(group) // n : (j + 1) * len(group) // n] for j in range(n)]


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _train_pack(jobs: list[Job], checkpoints: list, data, outcomes: list, where: list[int]):
    """Train one pack; fills ``outcomes`` at ``where``. Returns the dataset for the next pack, and
    for a pack of several that ran out of GPU memory the error's text (its runs are left as they
    stand, to be trained again in smaller packs; outcomes untouched)."""
    try:
        return _train_built_pack(jobs, checkpoints, data, outcomes, where), None
    except _PackOutOfMemory as err:
        return data, str(err)
    finally:
        _release_memory(jobs[0].run.device)


class _PackOutOfMemory(Exception):
    """A pack of several ran out of device memory; its runs are left to train in smaller packs."""


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says the device ran out of memory (torch's, or cuDNN's or cuBLAS's own)."""
    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError)
        and any(sign in text for sign in ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED"))
    )


def _release_memory(device: str) -> None:
    """Return a finished (or failed) pack's tensors to the device before the next pack is built."""
    gc.collect()
    if device != "cpu" and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _without_frames(err: BaseException) -> BaseException:
    """The error without its traceback (nor those of its causes): a kept traceback keeps every frame's
    locals alive, a failed pack's tensors among them, and the next pack would run out of memory."""
    seen = err
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return err


def _train_built_pack(jobs: list[Job], checkpoints: list, data, outcomes: list, where: list[int]):
    try:
        pack = Pack([job.run for job in jobs], data)
    except Exception as err:
        if len(jobs) > 1 and out_of_memory(err):
            raise _PackOutOfMemory(str(_without_frames(err)).splitlines()[0]) from None
        return _failed_to_build(jobs, where, outcomes, data)
    if checkpoints[0] is not None:
        pack.load_state_dicts(checkpoints)
    shared = _pack_provenance(pack, [str(job.run_dir.resolve()) for job in jobs])
    records = [
        Record(job, member, pack, checkpoint, shared)
        for job, member, checkpoint in zip(jobs, pack.members, checkpoints)
    ]

    stop = StopSignal()
    pack.interrupt = lambda: stop() or all(job.claim.lost for job in jobs)
    desc = jobs[0].desc if len(jobs) == 1 else f"pack of {len(jobs)}: {jobs[0].desc} ..."
    try:
        write_s = 0.0  # how long the pack's last checkpoint took to write
        for diverged in pack.each_epoch(progress=jobs[0].run.progress, desc=desc):
            for member in diverged:
                k = pack.members.index(member)
                outcomes[where[k]] = records[k].finish("diverged")
            write_s = _checkpoint_due(records, pack, write_s)
    except Interrupted:
        try:
            _stopped(jobs, records, pack, stop, where, outcomes)
        finally:  # whatever saving did, SLURM gets its requeue
            stop.hand_over()
    except Exception as err:
        if len(jobs) == 1 or not out_of_memory(err):
            return _failed(records, outcomes, where, pack.data)
        for k, (job, record) in enumerate(zip(jobs, records)):  # trained again in smaller packs, from what was saved
            if job.claim.lost or not job.claim.owned():
                outcomes[where[k]] = ELSEWHERE  # another launch trains it now
            if not record.done:
                record.close("stopped")
                job.previous = record.result
        raise _PackOutOfMemory(str(_without_frames(err)).splitlines()[0]) from None
    finally:
        stop.restore()
    for k, (record, member) in enumerate(zip(records, pack.members)):
        if not record.done:
            outcomes[where[k]] = record.finish(member.status or "completed")
    return pack.data


def _checkpoint_due(records: list[Record], pack: Pack, write_s: float) -> float:
    """Checkpoint the runs that are due at this epoch end (one host copy of the pack's state for
    them all); returns how long the writing took, which spaces out the next ones."""
    due = [k for k, record in enumerate(records) if not record.done and record.epoch_end(write_s)]
    if not due:
        return write_s
    start = time.monotonic()
    states = pack.state_dicts()  # host copies, dropped once written
    for k in due:
        records[k].save(states[k])
    return time.monotonic() - start


def _failed_to_build(jobs: list[Job], where: list[int], outcomes: list, data):
    err = sys.exc_info()[1]
    for job, i in zip(jobs, where):
        _failed_before_training(job, err)  # with its traceback, before the frames are let go
        outcomes[i] = err
    _without_frames(err)
    return data


def _failed(records: list[Record], outcomes: list, where: list[int], data):
    err = sys.exc_info()[1]
    for k, record in enumerate(records):
        if not record.done:
            record.fail(err)
            outcomes[where[k]] = err
    _without_frames(err)
    return data


def _stopped(
    jobs: list[Job], records: list[Record], pack: Pack, stop: StopSignal, where: list[int], outcomes: list
) -> None:
    states = pack.state_dicts() if any(not job.claim.lost and not r.done for job, r in zip(jobs, records)) else []
    for k, (job, record) in enumerate(zip(jobs, records)):
        if job.claim.lost:
            job.log.warning(f"{job.run_dir}: the claim was taken over by another launch; stopped here without writing")
            record.close("stopped")
            outcomes[where[k]] = ELSEWHERE
        elif not record.done:
            record.preempted(stop, states[k])
            job.log.info(f"{job.run_dir}: {stop.name} received, checkpoint saved at step {pack.step}")
