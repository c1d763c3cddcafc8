"""Hydra's basic sweeper, made safe to rerun: every run's config is validated before anything is
launched (one bad value fails the sweep at once, not in job 97 on the cluster), and runs whose
result is already completed or diverged are skipped, so a rerun after a crash, cancel or partial
failure launches only what is missing or failed."""

import collections
import copy
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.wdbench_plugins._handover import PackingLauncher, SweepBatch
from hydra_plugins.wdbench_plugins.hydra_compat import BasicSweeper, apply_overrides, get_overrides_dirname, job_value
from wdbench.progress import ResultWatcher
from wdbench.results import SweepFailed, record_runs

log = logging.getLogger(__name__)


@dataclass
class WdbenchSweeperConf:
    _target_: str = "hydra_plugins.wdbench_plugins.sweeper.WdbenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="wdbench", node=WdbenchSweeperConf, provider="wdbench")


def _check_signal_delay(launcher) -> None:
    """SLURM may send the timeout signal up to 60 s early: a delay near the time limit leaves a job
    no time to run before it is asked to stop."""
    from wdbench.config import ConfigError

    if "signal_delay_s" in launcher and "timeout_min" in launcher:
        delay, half = launcher.signal_delay_s, launcher.timeout_min * 30
        if not 0 < delay <= half:
            raise ConfigError(
                f"hydra.launcher.signal_delay_s={delay}: must be in (0, {half}], at most half of "
                f"hydra.launcher.timeout_min={launcher.timeout_min} minutes"
            )


class SweepComposer:
    """Every job's config as ``config_loader.load_sweep_config`` composes it, at a fraction of the
    cost (~0.1 s a job: the defaults tree and every YAML file, again for each job). Hydra composes the
    defaults (group choices) first and then applies the other overrides to the result in command-line
    order; a plain ``key=value`` of a config value cannot change the defaults. So Hydra composes once
    per distinct rest (group choices, additions, deletions, hydra.* keys, and any plain value whose
    key one of those touches, which must keep its place in the order) and each job's plain values are
    applied to a copy as Hydra applies them, with Hydra's record of the job's overrides and directory
    name. Uses Hydra 1.3's internals (through hydra_compat: ``apply_overrides``,
    ``get_overrides_dirname``; hydra-core is pinned in requirements.lock): there is no public API for
    it, and tests/test_config.py checks the result against Hydra's own on sweeps of every kind."""

    def __init__(self, config_loader, master_config: DictConfig):
        self.loader, self.master = config_loader, master_config
        self.parser = OverridesParser.create(config_loader=config_loader)
        self.bases: Dict[tuple, DictConfig] = {}

    def _group_choice(self, override) -> bool:  # Hydra's own test (hydra._internal.defaults_list.Overrides)
        return self.loader.repository.group_exists(override.key_or_group) and not isinstance(override.value(), dict)

    def _ordered(self, override) -> bool:
        """A config override that is not a plain value: Hydra applies it in its place in the order."""
        return not self._group_choice(override) and (
            override.is_hydra_override()
            or override.is_add()
            or override.is_delete()
            or override.is_force_add()
            or isinstance(override.value(), dict)
        )

    def __call__(self, job: List[str]) -> DictConfig:
        parsed = self.parser.parse_overrides(job)
        ordered = [o.key_or_group for o in parsed if self._ordered(o)]

        def plain(o) -> bool:
            key = o.key_or_group
            return not (self._group_choice(o) or self._ordered(o)) and not any(
                k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in ordered
            )

        values = [o for o in parsed if plain(o)]
        rest = tuple(o.input_line for o in parsed if not plain(o))
        if rest not in self.bases:
            self.bases[rest] = self.loader.load_sweep_config(self.master, list(rest))
        cfg = copy.deepcopy(self.bases[rest])
        apply_overrides(values, cfg)
        app = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in app]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=app, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
        )
        return cfg


@dataclass
class SweepPlan:
    """What a sweep found before launching: the batch to launch and what it leaves out."""

    total: int  # the sweep's runs (jobs)
    batch: SweepBatch
    run_dirs: List[Path]  # of the batch's jobs, in its order
    manifest: Dict[str, List[str]]  # every run's directory name (hydra.sweep.subdir) -> its overrides
    finished: int  # runs skipped: completed or diverged already
    elsewhere: int  # runs skipped: another launch is training them now


class WdbenchSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        _check_signal_delay(self.config.hydra.launcher)
        plan, returns = self._run(self._jobs(arguments))
        return [returns] if returns else []

    def _run(self, jobs: List[List[str]]) -> tuple[SweepPlan, Sequence[JobReturn]]:
        """Plan ``jobs`` (validated; finished ones skipped), record them in the sweep's manifest, launch
        the rest and wait; a failed run fails the sweep (one line)."""
        plan = self._plan(jobs)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        record_runs(sweep_dir, plan.manifest)
        busy = f"{plan.elsewhere} being trained by another launch (skipped), " if plan.elsewhere else ""
        log.info(
            f"sweep {sweep_dir}: {plan.total} runs, {plan.finished} already finished (skipped), {busy}"
            f"{len(plan.batch)} to launch"
        )
        if len(plan.batch) == 0:
            return plan, []
        returns = self._launch(plan, sweep_dir)
        _check_returns(returns, len(plan.batch), sweep_dir)
        return plan, returns

    def _jobs(self, arguments: List[str]) -> List[List[str]]:
        """Each job's overrides, as Hydra's basic sweeper expands the command's (in one batch)."""
        overrides = self._parse_config() + list(arguments)
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(overrides)
        return [list(job) for batch in self.split_arguments(parsed, None) for job in batch]

    def _plan(self, jobs: List[List[str]]) -> SweepPlan:
        """Every job composed and validated (a bad value fails here, before any launch); those
        finished or being trained elsewhere are left out of the batch."""
        from wdbench.checks import checked_run_config
        from wdbench.claims import queued_slurm_jobs
        from wdbench.config import pack_key

        compose = SweepComposer(self.hydra_context.config_loader, self.config)
        queued = functools.cache(queued_slurm_jobs)  # squeue asked once, only if some run has a claim to judge
        todo, configs, keys, run_dirs, manifest, skipped = [], [], [], [], {}, collections.Counter()
        for job in jobs:
            cfg = compose(job)
            run = checked_run_config(cfg)
            run_dir = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
            manifest[str(cfg.hydra.sweep.subdir)] = job
            reason = _skip_reason(run_dir, run, queued)
            if reason:
                skipped[reason] += 1
            else:
                todo.append(job)
                configs.append(cfg)
                keys.append(pack_key(run))
                run_dirs.append(run_dir)
        batch = SweepBatch(todo, configs, keys, skipped=sum(skipped.values()))
        return SweepPlan(len(jobs), batch, run_dirs, manifest, skipped["finished"], skipped["elsewhere"])

    def _launch(self, plan: SweepPlan, sweep_dir: Path) -> Sequence[JobReturn]:
        """The batch to a wdbench launcher; Hydra's plain job list to any other. Unless the launcher
        shows the sweep's progress itself, a watcher shows it from the result files while it waits."""
        from hydra_plugins.wdbench_plugins.launcher import outcome

        batch, launcher = plan.batch, self.launcher
        watcher = None
        if not (isinstance(launcher, PackingLauncher) and launcher.shows_progress):
            watcher = ResultWatcher(plan.run_dirs, plan.total, batch.skipped)
            watcher.start()
        try:
            if isinstance(launcher, PackingLauncher):
                returns = launcher.launch_planned(batch, initial_job_idx=0)
            else:
                returns = launcher.launch(batch.overrides, initial_job_idx=0)
        except Exception as err:  # e.g. submitit: a job cancelled or killed outside Python
            if watcher is not None:
                watcher.stop()
            first_line = (str(err).strip().splitlines() or [""])[0]
            raise SweepFailed(f"{type(err).__name__}: {first_line}; see: python -m wdbench.status {sweep_dir}") from err
        except BaseException:  # a one-line exit (SystemExit) or Ctrl-C: the watcher must not outlive the sweep
            if watcher is not None:
                watcher.stop(last_line=False)  # the error is the last line
            raise
        if watcher is not None:
            watcher.stop([outcome(r) for r in returns])
        return returns


def _skip_reason(run_dir: Path, run, queued: Callable[[], Any]) -> Optional[str]:
    """Why a run is not launched: "finished" (its result is completed or diverged), "elsewhere"
    (another launch's live claim holds it); None: launch it. ``queued``: SLURM's queued job ids."""
    from wdbench.claims import read_claim, stale_reason
    from wdbench.config import ConfigError, made_by
    from wdbench.results import FINISHED, read_result_or_set_aside

    result = read_result_or_set_aside(run_dir)
    if result and result.get("status") in FINISHED:
        if not made_by(result, run):
            raise ConfigError(
                f"{run_dir}: holds a {result['status']} result of a different config "
                "(the experiment changed?); choose a new name=... for this sweep"
            )
        return "finished"
    claim = read_claim(run_dir)
    if claim is not None and stale_reason(claim, queued()) is None:
        return "elsewhere"
    return None


def _check_returns(returns: Sequence[JobReturn], launched: int, sweep_dir: Path) -> None:
    """Log the runs another launch claimed meanwhile; fail the sweep (one line) if any run failed."""
    from wdbench.claims import ELSEWHERE

    lost = sum(r.status == JobStatus.COMPLETED and job_value(r) == ELSEWHERE for r in returns)
    if lost:
        log.info(f"{lost} of {launched} runs were claimed by another launch meanwhile: trained there, not here")
    failed = [r for r in returns if r.status == JobStatus.FAILED]
    if failed:
        raise SweepFailed(
            f"{len(failed)} of {launched} runs failed (first: {job_value(failed[0])!r}); "
            f"see: python -m wdbench.status {sweep_dir}"
        )
