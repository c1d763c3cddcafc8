"""Does one exponent describe coef* over its range, or does the power law bend?

Per setting and each axis that varies with at least ``MIN_VALUES`` values among the bounded (status ok)
optima, the exponent fit (``scaling.meta_regression``: random effects, DerSimonian–Laird τ², Knapp–Hartung
t-intervals on k − p dof) gets a quadratic term in the centred log axis,

    log10 coef* = c0 + a·z + q·z² (+ b·log10 other axis),   z = log10 axis − mean over the points,

the other axes that vary among the points held as linear terms. Reported: q with its 95% interval, the local
slopes d log10 coef*/d log10 axis = a + 2q·z at the two ends of the fitted range with their 95% intervals
(from the fit's covariance), and the slope's change across the range, 2q·Δz (Δz = log10 max/min).

Verdict: ``bends`` where q's 95% interval excludes 0; ``straight`` where the 90% interval of the slope's change
lies inside ±``margin`` (a TOST at 5%, the margin the exponent's verdict uses, ``scaling.margin``: the two end
slopes, each carried across the whole range, put λ* within ``MARGIN``× of each other); ``bends, within
margin`` where both hold (a real bend too small to matter); ``no bend detected`` where neither does, which is
not evidence of a straight law. The model, the margin and the calibration: docs/analysis.md#curvature."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.fit import varying_axes
from analysis.scaling import MIN_SPAN, margin, meta_regression
from analysis.table import AnalysisError

MIN_VALUES = 4  # distinct values of the axis among the bounded optima: a quadratic on 3 leaves no check of it
VERDICTS = ("bends", "straight", "bends, within margin", "no bend detected", "too short")
COLUMNS = [
    "setting",
    "axis",
    "n_points",
    "n_values",
    "axis_min",
    "axis_max",
    "other_axes",
    "q",
    "q_lo",
    "q_hi",
    "slope_low",
    "slope_low_lo",
    "slope_low_hi",
    "slope_high",
    "slope_high_lo",
    "slope_high_hi",
    "change",
    "change_lo90",
    "change_hi90",
    "margin",
    "verdict",
    "tau",
    "dof",
]


def curvature_table(stars: pd.DataFrame) -> pd.DataFrame:
    """Per setting and each axis that varies among its points: the quadratic term, the end slopes and the
    verdict; a row saying why where the bounded optima are too few for it."""
    rows = []
    for setting, series in stars.groupby("setting", sort=True):
        points = series[series["status"] == "ok"]
        fitted = varying_axes(points) if len(points) else []
        for axis in varying_axes(series):
            base = {"setting": setting, "axis": axis, "n_points": len(points), "n_values": points[axis].nunique()}
            if axis not in fitted or base["n_values"] < MIN_VALUES:
                n = base["n_values"]
                verdict = f"too few points ({n} bounded value{'s' * (n != 1)} of {axis}; needs {MIN_VALUES})"
                rows.append({**base, "verdict": verdict})
                continue
            try:
                rows.append({**base, **bend(points, axis, [a for a in fitted if a != axis])})
            except AnalysisError as err:
                rows.append({**base, "verdict": f"not fitted: {err}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def bend(points: pd.DataFrame, axis: str, others: list[str]) -> dict:
    """The quadratic fit along ``axis`` (``others`` as linear terms) to bounded optima with their ``se``."""
    x = np.log10(points[axis].to_numpy(float))
    z = x - x.mean()
    design = np.column_stack([np.ones(len(z)), z, z**2] + [np.log10(points[a].to_numpy(float)) for a in others])
    if len(z) <= design.shape[1]:
        raise AnalysisError(f"{len(z)} points for {design.shape[1]} parameters")
    fit = meta_regression(design, np.log10(points["coef_star"].to_numpy(float)), points["se"].to_numpy(float))
    t95, t90 = stats.t.ppf(0.975, fit.dof), stats.t.ppf(0.95, fit.dof)
    a, q = fit.estimate[1], fit.estimate[2]
    sd_q = np.sqrt(fit.cov[2, 2])
    row = {"other_axes": ",".join(others), "q": q, "q_lo": q - t95 * sd_q, "q_hi": q + t95 * sd_q}
    for end, at in (("low", z.min()), ("high", z.max())):
        gradient = np.zeros(len(fit.estimate))
        gradient[1], gradient[2] = 1.0, 2 * at  # slope = a + 2q·z
        slope, sd = a + 2 * q * at, np.sqrt(gradient @ fit.cov @ gradient)
        row |= {f"slope_{end}": slope, f"slope_{end}_lo": slope - t95 * sd, f"slope_{end}_hi": slope + t95 * sd}
    span = x.max() - x.min()
    change, sd_change = 2 * q * span, 2 * span * sd_q
    bound = margin(points[axis])
    row |= {
        "axis_min": points[axis].min(),
        "axis_max": points[axis].max(),
        "change": change,
        "change_lo90": change - t90 * sd_change,
        "change_hi90": change + t90 * sd_change,
        "margin": bound,
        "tau": fit.tau,
        "dof": fit.dof,
    }
    row["verdict"] = verdict(row, 10**span)
    return row


def verdict(row: dict, span: float) -> str:
    """``bends`` / ``straight`` / ``bends, within margin`` / ``no bend detected`` (``too short`` below MIN_SPAN×)."""
    if span < MIN_SPAN:
        return "too short"
    bends = row["q_lo"] > 0 or row["q_hi"] < 0
    within = -row["margin"] < row["change_lo90"] and row["change_hi90"] < row["margin"]
    if bends:
        return "bends, within margin" if within else "bends"
    return "straight" if within else "no bend detected"
