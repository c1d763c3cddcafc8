"""Every table the ``fit`` verb writes, fitted from one results table; ``figures`` and ``paper`` draw
from the same fits. The method is in docs/analysis.md."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.curvature import curvature_table
from analysis.fit import (
    closed_form_table,
    coef_star_table,
    consistency_table,
    exponent_table,
    fitted_groups,
    joint_lr_table,
    notes,
    prediction_table,
    tuned_lr_stars,
)
from analysis.flat import flat_cell_table
from analysis.table import read_table

FIT_FILES = ("coef_star", "exponents", "flat", "curvature", "predictions", "closed_form", "consistency", "joint_lr")


def analyse(table: str, metric: str) -> dict:
    """Every table ``fit`` writes, from a results table."""
    runs = read_table(table)
    fits = list(fitted_groups(runs, metric))  # each (setting, width) is fitted once, for tables and figures
    stars = coef_star_table(runs, metric, fits)
    joint = joint_lr_table(stars)
    tuned = tuned_lr_stars(stars, joint)
    exponents = exponent_table(stars)
    curvature = curvature_table(stars)
    if len(tuned):  # λ* at the learning rate tuned per point: a setting of its own
        exponents = pd.concat([exponents, exponent_table(tuned)], ignore_index=True)
        curvature = pd.concat([curvature, curvature_table(tuned)], ignore_index=True)
    return {
        "runs": runs,
        "fits": fits,
        "coef_star": stars,
        "tuned": tuned,
        "exponents": exponents,
        "flat": flat_cell_table(stars, exponents),
        "curvature": curvature,
        "predictions": prediction_table(runs, exponents),
        "closed_form": closed_form_table(runs, stars),
        "consistency": consistency_table(runs, metric),
        "joint_lr": joint,
        "notes": notes(runs, stars),
    }


def write_fit_tables(fit: dict, out: Path) -> None:
    """``fit``'s tables as OUT/NAME.csv, one per name in FIT_FILES."""
    out.mkdir(parents=True, exist_ok=True)
    for name in FIT_FILES:
        fit[name].to_csv(out / f"{name}.csv", index=False)
