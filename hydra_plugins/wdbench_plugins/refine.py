"""``hydra/sweeper=refine``: the adaptive coefficient search (analysis/refine.py's rule) as a Hydra sweeper.

    python -m wdbench -m hydra/sweeper=refine model.width=8,16 \\
        penalty.log10_coef=null,-3,-2.5,-2,-1.5,-1,-0.5 hydra.sweeper.refine.target_dex=0.1

Every value of ``penalty.log10_coef`` is the coarse grid (null: the λ = 0 baseline); every combination of
the other swept keys is a (setting, width) searched on its own. The search picks the seeds (do not sweep
``seed``). Each round is one ordinary batch of the wdbench sweeper: validated first, finished runs skipped,
packed locally or a job array on SLURM. A rerun replays the rounds from the results on disk and goes on
where the last one stopped. docs/refine.md."""

import itertools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser

from analysis.refine import RefineSettings, Step, next_step
from hydra_plugins.wdbench_plugins.sweeper import WdbenchSweeper, _check_signal_delay

log = logging.getLogger(__name__)
COEF, SEED = "penalty.log10_coef", "seed"


@dataclass
class RefineSweeperConf:
    _target_: str = "hydra_plugins.wdbench_plugins.refine.RefineSweeper"
    max_batch_size: Optional[int] = None  # unused: each round is one batch
    params: Optional[Dict[str, str]] = None  # the swept keys, as for hydra/sweeper=wdbench
    refine: RefineSettings = field(default_factory=RefineSettings)  # the search's settings (analysis/refine.py)


ConfigStore.instance().store(group="hydra/sweeper", name="refine", node=RefineSweeperConf, provider="wdbench")


class RefineSweeper(WdbenchSweeper):
    def __init__(self, max_batch_size=None, params=None, refine=None) -> None:
        super().__init__(max_batch_size, params)
        self.settings = RefineSettings(**(refine or {}))
        self._dirs: Dict[tuple, str] = {}  # each job asked for (its overrides) -> its run directory
        self._values: Dict[tuple, float] = {}  # each finished job's metric: read once, not every round

    def sweep(self, arguments: List[str]) -> Any:
        from wdbench.config import ConfigError

        _check_signal_delay(self.config.hydra.launcher)
        problem = self.settings.problem()
        if problem:
            raise ConfigError(f"hydra.sweeper.{problem}")
        swept = self._swept(arguments)
        groups, names = _groups(self._jobs(arguments), swept)
        steps: Dict[tuple, Optional[Step]] = {g: None for g in groups}
        asked: Dict[tuple, List[tuple]] = {g: [] for g in groups}
        returns = []
        for round_ in itertools.count():
            jobs = []
            for g, base in groups.items():
                if steps[g] is not None and steps[g].done:
                    continue
                steps[g] = self._step(g, asked[g], names, steps[g])
                for coef, seed in steps[g].runs:
                    asked[g].append((coef, seed))
                    jobs.append([*base, f"{COEF}={_name(coef, names)}", f"{SEED}={seed}"])
                shown = [o for o in base if o.split("=", 1)[0] in swept]
                log.info(_progress(round_, shown, steps[g], len(asked[g]) - len(steps[g].runs), self.settings))
            if not jobs:
                _write_answers(Path(self.config.hydra.sweep.dir), groups, steps, asked)
                return returns
            plan, launched = self._run(jobs)
            self._dirs.update({tuple(job): d for d, job in plan.manifest.items()})
            returns.append(launched)

    def _swept(self, arguments: List[str]) -> Dict[str, List[str]]:
        """Each swept key's values as written (the coarse grid's names are kept: they name run directories)."""
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(
            self._parse_config() + list(arguments)
        )
        return {o.key_or_group: [str(v) for v in o.sweep_string_iterator()] for o in parsed if o.is_sweep_override()}

    def _step(self, group: tuple, asked: List[tuple], names: dict, previous: Optional[Step]) -> Step:
        from wdbench.config import ConfigError

        x, y, seeds = [], [], []
        for coef, seed in asked:
            job = (*group, f"{COEF}={_name(coef, names)}", f"{SEED}={seed}")
            value = self._values.get(job)
            if value is None:
                value = _value(Path(self.config.hydra.sweep.dir) / self._dirs[job])
                if value is not None:
                    self._values[job] = value
            if value is None:
                raise ConfigError(
                    f"{self.config.hydra.sweep.dir}/{self._dirs[job]}: no finished result (another launch is "
                    "training it?); rerun the sweep when it has finished"
                )
            x.append(math.nan if coef is None else coef)
            y.append(value)
            seeds.append(seed)
        return next_step(list(names), x, y, seeds, self.settings, previous)


def _groups(jobs: List[List[str]], swept: Dict[str, List[str]]) -> tuple[Dict[tuple, list], Dict]:
    """The (setting, width)s: each distinct job without its coef and seed, and the coarse grid's coefs
    (None: λ = 0) with the names they were written with."""
    from wdbench.config import ConfigError

    if SEED in swept:
        raise ConfigError(
            f"{SEED}: the refine sweeper chooses the seeds; set hydra.sweeper.refine.seeds instead "
            "(~hydra.sweeper.params.seed drops an experiment file's)"
        )
    if COEF not in swept or len(swept[COEF]) < 4:
        raise ConfigError(
            f"{COEF}: the refine sweeper needs the coarse grid there, at least 4 coefs "
            f"(e.g. {COEF}=null,-3,-2.5,-2,-1.5,-1)"
        )
    grid = {}
    for name in swept[COEF]:
        coef = None if name in ("null", "None") else round(float(name), 6)
        grid[coef] = name
    if sum(c is not None for c in grid) < 4:
        raise ConfigError(f"{COEF}={','.join(swept[COEF])}: needs at least 4 distinct coefs besides null")
    groups = {}
    for job in jobs:
        base = tuple(o for o in job if o.split("=", 1)[0] not in (COEF, SEED))
        groups.setdefault(base, list(base))
    return groups, grid


def _write_answers(sweep_dir: Path, groups: dict, steps: dict, asked: dict) -> None:
    """refine.json: per (setting, width), where the search stopped and why, with its interval (the hull of
    every plausible coef: the one whose coverage docs/refine.md measures)."""
    from wdbench.results import atomic_write_text

    answers = []
    for g, base in groups.items():
        o = steps[g].optimum
        answers.append(
            {
                "overrides": base,
                "stop": steps[g].reason,
                "status": o.status if o else None,
                "log10_coef": o.x if o else None,
                "log10_lo": o.lo if o and o.status == "ok" else None,
                "log10_hi": o.hi if o and o.status == "ok" else None,
                "runs": len(asked[g]),
            }
        )
    atomic_write_text(sweep_dir / "refine.json", json.dumps(answers, indent=1) + "\n")


def _name(coef: Optional[float], names: dict) -> str:
    """A coef's override value: as the grid wrote it, else its shortest exact decimal."""
    return names[coef] if coef in names else repr(float(coef))


def _value(run_dir: Path) -> Optional[float]:
    """The run's final validation loss (+inf: diverged or not finite); None without a finished result."""
    from wdbench.results import FINISHED, read_result_or_set_aside

    result = read_result_or_set_aside(run_dir)
    if not result or result.get("status") not in FINISHED:
        return None
    value = (result.get("metrics") or {}).get("val_loss")
    if result["status"] == "diverged" or value is None or not math.isfinite(value):
        return math.inf
    return float(value)


def _progress(round_: int, shown: list, step: Step, runs: int, settings: RefineSettings) -> str:
    what = " ".join(shown) or "the setting"
    o = step.optimum
    if o is None:
        interval = "no fit yet"
    elif o.status == "ok":
        interval = f"coef* 10^{o.x:.2f} in [10^{o.lo:.2f}, 10^{o.hi:.2f}] (±{(o.hi - o.lo) / 2:.2f} dex)"
    else:
        interval = f"coef* {o.status}"
    todo = f"{len(step.runs)} runs next" if step.runs else f"done: {step.reason}"
    return (
        f"refine round {round_}: {what}: {interval}, target ±{settings.target_dex:g} dex; {runs} runs so far, "
        f"{max(settings.budget - runs, 0)} left of the budget; {todo}"
    )
