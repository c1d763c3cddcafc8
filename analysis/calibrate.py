"""``calibrate``: the coverage of the nominal 95% intervals, measured on planted tables.

Each replicate draws a scenario (``planted.random_scenario``: 2-5 seeds, 4-6 widths, coarse to fine,
uneven and off-centre grids, flat to sharp asymmetric basins, seed offsets, per-seed optimum
jitter, noise along the curve that grows on the cliff, scatter about the power law, missing and
diverged runs, each run named in a random normalisation), runs the same ``fit`` as real tables and
checks each interval against the planted truth: coef* per width, the exponent against width, and
the gain over λ = 0.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.fit import coef_star_table, exponent_table, joint_lr_table, tuned_lr_stars
from analysis.planted import planted, random_joint_scenario, random_scenario

GOAL = (0.90, 0.99)


def replicate(rng: np.random.Generator, seeds: int | None = None) -> list[dict]:
    """One planted sweep, fitted: a row per interval with whether it covered the truth."""
    scenario = random_scenario(rng)
    scenario = replace(scenario, seeds=seeds or scenario.seeds)
    table, truth = planted(scenario, rng)
    stars = coef_star_table(table)
    out = []
    for _, s in stars.iterrows():
        key = (scenario.lrs[0], int(s["width"]))
        reported = s["status"] == "ok"
        out.append({"quantity": "log10 coef* per width", "reported": reported, "width_of_interval":
                    np.log10(s["coef_hi"] / s["coef_lo"]) if reported else np.nan,
                    "covered": reported and np.log10(s["coef_lo"]) <= truth["x"][key] <= np.log10(s["coef_hi"])})
        has_gain = np.isfinite(s["gain_lo"])
        out.append({"quantity": "gain over λ = 0", "reported": has_gain,
                    "width_of_interval": s["gain_hi"] - s["gain_lo"] if has_gain else np.nan,
                    "covered": has_gain and s["gain_lo"] <= truth["gain"][key] <= s["gain_hi"]})
    out.append(_exponent_row("exponent against width", exponent_table(stars), truth["alpha"]))
    return out


def _exponent_row(quantity: str, exponents: pd.DataFrame, alpha: float) -> dict:
    """Whether coef*'s fitted exponent against width was reported and its interval holds ``alpha``."""
    fitted = exponents[(exponents["norm"] == "coef") & (exponents["axis"] == "width")] if len(exponents) else []
    reported = len(fitted) > 0 and np.isfinite(fitted["lo"].iloc[0])
    return {"quantity": quantity, "reported": reported,
            "width_of_interval": fitted["hi"].iloc[0] - fitted["lo"].iloc[0] if reported else np.nan,
            "covered": reported and fitted["lo"].iloc[0] <= alpha <= fitted["hi"].iloc[0]}


def joint_replicate(rng: np.random.Generator, seeds: int | None = None) -> list[dict]:
    """One planted joint (η, λ) sweep: does the joint optimum's interval hold the best grid lr and
    its coef*?"""
    scenario = random_joint_scenario(rng)
    scenario = replace(scenario, seeds=seeds or scenario.seeds)
    table, truth = planted(scenario, rng)
    stars = coef_star_table(table)
    joint = joint_lr_table(stars)
    out = [_exponent_row("joint optimum: exponent against width", exponent_table(tuned_lr_stars(stars, joint)),
                         truth["alpha"])]
    joint = joint.set_index("width") if len(joint) else pd.DataFrame(index=pd.Index([], name="width"))
    for w in scenario.widths:
        best = min(scenario.lrs, key=lambda lr: truth["level"][(lr, int(w))])
        reported = w in joint.index
        row = joint.loc[w] if reported else None
        out.append({"quantity": "joint optimum: lr*", "reported": reported,
                    "width_of_interval": np.log10(row["lr_hi"] / row["lr_lo"]) if reported else np.nan,
                    "covered": reported and row["lr_lo"] <= best * (1 + 1e-9) and best <= row["lr_hi"] * (1 + 1e-9)})
        reported = reported and np.isfinite(row["coef_lo"])
        out.append({"quantity": "joint optimum: coef*", "reported": reported,
                    "width_of_interval": np.log10(row["coef_hi"] / row["coef_lo"]) if reported else np.nan,
                    "covered": reported and np.log10(row["coef_lo"]) <= truth["x"][(best, int(w))]
                    <= np.log10(row["coef_hi"])})
    return out


def coverage(replicates: int = 200, seed: int = 0, seeds: int | None = None) -> pd.DataFrame:
    """Per quantity: intervals reported, their coverage of the truth and median width. Joint (η, λ)
    sweeps, three times the runs each, are drawn half as often. ``seeds`` fixes the number of
    seeds per point (default: 2 to 5 at random)."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame([r for _ in range(replicates) for r in replicate(rng, seeds)]
                        + [r for _ in range(max(replicates // 2, 1)) for r in joint_replicate(rng, seeds)])
    summary = []
    for quantity, g in rows.groupby("quantity", sort=False):
        shown = g[g["reported"]]
        hits = int(shown["covered"].sum())
        lo, hi = _wilson(hits, len(shown))
        summary.append({"quantity": quantity, "intervals": len(shown), "withheld": len(g) - len(shown),
                        "coverage": hits / max(len(shown), 1), "coverage_lo": lo, "coverage_hi": hi,
                        "median_width": shown["width_of_interval"].median()})
    return pd.DataFrame(summary)


def _wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a binomial proportion: how precisely the coverage itself is measured."""
    if n == 0:
        return np.nan, np.nan
    p = hits / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half
