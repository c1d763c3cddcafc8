"""The Hydra entry point: validate the config, skip a finished run, train, record one result."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from wdbench.config import ConfigError, RunConfig, made_by, parse_run_config
from wdbench.results import (FINISHED, SCHEMA_VERSION, DamagedFile, provenance, read_result_or_set_aside, set_aside,
                             write_result)
from wdbench.checkpoint import StopSignal, load_checkpoint, remove_checkpoint, save_checkpoint
from wdbench.claims import ELSEWHERE, Claim, describe
from wdbench.loggers import open_logger
from wdbench.train import Interrupted, Trainer

log = logging.getLogger("wdbench")

MAX_DIRNAME = 200  # bytes: well inside the 255 that common filesystems allow for one path component


def run_dirname(overrides: str) -> str:
    """A run directory's name from its overrides: one path component, at most MAX_DIRNAME bytes (a
    longer one keeps a readable prefix and ends in a hash of the whole; runs.json maps it back)."""
    name = re.sub(r"[/\\\s]+", "_", overrides) or "defaults"
    if len(name.encode()) <= MAX_DIRNAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return name.encode()[:MAX_DIRNAME - len(digest) - 1].decode(errors="ignore") + "_" + digest


OmegaConf.register_new_resolver("wdbench.dirname", run_dirname, replace=True)


def _in_local_sweep(hc) -> bool:
    return hc.mode == RunMode.MULTIRUN and str(hc.launcher.get("_target_", "")).endswith(
        "wdbench_plugins.launcher.LocalLauncher")


def _threads(run: RunConfig, hc) -> int:
    if run.threads:
        return run.threads
    if _in_local_sweep(hc):
        return 1  # one single-threaded worker per core
    return int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or torch.get_num_threads()


def _result_header(run: RunConfig, cfg: DictConfig, hc, trainer: Trainer) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    config["penalty"]["lam"] = run.penalty.lam  # log10_lam, when given, has been applied
    p, o, d = run.penalty, run.optim, run.data
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "run_dir": str(Path(hc.runtime.output_dir).resolve()),
        "overrides": list(hc.overrides.task),
        "config": config,
        "model": {"name": run.model.name, "width": run.model.width, "n_params": trainer.n_params,
                  "n_decayed": trainer.n_decayed},
        "penalty": {"norm": p.norm, "apply": p.apply, "lam": p.lam, "coef": trainer.penalty.coef,
                    "exclude": list(p.exclude)},
        "optim": {"name": o.name, "lr": o.lr, "momentum": o.momentum, "nesterov": o.nesterov,
                  "betas": list(o.betas), "schedule": o.schedule, "warmup_epochs": o.warmup_epochs,
                  "epochs": o.epochs},
        "data": {"name": d.name, "n_train": trainer.n_train, "n_val": len(trainer.data.y_val),
                 "batch_size": o.batch_size, "image_size": trainer.data.image_size, "augment": d.augment},
        "seed": run.seed,
        "resumes": 0,
        "preemptions": [],
        "provenance": {**provenance(str(trainer.device) + (
            f" ({torch.cuda.get_device_name(trainer.device)})" if trainer.device.type == "cuda" else "")),
            "threads": torch.get_num_threads()},
    }


def _remove_if_only_hydra_files(run_dir: Path) -> None:
    """A rejected config leaves no run directory behind (Hydra makes one before the task runs)."""
    if run_dir.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)
        with contextlib.suppress(OSError):  # and no empty parent made for it
            run_dir.parent.rmdir()


def _error(err: Exception) -> dict:
    return {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def run_job(cfg: DictConfig) -> str:
    """Train one run into Hydra's output directory (resuming an interrupted one); returns its status."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    if _in_local_sweep(hc):  # the sweep's console shows its progress line; this run's lines go to its app.log
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler:
                handler.setLevel(logging.WARNING)
    try:
        run = parse_run_config(cfg)
    except ConfigError as err:
        _remove_if_only_hydra_files(run_dir)
        # SystemExit passes through Hydra's job wrapper: the user sees this one line, exit code 2.
        print(f"wdbench: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    claim = Claim.acquire(run_dir)
    if not isinstance(claim, Claim):
        log.info(f"{run_dir}: being trained by {describe(claim)} (heartbeat {claim['heartbeat_age_s']:.0f} s ago), "
                 "skipped here")
        return ELSEWHERE
    try:
        previous = read_result_or_set_aside(run_dir)  # read under the claim: nobody else writes it now
        if previous and previous.get("status") in FINISHED:  # finished by another launch since the sweep began
            log.info(f"{run_dir}: already {previous['status']}, skipped")
            return ELSEWHERE
        if claim.taken_over:
            log.warning(f"{run_dir}: took over the claim of {describe(claim.taken_over['from'])}: "
                        f"{claim.taken_over['reason']}")
        return _train(cfg, run, run_dir, hc, previous, claim)
    finally:
        claim.release()


def _train(cfg: DictConfig, run: RunConfig, run_dir: Path, hc, previous, claim: Claim) -> str:
    torch.set_num_threads(_threads(run, hc))
    try:
        trainer = Trainer(run)
    except Exception as err:  # e.g. unreadable data: still one result, saying why
        write_result(run_dir, {"schema_version": SCHEMA_VERSION, "status": "failed", **_error(err),
                               "run_dir": str(run_dir.resolve()), "overrides": list(hc.overrides.task),
                               "config": OmegaConf.to_container(cfg, resolve=True), "seed": run.seed,
                               "provenance": provenance(run.device)})
        raise
    resumable = previous and previous.get("status") == "running" and made_by(previous, run)
    try:
        checkpoint = load_checkpoint(run_dir) if resumable else None
    except DamagedFile as err:
        log.warning(f"{err}; {set_aside(err.path)}, the run starts again from scratch")
        checkpoint = None
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
        result = previous
        result["resumes"] += 1
        log.info(f"{run_dir}: resuming at epoch {len(trainer.history)}, step {trainer.step}")
    else:
        remove_checkpoint(run_dir)  # a failed (or changed) run starts again from scratch
        result = _result_header(run, cfg, hc, trainer)
    if claim.taken_over:
        result.setdefault("claims_taken_over", []).append(claim.taken_over)
    epoch_logger = open_logger(run.logger, run_dir, result["config"], hc.job.override_dirname or run_dir.name,
                               run.out_dir, run.name, (result.get("logger") or {}).get("mlflow_run_id"))
    if getattr(epoch_logger, "run_id", None):
        result["logger"] = {"mlflow_run_id": epoch_logger.run_id}
    write_result(run_dir, result)
    last_save = time.monotonic()

    def save(trainer: Trainer) -> None:
        nonlocal last_save
        if not claim.owned():  # taken over while this process stalled: the taker writes from now on
            claim.lost = True
            return
        save_checkpoint(run_dir, trainer.state_dict())
        result["history"] = trainer.history
        write_result(run_dir, result)
        last_save = time.monotonic()

    def at_epoch_end(trainer: Trainer) -> None:
        if epoch_logger:
            epoch_logger.log(trainer.history[-1])
        if time.monotonic() - last_save >= run.checkpoint_every_s:
            save(trainer)

    stop = StopSignal()
    trainer.interrupt = lambda: stop() or claim.lost
    ended = "stopped"  # what the experiment logger is told: completed, diverged, failed or stopped
    try:
        status = ended = trainer.fit(progress=run.progress, desc=hc.job.override_dirname or "run",
                                     on_epoch=at_epoch_end)
    except Interrupted:
        if claim.lost:
            log.warning(f"{run_dir}: the claim was taken over by another launch; stopped here without writing")
            return ELSEWHERE
        result["preemptions"].append({"signal": stop.name, "epoch": len(trainer.history), "step": trainer.step,
                                      "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        save(trainer)
        log.info(f"{run_dir}: {stop.name} received, checkpoint saved at step {trainer.step}")
        stop.hand_over()
    except Exception as err:
        ended = "failed"
        if claim.owned():
            result.update(status="failed", **_error(err), history=trainer.history)
            write_result(run_dir, result)
        raise
    finally:
        stop.restore()
        if epoch_logger:
            epoch_logger.close(ended)
    if not claim.owned():
        log.warning(f"{run_dir}: the claim was taken over by another launch; finished here without writing")
        return ELSEWHERE
    result.update(status=status, metrics=trainer.metrics(), history=trainer.history, timing=trainer.timing())
    path = write_result(run_dir, result)
    remove_checkpoint(run_dir)
    m = result["metrics"]
    log.info(f"{status}: val_loss={m['val_loss']:.4f} val_acc={m['val_acc']:.4f} -> {path}")
    return status


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def app(cfg: DictConfig) -> str:
    return run_job(cfg)
