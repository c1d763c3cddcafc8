"""Runs made twice: the same composed config and seed in two kept experiments, trained in different sweeps
(so, on a CPU, packed with different mates, which changes a member's float32 rounding; docs/results.md).
How far such a rerun lands from the first, against the noise of one run about its curve that the
estimator fits (σ): the pack effect's size, and whether the noise model holds it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.fit import metric_values

CONFIG = "config."
SEED = "config.seed"


def rerun_pairs(tables: dict[str, pd.DataFrame], sigma: dict[str, float], metric: str = "val_loss") -> pd.DataFrame:
    """Every completed run that an earlier table (in the order given) already holds from another run
    directory, paired with the first such: the same value of every config field both tables record (a
    field one table lacks entirely was added after it was collected). Each remade run counts once; ``sigma``
    is the noise of one run that the estimator fitted at the earlier run's point, and ``seed_sd`` the SD over
    seeds of the earlier table's runs at that config (every field but the seed)."""
    done = {
        name: runs[runs["status"] == "completed"].assign(value=metric_values(runs, metric))
        for name, runs in tables.items()
    }
    pairs, names = [], list(done)
    for j, name in enumerate(names):
        later, paired = done[name], set()
        for earlier_name in names[:j]:
            earlier = done[earlier_name]
            columns = sorted(c for c in later.columns if c.startswith(CONFIG) and c in earlier.columns)
            unseeded = [c for c in columns if c != SEED]
            spread = earlier.assign(seed_sd=_seed_sd(earlier, unseeded))
            both = spread.assign(identity=_identity(earlier, columns)).merge(
                later.assign(identity=_identity(later, columns)), on="identity", suffixes=("_a", "_b")
            )
            both = both[(both["run_dir_a"] != both["run_dir_b"]) & ~both["run_dir_b"].isin(paired)]
            both = both.drop_duplicates("run_dir_b")
            paired |= set(both["run_dir_b"])
            pairs.append(
                pd.DataFrame(
                    {
                        "experiments": f"{earlier_name} / {name}",
                        "width": both["width_a"],
                        "a": both["value_a"],
                        "b": both["value_b"],
                        "sigma": both["run_dir_a"].map(sigma).astype(float),
                        "seed_sd": both["seed_sd"],
                    }
                )
            )
    return (
        pd.concat(pairs, ignore_index=True)
        if pairs
        else pd.DataFrame(columns=["experiments", "width", "a", "b", "sigma", "seed_sd"])
    )


def _seed_sd(runs: pd.DataFrame, unseeded: list[str]) -> pd.Series:
    """Per run, the SD over seeds of the finite values at its config but the seed: how far another seed lands."""
    point = _identity(runs, unseeded)
    finite = runs["value"].where(np.isfinite(runs["value"]))
    return finite.groupby(point).transform("std")


def _identity(runs: pd.DataFrame, columns: list[str]) -> pd.Series:
    """A run's values of ``columns`` as one string (None where it records none)."""
    return runs[columns].astype(object).where(runs[columns].notna(), None).map(repr).agg("|".join, axis=1)


def rerun_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair of experiments and width: runs made twice, how many identical, the SD of one run's remake
    (the differences / √2), its ratio to σ (the median over the runs' points) and to the SD between seeds
    (pooled over the runs' points)."""
    rows = []
    for (experiments, width), g in pairs.groupby(["experiments", "width"], sort=True):
        rows.append(
            {
                "experiments": experiments,
                "width": width,
                "runs": len(g),
                "identical": int((g["a"] == g["b"]).sum()),
                "rerun_sd": float(np.sqrt(((g["a"] - g["b"]) ** 2).mean() / 2)),
                "sigma": float(g["sigma"].median()),
                "seed_sd": float(np.sqrt((g["seed_sd"] ** 2).mean())),
            }
        )
    columns = ["experiments", "width", "runs", "identical", "rerun_sd", "sigma", "seed_sd"]
    summary = pd.DataFrame(rows, columns=columns)
    return summary.assign(
        ratio=summary["rerun_sd"] / summary["sigma"], seed_ratio=summary["rerun_sd"] / summary["seed_sd"]
    )


def sigma_by_run(fits: list) -> dict[str, float]:
    """Each fitted run's directory -> the σ its point's fit found (``fit.FittedPoint``s)."""
    return {run_dir: point.optimum.sigma for point in fits for run_dir in point.runs["run_dir"]}


def rerun_numbers(summary: pd.DataFrame) -> dict[str, str]:
    """The macros the paper quotes: how many runs were made more than once, how many identical every time,
    and over the widths where some differ, the range of the remake's SD over σ, of its share of σ² and of its
    SD over the SD between seeds."""
    if summary.empty:
        return {}
    differing = summary[summary["identical"] < summary["runs"]]
    ratio, seed_ratio = differing["ratio"].dropna(), differing["seed_ratio"].dropna()
    numbers = {"RerunRuns": f"{summary['runs'].sum()}", "RerunIdentical": f"{summary['identical'].sum()}"}
    if len(ratio):
        numbers |= {
            "RerunRatio": f"{ratio.min():.2f}--{ratio.max():.2f}",
            "RerunShare": f"{ratio.min() ** 2:.2f}--{ratio.max() ** 2:.2f}",
        }
    if len(seed_ratio):  # against how far another seed lands
        numbers["RerunSeedRatio"] = f"{seed_ratio.min():.2f}--{seed_ratio.max():.2f}"
    return numbers
