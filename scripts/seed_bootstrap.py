"""Seed bootstrap of an experiment's exponents, a check on the meta-regression's intervals.

The exponent fit (analysis/scaling.py) treats the points' optima as independent. They are not when
a seed draws something every point shares: ridge draws β from the run seed, so all N_train at one
width see the same β and nested inputs. Resampling the seeds with replacement (one draw for every
point, so whatever the seeds share stays shared), refitting every coef* and then the exponents,
gives their sampling spread with that dependence in it.

    .venv/bin/python scripts/seed_bootstrap.py TABLE [--replicates 100] [--rng 0]

prints, per setting and axis, the exponent of coef* with the meta-regression's 95% interval beside
the bootstrap's standard deviation and 2.5-97.5% percentiles (only replicates in which the point
set fitted is the original's count, so that a replicate losing an open point does not move the
design).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fit import coef_star_table, exponent_table  # noqa: E402
from analysis.table import read_table  # noqa: E402


def coef_exponents(runs: pd.DataFrame) -> pd.DataFrame:
    exponents = exponent_table(coef_star_table(runs))
    return exponents[exponents["norm"] == "coef"].set_index(["setting", "axis"])


def resampled(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The runs of len(seeds) seeds drawn with replacement, each draw relabelled as its own seed."""
    seeds = np.unique(runs["seed"])
    parts = [runs[runs["seed"] == seed].assign(seed=label) for label, seed in enumerate(rng.choice(seeds, len(seeds)))]
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table")
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--rng", type=int, default=0)
    args = parser.parse_args()
    runs = read_table(args.table)
    original = coef_exponents(runs)
    rng = np.random.default_rng(args.rng)
    draws = []
    for _ in range(args.replicates):
        replicate = coef_exponents(resampled(runs, rng))
        same = replicate["n_points"].reindex(original.index) == original["n_points"]
        draws.append(replicate["exponent"].reindex(original.index).where(same))
    draws = pd.concat(draws, axis=1)
    for key, e in original.iterrows():
        kept = draws.loc[key].dropna().to_numpy()
        lo, hi = np.percentile(kept, [2.5, 97.5]) if len(kept) else (np.nan, np.nan)
        print(f"{key[0]} / {key[1]}: exponent {e['exponent']:.3f}, meta-regression 95% [{e['lo']:.3f}, {e['hi']:.3f}] "
              f"(half-width {(e['hi'] - e['lo']) / 2:.3f}); seed bootstrap ({len(kept)} of {args.replicates} "
              f"replicates with the same {int(e['n_points'])} points): SD {kept.std(ddof=1):.3f}, "
              f"2.5-97.5% [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main()
