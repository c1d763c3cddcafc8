"""Verdicts that rest on a flat cell: a fitted point whose gain over λ = 0 is not shown (its 95% interval
reaches 0), so that its coef* is the lowest point of a basin the runs cannot tell from flat. Where an
exponent's points include such cells, it is fitted again without them; a verdict that then changes (or
cannot be given) rests on them. Why: docs/analysis.md#verdicts-that-rest-on-a-flat-cell."""

from __future__ import annotations

import pandas as pd

from analysis.fit import AXES, exponent_table

FLAT_COLUMNS = ["setting", "norm", "axis", "flat", "n_flat", "verdict", "verdict_without", "exponent_without"]


def is_flat(stars: pd.DataFrame) -> pd.Series:
    """Per point: bounded, and λ = 0 runs do not lose to it at 95% (no baseline: not judged)."""
    return (stars["status"] == "ok") & (stars["gain_lo"] <= 0)


def _label(points: pd.DataFrame, axis: str) -> str:
    """The flat points by their axis values, e.g. "width 2, 4"; every varying axis where several vary."""
    axes = [a for a in AXES if points[a].nunique() > 1] or [axis]
    return "; ".join(", ".join(f"{a} {r[a]:g}" for a in axes) for _, r in points.iterrows())


def flat_cell_table(stars: pd.DataFrame, exponents: pd.DataFrame) -> pd.DataFrame:
    """Per fitted exponent whose points include flat cells: which, its verdict, and the verdict (and
    exponent) fitted without them ("not fitted" where too few points are left)."""
    flat = stars[is_flat(stars)]
    fitted = exponents.dropna(subset=["exponent"])
    rows = []
    for setting, cells in flat.groupby("setting", sort=True):
        mine = fitted[fitted["setting"] == setting]
        if mine.empty:
            continue
        without = exponent_table(stars[(stars["setting"] == setting) & ~is_flat(stars)]).dropna(subset=["exponent"])
        without = without.set_index(["norm", "axis"])
        for _, e in mine.iterrows():
            key = (e["norm"], e["axis"])
            again = without.loc[key] if key in without.index else None
            rows.append(
                {
                    "setting": setting,
                    "norm": e["norm"],
                    "axis": e["axis"],
                    "flat": _label(cells, e["axis"]),
                    "n_flat": len(cells),
                    "verdict": e["verdict"],
                    "verdict_without": "not fitted" if again is None else again["verdict"],
                    "exponent_without": float("nan") if again is None else again["exponent"],
                }
            )
    return pd.DataFrame(rows, columns=FLAT_COLUMNS)


def rests_on_flat(flat: pd.DataFrame) -> pd.Series:
    """Per row of a ``flat_cell_table``: the verdict changes without the flat cells."""
    return flat["verdict_without"] != flat["verdict"]
