"""The answer on every metric: each kept experiment fitted again on the metrics the paper is not built on (the
best-epoch loss and the error rate beside the final loss; coef* and exponents only, no figures), λ*_sum's
exponent per setting and axis with its interval and verdict for the answer table, marked where that metric's
coverage was not measured to the goal, and the numbers the text quotes (docs/analysis.md#three-metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.calibrate import GOAL
from analysis.fit import METRICS, coef_star_table, exponent_table, fitted_groups, joint_lr_table, tuned_lr_stars

LABELS = {"val_loss": "final loss", "best_val_loss": "best-epoch loss", "val_err": "error rate"}
CALIBRATIONS = "calibration"  # results/calibration/METRIC.csv, from `python -m analysis calibrate --metric METRIC`
UNCALIBRATED = "§"  # a verdict whose metric's coverage is not measured, or off the goal
PER_POINT, EXPONENT = "log10 coef* per width", "exponent against width"
JOINT = ("joint optimum: coef*", "joint optimum: exponent against width")  # what the tuned lr's exponent rests on
TUNED = "optim.lr=tuned"  # fit.tuned_lr_stars' setting


def other_metrics(metric: str) -> list[str]:
    """The metrics beside the one the paper is built on, in METRICS' order."""
    return [m for m in METRICS if m != metric]


def unavailable(runs: pd.DataFrame, metric: str) -> str | None:
    """Why ``runs`` cannot be fitted on ``metric`` ("no COLUMN": a table collected before it was recorded, or a
    task that has none, as ridge regression has no accuracy); None where they can."""
    column = "val_acc" if metric == "val_err" else metric
    completed = runs[runs["status"] == "completed"]
    if column not in runs.columns or completed.empty or completed[column].isna().all():
        return f"no {column}"
    return None


def fit_metric(runs: pd.DataFrame, metric: str) -> dict:
    """coef* per point and the exponents (those of the learning rate tuned per point too) on ``metric``."""
    stars = coef_star_table(runs, metric, list(fitted_groups(runs, metric)))
    tuned = tuned_lr_stars(stars, joint_lr_table(stars))
    exponents = exponent_table(stars)
    if len(tuned):
        exponents = pd.concat([exponents, exponent_table(tuned)], ignore_index=True)
    return {"coef_star": stars, "tuned": tuned, "exponents": exponents}


def fit_others(runs: pd.DataFrame, metric: str) -> dict[str, dict | str]:
    """Per other metric: its fit (``fit_metric``), or why there is none (``unavailable``)."""
    return {m: unavailable(runs, m) or fit_metric(runs, m) for m in other_metrics(metric)}


def kept_calibrations(results: Path, measured: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame | None]:
    """Each metric's measured coverage: ``measured`` (the build's own calibration) for the final loss, and
    results/calibration/METRIC.csv for the others (None where none is kept)."""
    out = {}
    for m in METRICS:
        path = Path(results) / CALIBRATIONS / f"{m}.csv"
        out[m] = measured if m == "val_loss" else pd.read_csv(path) if path.is_file() else None
    return out


def calibrated(table: pd.DataFrame | None, tuned: bool = False) -> bool:
    """Whether the intervals an exponent rests on were measured to cover within the goal: coef* per width and
    the exponent against width (the tuned lr's: the joint optimum's coef* and exponent)."""
    if table is None:
        return False
    coverage = table.set_index("quantity")["coverage"]
    needed = JOINT if tuned else (PER_POINT, EXPONENT)
    return all(q in coverage.index and GOAL[0] <= coverage[q] <= GOAL[1] for q in needed)


def _cell(e: pd.Series, axis_range: tuple | None, mark: bool) -> str:
    """An exponent, its interval and verdict; the range it was fitted over where it is not ``axis_range`` (the
    final loss's row), and "k of n" where some of the setting's optima were left out."""
    notes = []
    if axis_range is None or not np.allclose((e["axis_min"], e["axis_max"]), axis_range):
        notes.append(f"{e['axis_min']:g}–{e['axis_max']:g}")
    k, n = int(e["n_points"]), int(e["n_points"] + e["n_left_out"])
    if k < n:
        notes.append(f"{k} of {n}")
    note = f" ({', '.join(notes)})" if notes else ""
    return f"{e['exponent']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}] {e['verdict']}{UNCALIBRATED * mark}{note}"


def _bounded(fit: dict, setting: str) -> str:
    """ "none fitted (k of n bounded)" for a setting without an exponent on this metric."""
    optima = fit["coef_star"][fit["coef_star"]["setting"] == setting]
    if optima.empty:
        optima = fit["tuned"][fit["tuned"]["setting"] == setting] if len(fit["tuned"]) else optima
    return f"none fitted ({(optima['status'] == 'ok').sum()} of {len(optima)} bounded)"


def metric_cells(
    rows: list[dict], others: dict[str, dict[str, dict | str]], calibrations: dict[str, pd.DataFrame | None]
) -> list[dict]:
    """``answer.answer_rows``' rows, each with row['metrics'] = {metric: cell}: λ*_sum's exponent on that metric
    for the row's setting and axis ("–" where the metric has none for the experiment, saying why). A row
    without an exponent on the paper's metric lists the metric's per axis; an axis only the metric fitted
    joins the setting's first row."""
    first = {}
    for i, row in enumerate(rows):
        first.setdefault((row["experiment"], row["setting"]), i)
    shown = {(r["experiment"], r["setting"], r["axis"][0]) for r in rows if r["axis"] is not None}
    out = []
    for i, row in enumerate(rows):
        cells = {}
        for metric, fit in others[row["experiment"]].items():
            if isinstance(fit, str):
                cells[metric] = f"– ({fit})"
                continue
            e = fit["exponents"]
            mine = e[
                (e["setting"] == row["setting"]) & (e["norm"] == "sum") & np.isfinite(pd.to_numeric(e["exponent"]))
            ]
            mark = not calibrated(calibrations.get(metric), tuned=row["setting"] == TUNED)
            parts = []
            if row["axis"] is not None:
                here = mine[mine["axis"] == row["axis"][0]]
                parts = [_cell(here.iloc[0], row["axis"][1:], mark)] if len(here) else [_bounded(fit, row["setting"])]
            if first[(row["experiment"], row["setting"])] == i:  # axes the paper's metric has no row for
                extra = mine[
                    np.array([(row["experiment"], row["setting"], a) not in shown for a in mine["axis"]], bool)
                ]
                parts += [f"{a}: {_cell(r, None, mark)}" for a, r in zip(extra["axis"], extra.to_dict("records"))]
            cells[metric] = "; ".join(parts) or _bounded(fit, row["setting"])
        out.append({**row, "metrics": cells})
    return out


def metric_numbers(others: dict[str, dict | str]) -> dict[str, str]:
    """An experiment's numbers on the other metrics, keyed METRIC:KEY as the paper's metric's KEY is
    (``\\result{NAME:best_val_loss:e:SETTING:sum:AXIS}``): per setting, normalisation and axis the exponent with
    its interval, the verdict and the range it speaks for; per setting the optima bounded."""
    numbers = {}
    for metric, fit in others.items():
        if isinstance(fit, str):
            continue
        for setting, optima in pd.concat([fit["coef_star"], fit["tuned"]]).groupby("setting"):
            numbers[f"{metric}:bounded:{setting}"] = f"{(optima['status'] == 'ok').sum()} of {len(optima)}"
        for _, e in fit["exponents"].iterrows():
            if np.isfinite(pd.to_numeric(e["exponent"])):
                key = f"{e['setting']}:{e['norm']}:{e['axis']}"
                numbers[f"{metric}:e:{key}"] = f"{e['exponent']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"
                numbers[f"{metric}:verdict:{key}"] = e["verdict"]
                numbers[f"{metric}:span:{e['setting']}:{e['axis']}"] = f"{e['axis_min']:g}–{e['axis_max']:g}"
    return numbers


MACROS = {
    PER_POINT: "Coef",
    EXPONENT: "Exponent",
    "gain over λ = 0": "Gain",
    "joint optimum: lr*": "JointLr",
    JOINT[0]: "JointCoef",
    JOINT[1]: "JointExponent",
}
METRIC_MACROS = {"best_val_loss": "Best", "val_err": "Err"}


def metric_calibration_numbers(calibrations: dict[str, pd.DataFrame | None]) -> dict[str, str]:
    """The other metrics' measured coverage as \\newcommand names (CoverageBestCoef, CoverageErrExponent, ...;
    the final loss's are numbers.global_numbers'), each with its Wilson interval (…Interval), and the sweeps
    each was measured on (CalibrationSweepsBest, ...)."""
    macros = {}
    for metric, name in METRIC_MACROS.items():
        table = calibrations.get(metric)
        if table is None:
            continue
        for _, r in table.iterrows():
            macro = f"Coverage{name}{MACROS[r['quantity']]}"
            macros[macro] = f"{r['coverage']:.3f}"
            macros[macro + "Interval"] = f"[{r['coverage_lo']:.3f}, {r['coverage_hi']:.3f}]"
        exponent = table[table["quantity"] == EXPONENT]
        if len(exponent):  # one exponent per planted sweep, reported or withheld
            macros[f"CalibrationSweeps{name}"] = f"{int(exponent['intervals'].iloc[0] + exponent['withheld'].iloc[0])}"
    return macros
