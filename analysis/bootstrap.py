"""``bootstrap``: the seed bootstrap of an experiment's exponents, a check on the meta-regression.

The exponent fit (``scaling``) treats the points' optima as independent; they are not when a seed draws
something several points share. Resampling whole seeds with replacement (one draw for every point) and
refitting every coef* and the exponents gives their spread with that dependence in it. Its check on a
verdict (``robust_verdict``) raises the exponent's SD to the bootstrap's where that is larger, so it can
only weaken a verdict. What it computes, which replicates count, and why: docs/analysis.md#the-seed-bootstrap.

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
MIN_KEPT = 20  # replicates with the original design below which the bootstrap gives no verdict


def meta_sd(e: pd.Series) -> float:
    """The meta-regression's SD of an exponent, from its 95% interval on ``dof`` degrees of freedom."""
    return (e["hi"] - e["lo"]) / 2 / stats.t.ppf(0.975, e["dof"])


def table_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def exponents(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """λ*'s exponents by (setting, norm, axis), and each setting's bounded points (the fit's design)."""
    stars = coef_star_table(runs)
    table = exponent_table(stars).dropna(subset=["exponent"])
    ok = stars[stars["status"] == "ok"]
    design = pd.Series(
        {
            setting: frozenset(map(tuple, points[list(AXES)].to_numpy().tolist()))
            for setting, points in ok.groupby("setting")
        },
        dtype=object,
    )
    return table.set_index(["setting", "norm", "axis"]), design


def resampled(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The runs of len(seeds) seeds drawn with replacement, each draw relabelled as its own seed."""
    seeds = np.unique(runs["seed"])
    parts = [runs[runs["seed"] == seed].assign(seed=label) for label, seed in enumerate(rng.choice(seeds, len(seeds)))]
    return pd.concat(parts, ignore_index=True)


def seed_bootstrap(table: str | Path, replicates: int = REPLICATES, rng: int = 0) -> pd.DataFrame:
    """Per (setting, norm, axis): λ*'s exponent with the meta-regression's 95% interval and verdict, and the
    bootstrap's SD, 2.5-97.5% percentiles and robust verdict over the replicates that kept the design."""
    if replicates < 2:
        raise AnalysisError(f"--replicates {replicates}: must be >= 2 (an SD needs two)")
    runs = read_table(table)
    if runs["seed"].nunique() < 2:
        raise AnalysisError(f"{table}: one seed; a seed bootstrap needs several")
    boot = bootstrap_runs(runs, replicates, np.random.default_rng(rng))
    if boot.empty:
        raise AnalysisError(f"{table}: no exponent fitted (too few optima bounded), so none to bootstrap")
    return boot.assign(table_sha256=table_digest(table))


def bootstrap_runs(runs: pd.DataFrame, replicates: int, generator: np.random.Generator) -> pd.DataFrame:
    """``seed_bootstrap`` of a table in memory (no rows where no exponent is fitted)."""
    original, design = exponents(runs)
    if original.empty:
        return pd.DataFrame()
    draws, same_design = [], []
    for _ in range(replicates):
        replicate, replicate_design = exponents(resampled(runs, generator))
        draws.append(replicate["exponent"].reindex(original.index))
        same = replicate_design.reindex(design.index) == design
        same_design.append(same.reindex(original.index.get_level_values("setting")).to_numpy())
    draws = pd.concat(draws, axis=1)
    same_design = pd.DataFrame(np.array(same_design).T, index=original.index, columns=draws.columns)
    rows = []
    for key, e in original.iterrows():
        every = draws.loc[key].dropna().to_numpy()
        kept = draws.loc[key].where(same_design.loc[key]).dropna().to_numpy()
        lo, hi = np.percentile(kept, [2.5, 97.5]) if len(kept) > 1 else (np.nan, np.nan)
        boot_sd = kept.std(ddof=1) if len(kept) >= MIN_KEPT else np.nan
        half = stats.t.ppf(0.95, e["dof"]) * np.fmax(meta_sd(e), boot_sd)  # fmax: the meta SD where no boot SD
        lo90, hi90 = e["exponent"] - half, e["exponent"] + half
        span = e["axis_max"] / e["axis_min"]
        setting, norm, axis = key
        rows.append(
            {
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
                "replicates": replicates,
                "kept": len(kept),
                "boot_sd": boot_sd,
                "boot_lo": lo,
                "boot_hi": hi,
                "robust_lo90": lo90,
                "robust_hi90": hi90,
                "robust_verdict": verdict(lo90, hi90, e["margin"], span) if len(kept) >= MIN_KEPT else "",
                "boot_sd_every": every.std(ddof=1) if len(every) > 1 else np.nan,
                "fitted": len(every),
            }
        )
    return pd.DataFrame(rows)


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
    if "robust_verdict" not in boot:
        raise AnalysisError(
            f"{path}: written by an older bootstrap (no norm or verdict columns); rerun `python -m "
            f"analysis bootstrap {table} --out {path}`"
        )
    if (boot["table_sha256"] != table_digest(table)).any():
        raise AnalysisError(
            f"{path}: drawn from another version of {table}; rerun `python -m analysis bootstrap {table} --out {path}`"
        )
    return boot.assign(robust_verdict=boot["robust_verdict"].fillna(""))
