"""The adaptive search measured on planted (setting, width)s: the coverage of the interval it stops with, and
the runs it takes to reach ±``target_dex`` against the quickstart's full grid with more and more seeds.

A planted problem is one width of ``planted.random_scenario``'s mix (flat to sharp and skewed basins, quiet
to noisy runs, seed offsets, each seed's optimum jittered, a few diverged runs), whose runs are drawn on
demand wherever the search asks: the same draws for the same (coef, seed) whichever design asks for them.
The coarse grid is the quickstart's (conf/experiment/quickstart.yaml), moved so that the planted coef*
sits anywhere from its middle to a quarter dex inside either end. Each seed's optimum is jittered by up to
0.1 dex SD (SEED_JITTER), as on the kept ridge sweep. Truth: the minimum of the seed-averaged curve.
docs/refine.md."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from analysis.calibrate import wilson
from analysis.fit import metric_values
from analysis.optimum import fit_optimum
from analysis.planted import HERMITE, curve, random_scenario
from analysis.refine import RefineSettings, next_step, search_fit

QUICKSTART_GRID = (-3.0, -2.5, -2.25, -2.0, -1.75, -1.5, -1.25, -1.0, -0.75)  # with λ = 0: 10 runs a seed
QUICKSTART_CENTRE = -1.5  # digits' coef*, where the quickstart's grid puts it
SEED_JITTER = (0.0, 0.1)  # dex: SD of a seed's own optimum, drawn uniformly; the kept ridge sweep's 48-seed fits
# estimate 0.03-0.1 (search_fit's shift_sd), more than the estimator's calibration mix (at most 0.05)


@dataclass(frozen=True)
class Problem:
    """One planted (setting, width): its curve, noise and coarse grid."""

    key: int  # the draws of its runs: one stream per (seed, coef)
    x_star: float
    a: float  # curvature at the minimum, per dex²
    k: float  # asymmetry: the cliff side rises faster
    base: float
    sigma: float
    seed_sd: float
    seed_jitter: float
    diverge: float
    grid: tuple  # log10 coefs, with None for λ = 0: the search's coarse grid and the full grid alike
    seeds: float = np.inf  # seeds a design may use (planted: any)

    @property
    def full(self) -> tuple:
        return self.grid

    @property
    def truth(self) -> float:
        """The minimum of the seed-averaged curve E_d f(x − x* − d), d ~ N(0, seed_jitter²), scanned every
        0.001 dex (x* − k·τ²/2 only for small jitter)."""
        u = np.linspace(-1, 1, 2001)
        expected = curve(u[:, None] - self.seed_jitter * HERMITE[0], self.base, self.a, self.k) @ HERMITE[1]
        return self.x_star + float(u[np.argmin(expected)])

    def seed_draws(self, seed: int) -> tuple[float, float]:
        rng = np.random.default_rng([self.key, seed])
        return rng.normal(0, self.seed_sd), rng.normal(0, self.seed_jitter)

    def run(self, x, seed: int) -> float:
        """The metric of the run at log10 coef ``x`` (None: λ = 0, at the flat end) with ``seed``."""
        offset, jitter = self.seed_draws(seed)
        at = self.grid[1] - 0.5 if x is None else x  # λ = 0 sits on the flat end, half a dex below the grid
        rng = np.random.default_rng([self.key, seed, 1 + int(round((at + 40) * 1e6))])
        mean = float(curve(at - self.x_star - (0 if x is None else jitter), self.base, self.a, self.k))
        if rng.random() < self.diverge:
            return np.inf
        return mean + offset + rng.normal(0, self.sigma * (1 + (mean - self.base)))


def random_problem(rng: np.random.Generator) -> Problem:
    s = random_scenario(rng)
    x_star = float(rng.uniform(-4, -1))
    # coef* from the grid's middle to 0.25 dex inside its top (or 1 dex above its bottom)
    shift = x_star - QUICKSTART_CENTRE + float(rng.uniform(-0.5, 0.5))
    return Problem(
        key=int(rng.integers(2**62)),
        x_star=x_star,
        a=float(np.exp(rng.uniform(*np.log(s.curvature)))),
        k=float(rng.uniform(*s.asymmetry)),
        base=0.15 + 1.0 / float(rng.choice([4, 8, 16, 32])),
        sigma=s.sigma,
        seed_sd=s.seed_sd,
        seed_jitter=float(rng.uniform(*SEED_JITTER)),
        diverge=s.diverge,
        grid=(None, *(round(g + shift, 6) for g in QUICKSTART_GRID)),
    )


def _outcome(fit, runs: int, target: float, truth: float) -> dict:
    ok = fit.status == "ok"
    return {
        "runs": runs,
        "status": fit.status,
        "x": fit.x,
        "lo": fit.lo,
        "hi": fit.hi,
        "half_width": (fit.hi - fit.lo) / 2 if ok else np.nan,
        "reached": ok and (fit.hi - fit.lo) / 2 <= target,
        "covered": ok and fit.lo <= truth <= fit.hi,
    }


def adaptive(problem: Problem, settings: RefineSettings) -> dict:
    """The search run to its end on ``problem``: its runs, rounds, stop and whether its interval covers."""
    done: list[tuple] = []
    rounds, step = 0, None
    while True:
        x = [np.nan if c is None else c for c, _, _ in done]
        step = next_step(problem.grid, x, [y for *_, y in done], [s for _, s, _ in done], settings, step)
        if step.done or any(s >= problem.seeds for _, s in step.runs):  # a replay has no such run
            break
        rounds += 1
        done += [(c, s, problem.run(c, s)) for c, s in step.runs]
    return {
        **_outcome(step.optimum, len(done), settings.target_dex, problem.truth),
        "rounds": rounds,
        "stop": step.reason,
    }


def full_grid(problem: Problem, target: float, max_runs: int) -> dict:
    """The full grid with 2, 3, ... seeds until the fit's interval is within ±``target``, or another seed
    would take more than ``max_runs`` runs or is not there to replay."""
    for seeds in range(2, int(min(max(max_runs // len(problem.full), 2), problem.seeds)) + 1):
        runs = [(c, s, problem.run(c, s)) for s in range(seeds) for c in problem.full]
        curve_runs = [r for r in runs if r[0] is not None]
        base = [r for r in runs if r[0] is None]
        fit = _grid_fit(*zip(*[(c, y, s) for c, s, y in curve_runs]), [y for *_, y in base], [s for _, s, _ in base])
        outcome = _outcome(fit, len(runs), target, problem.truth)
        if outcome["reached"]:
            break
    return {**outcome, "seeds": seeds}


def measure(
    replicates: int, seed: int = 0, settings: RefineSettings | None = None, max_runs: int = 400
) -> pd.DataFrame:
    """Per planted problem: the adaptive search's and the full grid's (at most ``max_runs``) runs, stop and
    coverage."""
    rng, settings = np.random.default_rng(seed), settings or RefineSettings()
    rows = []
    for i in range(replicates):
        problem = random_problem(rng)
        a, g = adaptive(problem, settings), full_grid(problem, settings.target_dex, max_runs)
        rows.append(
            {"replicate": i, "a": problem.a, "k": problem.k, "sigma": problem.sigma, "truth": problem.truth}
            | _paired(a, g)
        )
    return pd.DataFrame(rows)


def _paired(adaptive_outcome: dict, grid_outcome: dict) -> dict:
    return {f"adaptive_{k}": v for k, v in adaptive_outcome.items()} | {f"grid_{k}": v for k, v in grid_outcome.items()}


def runs_to_target(table: pd.DataFrame, design: str) -> pd.Series:
    """Runs a design took to bring the interval within the target; inf where it did not within its cap."""
    return table[f"{design}_runs"].where(table[f"{design}_reached"], np.inf).astype(float)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per design: the coverage of the intervals it stopped with (ok ones; Wilson 95% interval) and the
    median runs to the target over every problem (one that never reached it counts as more than any that
    did, so the median holds while fewer than half are cut off) and over the problems both designs reached
    (NaN where none); and the paired ratio grid/adaptive, with a design that never reached the target at infinity
    and, a bound, at the runs it spent (a lower one where only the grid fell short)."""
    adaptive, grid = runs_to_target(table, "adaptive"), runs_to_target(table, "grid")
    either = np.isfinite(adaptive) | np.isfinite(grid)  # inf/inf says nothing
    paired = (grid / adaptive)[either]
    spent = (table["grid_runs"] / table["adaptive_runs"])[either]
    both = np.isfinite(adaptive) & np.isfinite(grid)
    out = []
    for design, runs in (("adaptive", adaptive), ("grid", grid)):
        ok = table[f"{design}_status"] == "ok"
        hits = int(table.loc[ok, f"{design}_covered"].sum())
        lo, hi = wilson(hits, int(ok.sum()))
        reached = np.isfinite(runs)
        out.append(
            {
                "design": design,
                "problems": len(table),
                "reached": int(reached.sum()),
                "intervals": int(ok.sum()),
                "coverage": hits / max(int(ok.sum()), 1),
                "coverage_lo": lo,
                "coverage_hi": hi,
                "coverage_reached": float(table.loc[reached, f"{design}_covered"].mean()) if reached.any() else np.nan,
                "median_runs": float(np.median(runs)),
                "median_both": float(np.median(runs[both])) if both.any() else np.nan,
                "median_fewer": float(np.median(paired)) if len(paired) else np.nan,
                "median_fewer_spent": float(np.median(spent)) if len(spent) else np.nan,
            }
        )
    return pd.DataFrame(out)


YIELD_BUDGETS = (100, 200, 400)  # the problems each design brings within the target by these many runs


def markdown(tables: dict) -> str:
    """The table docs/refine.md quotes: per measurement (a name -> the paired table), the search's and the
    grid's reach, coverage and runs, as summary() gives them."""
    columns, rows = (
        [],
        {
            "problems": [],
            "brought within the target": [],
            **{f"... within {budget} runs": [] for budget in YIELD_BUDGETS},
            "coverage of the intervals at the stop (Wilson 95%; intervals)": [],
            "coverage where the target was reached": [],
            "median runs to the target, every problem": [],
            "median runs, the problems both reached": [],
            "median paired ratio, grid/search": [],
            "... a design short of the target at the runs it spent": [],
        },
    )
    for name, table in tables.items():
        for _, r in summary(table).iterrows():
            columns.append(f"{name}: {'search' if r.design == 'adaptive' else 'grid'}")
            runs = runs_to_target(table, r.design)
            cells = (
                f"{r.problems}",
                f"{r.reached}",
                *(f"{int((runs <= budget).sum())}" for budget in YIELD_BUDGETS),
                f"{r.coverage:.3f} [{r.coverage_lo:.3f}, {r.coverage_hi:.3f}] ({r.intervals})",
                f"{r.coverage_reached:.3f}",
                f"{r.median_runs:g}" if np.isfinite(r.median_runs) else "not reached by half",
                f"{r.median_both:g}",
                f"{r.median_fewer:.2f}" if r.design == "adaptive" else "",
                f"{r.median_fewer_spent:.2f}" if r.design == "adaptive" else "",
            )
            for row, cell in zip(rows.values(), cells):
                row.append(cell)
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    return "\n".join(lines + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()])


def _interval(row: pd.Series, design: str) -> str:
    if row[f"{design}_status"] != "ok":
        return f"{row[f'{design}_status']}"
    return f"{row[f'{design}_x']:.2f} [{row[f'{design}_lo']:.2f}, {row[f'{design}_hi']:.2f}]"


def cells_markdown(table: pd.DataFrame, cell: list) -> str:
    """A live measurement cell by cell: the truth (or the reference and its interval, where the table has
    one), and each design's log10 coef* [95% interval] at its stop and the runs it took."""
    reference = "reference_lo" in table
    head = [*cell, "reference [95%]" if reference else "truth", "search", "runs", "grid", "runs (seeds)"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for _, r in table.iterrows():
        truth = f"{r.truth:.2f}" + (f" [{r.reference_lo:.2f}, {r.reference_hi:.2f}]" if reference else "")
        cells = [*(f"{r[c]:g}" for c in cell), truth, _interval(r, "adaptive"), f"{r.adaptive_runs}"]
        cells += [_interval(r, "grid"), f"{r.grid_runs} ({r.grid_seeds})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


LIVE_CELLS = {"ridge_live": ["width", "n_train"], "digits_live": ["width"]}  # the cell of each live measurement


def report(tables: dict) -> str:
    """summary.md: markdown() of every measurement, then each live one cell by cell."""
    parts = [markdown(tables)]
    for name, cell in LIVE_CELLS.items():
        if name in tables:
            parts.append(f"{name}, cell by cell (log10 coef*):\n\n" + cells_markdown(tables[name], cell))
    return "\n\n".join(parts) + "\n"


# --- Replayed on a real sweep: the kept ridge check -------------------------------------------------------------

RIDGE_TABLE = "paper/results/ridge.csv.gz"  # 17 coefs 0.25 dex apart x 48 problems (seeds) at each of 20 (d, n)


@dataclass(frozen=True)
class Replayed:
    """One (d, n) of a kept sweep whose every (coef, seed) was run: the search may ask only for those, so its
    lattice is the sweep's grid; a run is what the sweep recorded."""

    values: dict  # (log10 coef rounded, seed) -> the recorded val_loss
    grid: tuple  # every other coef of the sweep: the search's coarse grid
    full: tuple  # every coef of the sweep: the full grid it is measured against
    seeds: int
    truth: float  # log10 of the closed form's coef* = d·σ²/(n·r²)

    def run(self, x, seed: int) -> float:
        return self.values[(None if x is None else round(x, 6), seed)]


def ridge_cells(path: str = RIDGE_TABLE) -> list[Replayed]:
    from analysis.table import read_table

    return [_replayed(g) for _, g in read_table(path).groupby(["width", "n_train"])]


def _replayed(cell: pd.DataFrame, truth: float | None = None) -> Replayed:
    """A kept grid's cell as a replay: λ = 0 runs at None, seeds renumbered 0, 1, ... in their order (a design
    takes the first k); ``truth`` defaults to the ridge closed form."""
    x, y, seed = _runs(cell)
    order = {s: i for i, s in enumerate(sorted(set(seed.tolist())))}
    keys = [(None if np.isnan(a) else round(float(a), 6), order[s]) for a, s in zip(x, seed.tolist())]
    values = dict(zip(keys, y.tolist()))
    coefs = tuple(sorted({k for k, _ in keys if k is not None}))
    full = ((None,) if any(k is None for k, _ in keys) else ()) + coefs
    return Replayed(values, full[::2], full, len(order), _ridge_truth(cell) if truth is None else truth)


def _runs(table: pd.DataFrame) -> tuple:
    """x (log10 coef; NaN at λ = 0), y (val_loss; +inf where diverged) and seed of a table's runs."""
    coef = table["coef"].to_numpy(float)
    x = np.full(len(coef), np.nan)
    x[coef > 0] = np.log10(coef[coef > 0])
    y = metric_values(table, "val_loss").to_numpy(float)
    return x, y, table["seed"].to_numpy(int)


def _fit_runs(table: pd.DataFrame, fit=search_fit):
    """``fit`` (the search's by default) of a table's runs, λ = 0 runs as the baseline."""
    x, y, seed = _runs(table)
    on = np.isfinite(x)
    return fit(x[on], y[on], seed[on], y[~on], seed[~on])


def _grid_fit(x, y, seed, baseline_y=(), baseline_seed=()):
    """The full grid's fit, as full_grid makes it."""
    return fit_optimum(x, y, seed, baseline_y, baseline_seed, hull=True)


def _ridge_truth(cell: pd.DataFrame) -> float:
    """log10 of the closed form's coef* = d·σ²/(n·r²) of one (d, n) of a ridge sweep's table."""
    first = cell.iloc[0]
    noise, signal = float(first["config.data.noise"]), float(first["config.data.signal"])
    return float(np.log10(first["width"] * noise**2 / (first["n_train"] * signal**2)))


def measure_ridge(settings: RefineSettings, path: str = RIDGE_TABLE) -> pd.DataFrame:
    """The search and the full grid on every (d, n) of the kept ridge sweep, each stopped at the target or where
    it would need a seed the sweep did not run; the search's lattice is the sweep's 0.25-dex grid, no extension."""
    settings = replace(settings, resolution=0.25, extend=0.0, budget=10**6)
    rows = []
    for cell in ridge_cells(path):
        a, g = adaptive(cell, settings), full_grid(cell, settings.target_dex, max_runs=10**6)
        rows.append({"truth": cell.truth} | _paired(a, g))
    return pd.DataFrame(rows)


def measure_ridge_live(
    path: str, grid_path: str = RIDGE_TABLE, target: float = RefineSettings.target_dex
) -> pd.DataFrame:
    """A refine sweep of the ridge check that trained its own runs (its table at ``path``, e.g. kept
    paper/results/refine/ridge_refine.csv.gz), against the kept grid's replay on the same (d, n): per cell, the fit of
    all the search's runs (the interval it stopped with) and the runs it took. Truth: the closed form."""
    return _measure_live(path, grid_path, ["width", "n_train"], _ridge_truth, target)


DIGITS_SETTING = ["model", "dataset", "optimizer", "lr", "batch_size", "epochs", "n_train", "norm", "apply"]


def measure_digits_live(search_path: str, grid_path: str, target: float = RefineSettings.target_dex) -> pd.DataFrame:
    """A refine sweep of the quickstart (digits) against the quickstart's grid run with many seeds of its own
    (other seeds than the search's): per width, the search's fit of all its runs and the grid's replay with
    2, 3, ... seeds. Truth is unknown here; the reference is the grid's fit of all its seeds, whose own
    interval is in the table (``reference_lo``/``reference_hi``). The grid's intervals share seeds with it."""
    from analysis.table import AnalysisError, read_table

    search, grid = read_table(search_path), read_table(grid_path)
    for column in DIGITS_SETTING:
        if column in search and column in grid and set(search[column].dropna()) != set(grid[column].dropna()):
            raise AnalysisError(f"{column}: the search and the grid differ ({search_path} vs {grid_path})")
    if set(search["seed"]) & set(grid["seed"]):
        raise AnalysisError(f"seed: the grid's seeds must be other than the search's ({grid_path} shares some)")
    references = {width: _fit_runs(g, _grid_fit) for width, g in grid.groupby("width")}
    table = _measure_live(search_path, grid_path, ["width"], lambda g: references[g["width"].iloc[0]].x, target)
    table["reference_lo"] = [references[w].lo for w in table["width"]]
    table["reference_hi"] = [references[w].hi for w in table["width"]]
    table["grid_seeds_available"] = [int(grid.loc[grid["width"] == w, "seed"].nunique()) for w in table["width"]]
    return table


def _measure_live(path: str, grid_path: str, cell: list, truth, target: float) -> pd.DataFrame:
    """Per ``cell`` of a collected refine sweep at ``path``: its fit of all its runs, beside the replay of the
    grid at ``grid_path`` on the same cell; ``truth`` maps a cell's grid rows to its log10 coef*."""
    from analysis.table import AnalysisError, read_table

    grid = dict(iter(read_table(grid_path).groupby(cell)))  # keys: tuples, one value per column of ``cell``
    rows = []
    for key, g in read_table(path).groupby(cell):
        if key not in grid:
            raise AnalysisError(f"{', '.join(cell)} = {key}: in the search ({path}) but not in the grid ({grid_path})")
        at = float(truth(grid[key]))
        search = _outcome(_fit_runs(g), len(g), target, at)
        replay = full_grid(_replayed(grid[key], at), target, 10**6)
        rows.append(dict(zip(cell, key)) | {"truth": at} | _paired(search, replay))
    return pd.DataFrame(rows)
