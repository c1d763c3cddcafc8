"""The Hydra entry point: validate the config, claim the run, skip a finished one, then train it
(wdbench.runner). Nothing here imports torch: ``--help``, ``--cfg``, a sweep with nothing left to
train and every config error answer without paying its import."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from wdbench.checks import checked_run_config
from wdbench.claims import ELSEWHERE, Claim, describe
from wdbench.config import ConfigError, dirname_excluded
from wdbench.job import Job
from wdbench.results import FINISHED, read_result_or_set_aside

log = logging.getLogger("wdbench")

MAX_DIRNAME = 200  # bytes: well inside the 255 that common filesystems allow for one path component


def run_dirname(overrides: str) -> str:
    """A run directory's name from its overrides: one path component, at most MAX_DIRNAME bytes (a
    longer one keeps a readable prefix and ends in a hash of the whole; runs.json maps it back)."""
    name = re.sub(r"[/\\\s]+", "_", overrides) or "defaults"
    if len(name.encode()) <= MAX_DIRNAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return name.encode()[: MAX_DIRNAME - len(digest) - 1].decode(errors="ignore") + "_" + digest


OmegaConf.register_new_resolver("wdbench.dirname", run_dirname, replace=True)
OmegaConf.register_new_resolver("wdbench.not_identity", dirname_excluded, replace=True)


def _in_local_sweep(hc) -> bool:
    return hc.mode == RunMode.MULTIRUN and str(hc.launcher.get("_target_", "")).endswith(
        "wdbench_plugins.launcher.LocalLauncher"
    )


def prepare_job(cfg: DictConfig) -> "Job | str":
    """Validate, claim and read a run in Hydra's output directory: the Job to train, or ELSEWHERE
    when another launch holds it or has finished it."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    local = _in_local_sweep(hc)
    if local:  # the sweep's console shows its progress line; this run's lines go to its app.log
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler:
                handler.setLevel(logging.WARNING)
    try:
        run = checked_run_config(cfg)
    except ConfigError as err:
        _remove_if_only_hydra_files(run_dir)
        # SystemExit passes through Hydra's job wrapper: the user sees this one line, exit code 2.
        print(f"wdbench: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    claim = Claim.acquire(run_dir)
    if not isinstance(claim, Claim):
        log.info(
            f"{run_dir}: being trained by {describe(claim)} (heartbeat {claim['heartbeat_age_s']:.0f} s ago), "
            "skipped here"
        )
        return ELSEWHERE
    try:
        previous = read_result_or_set_aside(run_dir)  # read under the claim: nobody else writes it now
    except BaseException:
        claim.release()
        raise
    if previous and previous.get("status") in FINISHED:  # finished by another launch since the sweep began
        log.info(f"{run_dir}: already {previous['status']}, skipped")
        claim.release()
        return ELSEWHERE
    if claim.taken_over:
        log.warning(
            f"{run_dir}: took over the claim of {describe(claim.taken_over['from'])}: {claim.taken_over['reason']}"
        )
    log_file = next((h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)), None)
    return Job(
        cfg,
        run,
        run_dir,
        list(hc.overrides.task),
        hc.job.override_dirname or run_dir.name,
        local,
        claim,
        previous,
        log_file,
    )


def run_job(cfg: DictConfig) -> str:
    """Train one run into Hydra's output directory (resuming an interrupted one); returns its status."""
    job = prepare_job(cfg)
    if not isinstance(job, Job):
        return job
    from wdbench.runner import train_jobs  # torch and timm: imported once there is something to train
    from wdbench.train import NoDevice, resolve_device

    try:  # this process trains it: a device it lacks is bad input here (a worker elsewhere records it failed)
        resolve_device(job.run.device)
    except NoDevice as err:
        job.claim.release()
        _remove_if_only_hydra_files(job.run_dir)
        print(f"wdbench: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    (outcome,) = train_jobs([job])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _remove_if_only_hydra_files(run_dir: Path) -> None:
    """A rejected config leaves no run directory behind (Hydra makes one before the task runs)."""
    if run_dir.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)
        with contextlib.suppress(OSError):  # and no empty parent made for it
            run_dir.parent.rmdir()


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def app(cfg: DictConfig) -> str:
    return run_job(cfg)
