"""``calibrate``: the coverage of the nominal 95% intervals, measured on planted tables.

Each replicate draws a scenario (``planted.random_scenario``), runs the same ``fit`` as real tables and
checks each interval against the planted truth: coef* per width, the exponent against width, the gain
over λ = 0, and the joint (η, λ) optimum's. ``bootstrap_coverage`` measures the seed bootstrap's check
the same way, on sweeps whose seeds' optima are independent across widths or share a slope in width
(``Scenario.seed_slope``). ``curvature_coverage`` measures the curvature test's intervals and verdicts on
straight and bent planted laws (``Scenario.bend``). The scenarios and the goal: docs/analysis.md#calibration,
docs/analysis.md#the-seed-bootstrap and docs/analysis.md#curvature."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.bootstrap import REPLICATES, bootstrap_runs, meta_sd
from analysis.curvature import curvature_table
from analysis.fit import METRICS, coef_star_table, exponent_table, joint_lr_table, tuned_lr_stars
from analysis.planted import planted, random_curvature_scenario, random_joint_scenario, random_scenario
from analysis.table import AnalysisError

GOAL = (0.90, 0.99)
SEED_SLOPE = (0.0, 0.3)  # dex per decade of width, uniform; 0.15 at most gave a median SD ratio of 1.06, below
# the 1.4-1.5 of the kept width sweeps whose points share their seeds


def _planted(scenario, rng: np.random.Generator, metric: str) -> tuple[pd.DataFrame, dict]:
    """A planted table and the truth of ``metric``; the final loss's draws no more than it always drew."""
    if metric not in METRICS:
        raise AnalysisError(f"--metric {metric}: unknown; allowed: {', '.join(METRICS)}")
    if metric == "val_loss":
        return planted(scenario, rng)
    table, truth = planted(scenario, rng, metrics=True)
    return table, truth["metrics"][metric]


def replicate(rng: np.random.Generator, seeds: int | None = None, metric: str = "val_loss") -> list[dict]:
    """One planted sweep, fitted on ``metric``: a row per interval with whether it covered the truth."""
    scenario = random_scenario(rng)
    scenario = replace(scenario, seeds=seeds or scenario.seeds)
    table, truth = _planted(scenario, rng, metric)
    stars = coef_star_table(table, metric)
    out = []
    for _, s in stars.iterrows():
        key = (scenario.lrs[0], int(s["width"]))
        reported = s["status"] == "ok"
        out.append(
            {
                "quantity": "log10 coef* per width",
                "reported": reported,
                "width_of_interval": np.log10(s["coef_hi"] / s["coef_lo"]) if reported else np.nan,
                "covered": reported and np.log10(s["coef_lo"]) <= truth["x"][key] <= np.log10(s["coef_hi"]),
            }
        )
        has_gain = np.isfinite(s["gain_lo"])
        out.append(
            {
                "quantity": "gain over λ = 0",
                "reported": has_gain,
                "width_of_interval": s["gain_hi"] - s["gain_lo"] if has_gain else np.nan,
                "covered": has_gain and s["gain_lo"] <= truth["gain"][key] <= s["gain_hi"],
            }
        )
    out.append(_exponent_row("exponent against width", exponent_table(stars), truth["alpha"]))
    return out


def _exponent_row(quantity: str, exponents: pd.DataFrame, alpha: float) -> dict:
    """Whether coef*'s fitted exponent against width was reported and its interval holds ``alpha``."""
    fitted = exponents[(exponents["norm"] == "coef") & (exponents["axis"] == "width")] if len(exponents) else []
    reported = len(fitted) > 0 and np.isfinite(fitted["lo"].iloc[0])
    return {
        "quantity": quantity,
        "reported": reported,
        "width_of_interval": fitted["hi"].iloc[0] - fitted["lo"].iloc[0] if reported else np.nan,
        "covered": reported and fitted["lo"].iloc[0] <= alpha <= fitted["hi"].iloc[0],
    }


def joint_replicate(rng: np.random.Generator, seeds: int | None = None, metric: str = "val_loss") -> list[dict]:
    """One planted joint (η, λ) sweep, fitted on ``metric``: does the joint optimum's interval hold the best grid
    lr and its coef*?"""
    scenario = random_joint_scenario(rng)
    scenario = replace(scenario, seeds=seeds or scenario.seeds)
    table, truth = _planted(scenario, rng, metric)
    stars = coef_star_table(table, metric)
    joint = joint_lr_table(stars)
    out = [
        _exponent_row(
            "joint optimum: exponent against width", exponent_table(tuned_lr_stars(stars, joint)), truth["alpha"]
        )
    ]
    joint = joint.set_index("width") if len(joint) else pd.DataFrame(index=pd.Index([], name="width"))
    for w in scenario.widths:
        best = min(scenario.lrs, key=lambda lr: truth["level"][(lr, int(w))])
        reported = w in joint.index
        row = joint.loc[w] if reported else None
        out.append(
            {
                "quantity": "joint optimum: lr*",
                "reported": reported,
                "width_of_interval": np.log10(row["lr_hi"] / row["lr_lo"]) if reported else np.nan,
                "covered": reported and row["lr_lo"] <= best * (1 + 1e-9) and best <= row["lr_hi"] * (1 + 1e-9),
            }
        )
        reported = reported and np.isfinite(row["coef_lo"])
        out.append(
            {
                "quantity": "joint optimum: coef*",
                "reported": reported,
                "width_of_interval": np.log10(row["coef_hi"] / row["coef_lo"]) if reported else np.nan,
                "covered": reported
                and np.log10(row["coef_lo"]) <= truth["x"][(best, int(w))] <= np.log10(row["coef_hi"]),
            }
        )
    return out


def coverage(replicates: int = 200, seed: int = 0, seeds: int | None = None, metric: str = "val_loss") -> pd.DataFrame:
    """Per quantity: intervals reported, their coverage of the truth and median width. Joint (η, λ)
    sweeps, three times the runs each, are drawn half as often. ``seeds`` fixes the number of
    seeds per point (default: 2 to 5 at random); ``metric`` is the one fitted (the planted best-epoch loss and
    error rate: analysis.planted.Point)."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        [r for _ in range(replicates) for r in replicate(rng, seeds, metric)]
        + [r for _ in range(max(replicates // 2, 1)) for r in joint_replicate(rng, seeds, metric)]
    )
    return _summary(rows)


def bootstrap_replicate(rng: np.random.Generator, shared: bool, boot_replicates: int = REPLICATES) -> list[dict]:
    """One planted sweep of five seeds (their optima independent across widths, or ``shared``: with a slope in
    width per seed), its exponent against width fitted and seed-bootstrapped: a row per interval."""
    scenario = replace(random_scenario(rng), seeds=5, seed_slope=float(rng.uniform(*SEED_SLOPE)) if shared else 0.0)
    table, truth = planted(scenario, rng)
    boot = bootstrap_runs(table, boot_replicates, rng)
    label = "shared across widths" if shared else "independent"
    rows = boot[(boot["norm"] == "coef") & (boot["axis"] == "width")] if len(boot) else boot
    if rows.empty:
        return [
            {
                "quantity": f"exponent, seeds {label}: {kind}",
                "reported": False,
                "covered": False,
                "width_of_interval": np.nan,
                "sd_ratio": np.nan,
            }
            for kind in ("meta-regression", "bootstrap check")
        ]
    b = rows.iloc[0]
    return [
        {
            "quantity": f"exponent, seeds {label}: meta-regression",
            "reported": True,
            "covered": b["lo"] <= truth["alpha"] <= b["hi"],
            "width_of_interval": b["hi"] - b["lo"],
            "sd_ratio": b["boot_sd"] / meta_sd(b),
        },
        {
            "quantity": f"exponent, seeds {label}: bootstrap check",
            "reported": True,  # every replicate counts, so every fitted exponent is checked
            "covered": b["robust_lo"] <= truth["alpha"] <= b["robust_hi"],
            "width_of_interval": b["robust_hi"] - b["robust_lo"],
            "sd_ratio": b["boot_sd"] / meta_sd(b),
        },
    ]


def bootstrap_coverage(replicates: int = 100, seed: int = 0) -> pd.DataFrame:
    """Coverage of the exponent's 95% interval, the meta-regression's and the bootstrap check's, on
    ``replicates`` planted sweeps with independent points and as many with seeds shared across widths."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        [r for shared in (False, True) for _ in range(replicates) for r in bootstrap_replicate(rng, shared)]
    )
    return _summary(rows).assign(
        median_sd_ratio=[g["sd_ratio"].median() for _, g in rows.groupby("quantity", sort=False)]
    )


def goal_met(table: pd.DataFrame, bootstrap: bool = False, curvature: bool = False) -> bool:
    """Every coverage in ``table`` lies in GOAL; of a ``bootstrap_coverage`` table, the check's rows only
    (the meta-regression's are the baseline it is measured against); of a ``curvature_coverage`` table, the
    intervals' rows only (the others are rates of verdicts)."""
    judged = table[table["quantity"].str.endswith("bootstrap check")] if bootstrap else table
    judged = judged[~judged["quantity"].str.startswith(CURVATURE_RATES)] if curvature else judged
    return bool(judged["coverage"].between(*GOAL).all())


def _summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: intervals reported, their coverage with its Wilson interval, and median width."""
    summary = []
    for quantity, g in rows.groupby("quantity", sort=False):
        shown = g[g["reported"]]
        hits = int(shown["covered"].sum())
        lo, hi = wilson(hits, len(shown))
        summary.append(
            {
                "quantity": quantity,
                "intervals": len(shown),
                "withheld": len(g) - len(shown),
                "coverage": hits / max(len(shown), 1),
                "coverage_lo": lo,
                "coverage_hi": hi,
                "median_width": shown["width_of_interval"].median(),
            }
        )
    return pd.DataFrame(summary)


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a binomial proportion: how precisely the coverage itself is measured."""
    if n == 0:
        return np.nan, np.nan
    p = hits / n
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    return centre - half, centre + half


CURVATURE_SWEEPS = {"realistic": False, "quiet": True}  # random_scenario's noise; the kept teacher sweeps'
CURVATURE_RATES = ("'bends' said", "'straight' said")


def curvature_replicate(rng: np.random.Generator, bent: bool, quiet: bool = False) -> list[dict]:
    """One planted sweep, straight or ``bent`` (``planted.random_curvature_scenario``), its curvature along width
    fitted: a row per interval (q, the slope at each end of the fitted range) with whether it holds the truth,
    and a row per verdict with whether it was said ("covered"). Quantities are "WHAT, LAW laws, SWEEPS sweeps"."""
    scenario = random_curvature_scenario(rng, bent, quiet)
    table, truth = planted(scenario, rng)
    fitted = curvature_table(coef_star_table(table))
    fitted = fitted[fitted["axis"] == "width"]
    row = fitted.iloc[0] if len(fitted) else pd.Series({"q": np.nan, "verdict": "no row"})
    reported = bool(np.isfinite(row["q"]))
    label = f"{'bent' if bent else 'straight'} laws, {'quiet' if quiet else 'realistic'} sweeps"

    def interval(what: str, name: str, value: float) -> dict:
        return {
            "quantity": f"{what}, {label}",
            "reported": reported,
            "width_of_interval": row[f"{name}_hi"] - row[f"{name}_lo"] if reported else np.nan,
            "covered": reported and row[f"{name}_lo"] <= value <= row[f"{name}_hi"],
        }

    def slope_at(width: float) -> float:
        return truth["alpha"] + 2 * truth["bend"] * (np.log10(width) - truth["centre"])

    out = [interval("q", "q", truth["bend"])]
    for end, side in (("low", "min"), ("high", "max")):
        out.append(interval("end slopes", f"slope_{end}", slope_at(row[f"axis_{side}"]) if reported else np.nan))
    said = {"'bends' said": str(row["verdict"]).startswith("bends"), "'straight' said": row["verdict"] == "straight"}
    out += [
        {"quantity": f"{what}, {label}", "reported": reported, "covered": reported and said[what]}
        for what in CURVATURE_RATES
    ]
    return out


def curvature_coverage(replicates: int = 400, seed: int = 0) -> pd.DataFrame:
    """On ``replicates`` planted sweeps of each kind (straight and bent laws, realistic and quiet sweeps): the
    coverage of q's and the end slopes' 95% intervals, and how often each verdict was said (in ``coverage``,
    the rows named by CURVATURE_RATES)."""
    rng = np.random.default_rng(seed)
    rows = [
        r
        for quiet in CURVATURE_SWEEPS.values()
        for bent in (False, True)
        for _ in range(replicates)
        for r in curvature_replicate(rng, bent, quiet)
    ]
    return _summary(pd.DataFrame(rows))
