"""``bootstrap``: the seed bootstrap of an experiment's exponents, a check on the meta-regression.

The exponent fit (``scaling``) treats the points' optima as independent. They are not when a seed
draws something several points share: ridge draws β from the run seed, so every N_train at one
width sees the same β and nested inputs. Resampling the seeds with replacement (one draw for every
point, so whatever the seeds share stays shared), refitting every coef* and then the exponents,
gives the exponents' sampling spread with that dependence in it. The SD and percentiles count a
replicate for a setting only if it bounds the same points as the original (the same design); the
SD over every replicate is reported beside them, since a point that turns open in a resample is
part of the spread too.

The paper quotes it from ``paper/results/bootstrap/NAME.csv``, which records the SHA-256 of the table
it was drawn from: a table that has changed since stops the paper build instead of being quoted stale.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.fit import AXES, coef_star_table, exponent_table
from analysis.table import AnalysisError, read_table


def table_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def coef_exponents(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """coef*'s exponents by (setting, axis), and each setting's bounded points (the fit's design)."""
    stars = coef_star_table(runs)
    exponents = exponent_table(stars)
    ok = stars[stars["status"] == "ok"]
    design = ok.groupby("setting")[list(AXES)].apply(lambda p: frozenset(map(tuple, p.to_numpy().tolist())))
    return exponents[exponents["norm"] == "coef"].set_index(["setting", "axis"]), design


def resampled(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The runs of len(seeds) seeds drawn with replacement, each draw relabelled as its own seed."""
    seeds = np.unique(runs["seed"])
    parts = [runs[runs["seed"] == seed].assign(seed=label) for label, seed in enumerate(rng.choice(seeds, len(seeds)))]
    return pd.concat(parts, ignore_index=True)


def seed_bootstrap(table: str | Path, replicates: int = 100, rng: int = 0) -> pd.DataFrame:
    """Per (setting, axis): coef*'s exponent with the meta-regression's 95% interval, and the
    bootstrap's SD and 2.5-97.5% percentiles over the replicates that kept the design."""
    if replicates < 2:
        raise AnalysisError(f"--replicates {replicates}: must be >= 2 (an SD needs two)")
    runs = read_table(table)
    if runs["seed"].nunique() < 2:
        raise AnalysisError(f"{table}: one seed; a seed bootstrap needs several")
    digest = table_digest(table)
    original, design = coef_exponents(runs)
    generator = np.random.default_rng(rng)
    draws, same_design = [], []
    for _ in range(replicates):
        replicate, replicate_design = coef_exponents(resampled(runs, generator))
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
        rows.append({"setting": key[0], "axis": key[1], "exponent": e["exponent"], "lo": e["lo"], "hi": e["hi"],
                     "n_points": int(e["n_points"]), "dof": int(e["dof"]), "replicates": replicates, "kept": len(kept),
                     "boot_sd": kept.std(ddof=1) if len(kept) > 1 else np.nan, "boot_lo": lo, "boot_hi": hi,
                     "boot_sd_every": every.std(ddof=1) if len(every) > 1 else np.nan, "fitted": len(every),
                     "table_sha256": digest})
    return pd.DataFrame(rows)


def kept_bootstrap(name: str, table: Path) -> pd.DataFrame | None:
    """The bootstrap kept beside experiment NAME's results table (results/bootstrap/NAME.csv), if any;
    an error if it was drawn from another version of the table."""
    path = table.parent / "bootstrap" / f"{name}.csv"
    if not path.exists():
        return None
    boot = pd.read_csv(path)
    if (boot["table_sha256"] != table_digest(table)).any():
        raise AnalysisError(f"{path}: drawn from another version of {table}; rerun `python -m analysis bootstrap "
                            f"{table} --out {path}`")
    return boot
