"""Hydra's basic sweeper, made safe to rerun: every run's config is validated before anything is
launched (one bad value fails the sweep at once, not in job 97 on the cluster), and runs whose
result is already completed or diverged are skipped, so a rerun after a crash, cancel or partial
failure launches only what is missing or failed."""

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.wdbench_plugins._handover import PackingLauncher, SweepBatch
from hydra_plugins.wdbench_plugins.hydra_compat import BasicSweeper, apply_overrides, get_overrides_dirname, job_value
from wdbench.progress import ResultWatcher
from wdbench.results import SweepFailed

log = logging.getLogger(__name__)


@dataclass
class WdbenchSweeperConf:
    _target_: str = "hydra_plugins.wdbench_plugins.sweeper.WdbenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="wdbench", node=WdbenchSweeperConf,
                             provider="wdbench")


def _check_signal_delay(launcher) -> None:
    """SLURM may send the timeout signal up to 60 s early: a delay near the time limit leaves a job
    no time to run before it is asked to stop."""
    from wdbench.config import ConfigError

    if "signal_delay_s" in launcher and "timeout_min" in launcher:
        delay, half = launcher.signal_delay_s, launcher.timeout_min * 30
        if not 0 < delay <= half:
            raise ConfigError(f"hydra.launcher.signal_delay_s={delay}: must be in (0, {half}], at most half of "
                              f"hydra.launcher.timeout_min={launcher.timeout_min} minutes")


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
            override.is_hydra_override() or override.is_add() or override.is_delete() or override.is_force_add()
            or isinstance(override.value(), dict))

    def __call__(self, job: List[str]) -> DictConfig:
        parsed = self.parser.parse_overrides(job)
        ordered = [o.key_or_group for o in parsed if self._ordered(o)]

        def plain(o) -> bool:
            key = o.key_or_group
            return not (self._group_choice(o) or self._ordered(o)) and not any(
                k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in ordered)

        values = [o for o in parsed if plain(o)]
        rest = tuple(o.input_line for o in parsed if not plain(o))
        if rest not in self.bases:
            self.bases[rest] = self.loader.load_sweep_config(self.master, list(rest))
        cfg = copy.deepcopy(self.bases[rest])
        apply_overrides(values, cfg)
        app = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in app]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(overrides=app, kv_sep=dirname.kv_sep,
                                                               item_sep=dirname.item_sep,
                                                               exclude_keys=dirname.exclude_keys)
        return cfg


class WdbenchSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        from hydra_plugins.wdbench_plugins.launcher import outcome
        from wdbench.claims import ELSEWHERE, queued_slurm_jobs, read_claim, stale_reason
        from wdbench.config import ConfigError, made_by, pack_key, parse_run_config
        from wdbench.results import FINISHED, read_result_or_set_aside, record_runs

        _check_signal_delay(self.config.hydra.launcher)
        overrides = self._parse_config() + list(arguments)
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(overrides)
        jobs = [list(job) for batch in self.split_arguments(parsed, None) for job in batch]
        todo, todo_index, todo_keys, todo_configs, run_dirs, finished, elsewhere, manifest = [], [], [], [], [], 0, 0, {}
        queued = ...  # asked of squeue once, only if some run has a claim to judge
        compose = SweepComposer(self.hydra_context.config_loader, self.config)
        for job in jobs:
            cfg = compose(job)
            run = parse_run_config(cfg)
            run_dir = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
            run_dirs.append(run_dir)
            manifest[str(cfg.hydra.sweep.subdir)] = job
            result = read_result_or_set_aside(run_dir)
            if result and result.get("status") in FINISHED:
                if not made_by(result, run):
                    raise ConfigError(f"{run_dir}: holds a {result['status']} result of a different config "
                                      "(the experiment changed?); choose a new name=... for this sweep")
                finished += 1
            elif (claim := read_claim(run_dir)) is not None and stale_reason(
                    claim, queued := queued_slurm_jobs() if queued is ... else queued) is None:
                elsewhere += 1  # another launch is training it right now
            else:
                todo.append(job)
                todo_index.append(len(run_dirs) - 1)
                todo_keys.append(pack_key(run))
                todo_configs.append(cfg)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        record_runs(sweep_dir, manifest)
        busy = f"{elsewhere} being trained by another launch (skipped), " if elsewhere else ""
        log.info(f"sweep {sweep_dir}: {len(jobs)} runs, {finished} already finished (skipped), {busy}"
                 f"{len(todo)} to launch")
        if not todo:
            return []
        batch = SweepBatch(todo, todo_configs, todo_keys, skipped=finished + elsewhere)
        watcher = None
        if not (isinstance(self.launcher, PackingLauncher) and self.launcher.shows_progress):
            # SLURM, basic: watch the launched runs' result files while the launcher waits
            watcher = ResultWatcher([run_dirs[i] for i in todo_index], len(jobs), batch.skipped)
            watcher.start()
        try:
            if isinstance(self.launcher, PackingLauncher):  # wdbench's: the batch as planned here
                returns = self.launcher.launch_planned(batch, initial_job_idx=0)
            else:  # any other Hydra launcher: Hydra's plain job list
                returns = self.launcher.launch(todo, initial_job_idx=0)
        except Exception as err:  # e.g. submitit: a job cancelled or killed outside Python
            if watcher is not None:
                watcher.stop()
            first_line = (str(err).strip().splitlines() or [""])[0]
            raise SweepFailed(f"{type(err).__name__}: {first_line}; see: python -m wdbench.status {sweep_dir}") from err
        if watcher is not None:
            watcher.stop([outcome(r) for r in returns])
        lost = sum(r.status == JobStatus.COMPLETED and job_value(r) == ELSEWHERE for r in returns)
        if lost:
            log.info(f"{lost} of {len(todo)} runs were claimed by another launch meanwhile: trained there, not here")
        failed = [r for r in returns if r.status == JobStatus.FAILED]
        if failed:
            raise SweepFailed(f"{len(failed)} of {len(todo)} runs failed (first: {job_value(failed[0])!r}); "
                              f"see: python -m wdbench.status {sweep_dir}")
        return [returns]
