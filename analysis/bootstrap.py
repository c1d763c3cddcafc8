"""``bootstrap``: the seed bootstrap of an experiment's exponents, a check on the meta-regression.

The exponent fit (``scaling``) treats the points' optima as independent; they are not when a seed draws
something several points share. Resampling whole seeds with replacement (one draw for every point) and
refitting every coef* and the exponents gives their spread with that dependence in it. Every replicate
counts, each point by its estimate whatever its status: one gone open keeps its estimate, one gone to an
edge sits at the grid's end. Its check on a verdict (``robust_verdict``) widens the exponent's interval each
way to the bootstrap's reach where that is larger, so it can only weaken a verdict. What it computes, which replicates count, and why: docs/analysis.md#the-seed-bootstrap.

The paper quotes it from ``paper/results/bootstrap/NAME.csv``, which records the SHA-256 of the table
it was drawn from: a table that has changed since stops the paper build instead of being quoted stale."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.fit import AXES, coef_star_table, exponent_table
from analysis.scaling import verdict
from analysis.table import AnalysisError, read_table

REPLICATES = 100  # resamples of the seeds, by default


def meta_sd(e: pd.Series) -> float:
    """The meta-regression's SD of an exponent, from its 95% interval on ``dof`` degrees of freedom."""
    return (e["hi"] - e["lo"]) / 2 / stats.t.ppf(0.975, e["dof"])


def table_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resampled(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The runs of len(seeds) seeds drawn with replacement, each draw relabelled as its own seed."""
    seeds = np.unique(runs["seed"])
    parts = [runs[runs["seed"] == seed].assign(seed=label) for label, seed in enumerate(rng.choice(seeds, len(seeds)))]
    return pd.concat(parts, ignore_index=True)


def seed_bootstrap(table: str | Path, replicates: int = REPLICATES, rng: int = 0) -> pd.DataFrame:
    """Per (setting, norm, axis): λ*'s exponent with the meta-regression's 95% interval and verdict, and the
    bootstrap's spread and check over every replicate (``bootstrap_runs``)."""
    if replicates < 2:
        raise AnalysisError(f"--replicates {replicates}: must be >= 2 (an SD needs two)")
    runs = read_table(table)
    if runs["seed"].nunique() < 2:
        raise AnalysisError(f"{table}: one seed; a seed bootstrap needs several")
    boot = bootstrap_runs(runs, replicates, np.random.default_rng(rng))
    if boot.empty:
        raise AnalysisError(f"{table}: no exponent fitted (too few optima bounded), so none to bootstrap")
    return boot.assign(table_sha256=table_digest(table))


def _replicate_exponents(original, design, stars) -> tuple[pd.Series, np.ndarray]:
    """A replicate's exponents, refitted over the original fit's points from each point's coef* whatever its
    status: an optimum gone open keeps its estimate (with the original SE, having none of its own), one
    gone to an edge sits at the grid's end. NaN where a point was not fitted at all. Also which points went
    open or to an edge."""
    here = design[AXES_KEY].merge(stars[[*AXES_KEY, "coef_star", "status", "se"]], on=AXES_KEY, how="left")
    moved = here["coef_star"].to_numpy(float) / design["coef_star"].to_numpy(float)
    lams = [c for c in design.columns if c.startswith("lam_star_")]
    points = design.assign(
        coef_star=design["coef_star"].to_numpy(float) * moved,
        se=np.where(np.isfinite(here["se"].to_numpy(float)), here["se"].to_numpy(float), design["se"].to_numpy(float)),
        **{c: design[c].to_numpy(float) * moved for c in lams},
    )
    fitted = points[~points["setting"].isin(points.loc[~np.isfinite(moved), "setting"])]
    refit = exponent_table(fitted).dropna(subset=["exponent"]).set_index(["setting", "norm", "axis"])["exponent"]
    return refit.reindex(original.index).astype(float), ~here["status"].eq("ok").to_numpy()


AXES_KEY = ["setting", *AXES]


def bootstrap_runs(runs: pd.DataFrame, replicates: int, generator: np.random.Generator) -> pd.DataFrame:
    """``seed_bootstrap`` of a table in memory (no rows where no exponent is fitted)."""
    stars = coef_star_table(runs)
    original = exponent_table(stars).dropna(subset=["exponent"]).set_index(["setting", "norm", "axis"])
    if original.empty:
        return pd.DataFrame()
    design = stars[(stars["status"] == "ok") & stars["setting"].isin(original.index.get_level_values("setting"))]
    replicated = [
        _replicate_exponents(original, design, coef_star_table(resampled(runs, generator))) for _ in range(replicates)
    ]
    draws = pd.concat([exponents for exponents, _ in replicated], axis=1)
    lost_each = np.array([lost for _, lost in replicated])
    lost = design[AXES_KEY].assign(times=lost_each.sum(axis=0))
    kept = {
        setting: int((~lost_each[:, (design["setting"] == setting).to_numpy()].any(axis=1)).sum())
        for setting in design["setting"].unique()
    }
    return pd.DataFrame(
        [
            {**_row(key, e, draws.loc[key].to_numpy(float), kept[key[0]]), "lost_points": _lost_points(lost, key[0])}
            for key, e in original.iterrows()
        ]
    )


def _lost_points(lost: pd.DataFrame, setting: str) -> str:
    """The setting's fitted points that some replicates lost, with how many, e.g. "width 2: 28"."""
    mine = lost[(lost["setting"] == setting) & (lost["times"] > 0)]
    axes = [a for a in AXES if lost.loc[lost["setting"] == setting, a].nunique() > 1]
    return "; ".join(" ".join(f"{a} {r[a]:g}" for a in axes) + f": {r['times']}" for _, r in mine.iterrows())


def check_interval(e: pd.Series, draws: np.ndarray, level: float) -> tuple[float, float]:
    """The check's interval at ``level``: each way, the larger of the fit's SD and the bootstrap's reach that
    way (its (1 ± level)/2 quantile over every replicate, counted in SDs of a normal), times the fit's t
    quantile. An unfitted replicate (NaN) counts as either end, so past (1 − level)/2 of them both are infinite."""
    tail = (1 - level) / 2
    low = np.quantile(np.where(np.isnan(draws), -np.inf, draws), tail, method="inverted_cdf")
    high = np.quantile(np.where(np.isnan(draws), np.inf, draws), 1 - tail, method="inverted_cdf")
    t, z = stats.t.ppf(1 - tail, e["dof"]), stats.norm.ppf(1 - tail)
    sd = meta_sd(e)
    return e["exponent"] - t * max(sd, (e["exponent"] - low) / z), e["exponent"] + t * max(
        sd, (high - e["exponent"]) / z
    )


def _row(key: tuple, e: pd.Series, draws: np.ndarray, kept: int) -> dict:
    """One exponent's bootstrap summary and check (90%: the TOST's; 95%: what the calibration measures)."""
    finite = draws[np.isfinite(draws)]
    lo90, hi90 = check_interval(e, draws, 0.90)
    lo95, hi95 = check_interval(e, draws, 0.95)
    span = e["axis_max"] / e["axis_min"]
    setting, norm, axis = key
    return {
        "setting": setting,
        "norm": norm,
        "axis": axis,
        "exponent": e["exponent"],
        "lo": e["lo"],
        "hi": e["hi"],
        "n_points": int(e["n_points"]),
        "dof": int(e["dof"]),
        "span": span,
        "margin": e["margin"],
        "verdict": e["verdict"],
        "replicates": len(draws),
        "kept": kept,  # every fitted point stayed bounded
        "unfitted": int(np.sum(np.isnan(draws))),  # a fitted point had no estimate at all
        "boot_sd": finite.std(ddof=1) if len(finite) > 1 else np.nan,
        "boot_lo": np.quantile(np.where(np.isnan(draws), -np.inf, draws), 0.025, method="inverted_cdf"),
        "boot_hi": np.quantile(np.where(np.isnan(draws), np.inf, draws), 0.975, method="inverted_cdf"),
        "robust_lo": lo95,
        "robust_hi": hi95,
        "robust_lo90": lo90,
        "robust_hi90": hi90,
        "robust_verdict": verdict(lo90, hi90, e["margin"], span),
    }


def changed_by_check(boot: pd.DataFrame) -> pd.Series:
    """Per row: the check was made (enough replicates kept the design) and its verdict differs from the fit's."""
    return (boot["robust_verdict"] != "") & (boot["robust_verdict"] != boot["verdict"])


def kept_bootstrap(name: str, table: Path) -> pd.DataFrame | None:
    """The bootstrap kept beside experiment NAME's results table (results/bootstrap/NAME.csv), if any;
    an error if it was drawn from another version of the table."""
    path = table.parent / "bootstrap" / f"{name}.csv"
    if not path.exists():
        return None
    boot = pd.read_csv(path)
    if "unfitted" not in boot:
        raise AnalysisError(
            f"{path}: written by an older bootstrap (it kept only replicates with the original design); rerun `python -m "
            f"analysis bootstrap {table} --out {path}`"
        )
    if (boot["table_sha256"] != table_digest(table)).any():
        raise AnalysisError(
            f"{path}: drawn from another version of {table}; rerun `python -m analysis bootstrap {table} --out {path}`"
        )
    return boot
