"""The answer table (analysis/answer.py): the range a verdict speaks for, the optima left out, the bootstrap's
mark, and the coefs near-optimal at every point."""

import numpy as np
import pandas as pd

from analysis.answer import answer_md, answer_rows, answer_tex, near_everywhere
from analysis.fit import FittedPoint, PointKey, exponent_table
from analysis.flat import flat_cell_table

from helpers import stars_table


def test_the_answer_names_the_range_its_verdict_speaks_for_and_the_optima_left_out():
    widths = np.array([4, 8, 16, 32, 64])
    stars = stars_table(widths, 10 ** (-2 + 0.3 * np.log10(widths)), coef_near_lo=1e-3, coef_near_hi=1e-1)
    stars.loc[5] = stars.loc[0].copy()
    stars.loc[5, ["width", "status"]] = [128, "open"]
    fit = {
        "exponents": exponent_table(stars),
        "flat": flat_cell_table(stars.assign(gain_lo=0.1), exponent_table(stars)),
        "coef_star": stars,
        "tuned": pd.DataFrame(columns=["setting"]),
        "fits": [
            FittedPoint(PointKey("all", w, 1437, 64), pd.DataFrame({"coef": [1e-4, 1.0]}), None) for w in stars["width"]
        ],
    }
    markdown = answer_md(answer_rows({"planted": fit}))
    assert "| planted | all | width 4–64 (5 of 6 optima) | 0.30 [" in markdown
    narrow_widths = np.array([10, 16, 24])  # 2.4x: no verdict, however clear the slope
    narrow = exponent_table(stars_table(narrow_widths, 10 ** (-2 - 0.3 * np.log10(narrow_widths)))).set_index("norm")
    assert narrow.loc["sum", "verdict"] == "too short" and np.isfinite(narrow.loc["sum", "exponent"])
    stars.loc[5, "status"] = "ok"  # every optimum fitted: the range alone
    fit["exponents"] = exponent_table(stars)
    assert "| planted | all | width 4–128 | " in answer_md(answer_rows({"planted": fit}))
    # a verdict the seed bootstrap's check changes is marked, in that normalisation only
    e = fit["exponents"].set_index("norm")
    other = next(v for v in ("still", "moves") if v != e.loc["sum", "verdict"])
    boot = pd.DataFrame(
        [
            {
                "setting": "all",
                "norm": n,
                "axis": "width",
                "verdict": e.loc[n, "verdict"],
                "robust_verdict": {"sum": other, "mean": e.loc[n, "verdict"], "per_step": ""}[n],
            }
            for n in ("sum", "mean", "per_step")
        ]
    )
    marked = answer_md(answer_rows({"planted": fit}, {"planted": boot})).splitlines()[-1].split(" | ")
    assert marked[3].endswith(f"{e.loc['sum', 'verdict']}†") and "†" not in marked[4] + marked[5]
    assert e.loc["sum", "verdict"] + r"$^\dagger$" in answer_tex(answer_rows({"planted": fit}, {"planted": boot}))


def test_near_optimal_at_every_point_is_the_intersection_and_says_where_a_grid_end_binds():
    def points(*ranges):
        return pd.DataFrame(
            [
                {"setting": "all", "width": w, "n_train": 100, "batch_size": 10, "coef_near_lo": lo, "coef_near_hi": hi}
                for w, (lo, hi) in enumerate(ranges)
            ]
        )

    ends = {("all", w, 100, 10): (1e-4, 1.0) for w in range(3)}
    assert near_everywhere(points((1e-3, 0.1), (3e-3, 0.05), (2e-3, 0.2)), ends) == "0.003–0.05"
    assert near_everywhere(points((1e-4, 0.1), (1e-4, 0.05)), ends) == "≤0.05"  # both run off the low end
    assert near_everywhere(points((1e-4, 0.1), (1e-3, 0.05)), ends) == "0.001–0.05"  # the binding one does not
    assert near_everywhere(points((1e-3, 1.0), (1e-4, 1.0)), ends) == "≥0.001"
    assert near_everywhere(points((1e-4, 1.0)), ends) == "whole grid"
    assert near_everywhere(points((1e-3, 0.01), (0.1, 0.5)), ends) == "none"
    assert near_everywhere(points((1e-3, 0.1), (np.nan, np.nan)), ends) == "–"  # a point without a range
    assert near_everywhere(points(), ends) == "–"


def test_a_verdict_that_changes_without_its_flat_cells_is_marked_and_one_that_does_not_is_not():
    widths = np.array([4, 8, 16, 32])
    stars = stars_table(
        widths, np.full(4, 0.01), se=0.02, gain_lo=[-0.01, 0.1, 0.1, 0.1], coef_near_lo=1e-3, coef_near_hi=0.1
    )  # width 4 flat
    e = exponent_table(stars)
    flat = flat_cell_table(stars, e).set_index("norm")
    assert flat.loc["sum", "flat"] == "width 4" and flat.loc["sum", "verdict"] == "still"
    assert flat.loc["sum", "verdict_without"] == "still"  # 8-32 is still 4x: it does not rest on width 4
    fit = {
        "exponents": e,
        "flat": flat.reset_index(),
        "coef_star": stars,
        "tuned": pd.DataFrame(columns=["setting"]),
        "fits": [FittedPoint(PointKey("all", w, 1437, 64), pd.DataFrame({"coef": [1e-4, 1.0]}), None) for w in widths],
    }
    assert "‡" not in answer_md(answer_rows({"planted": fit}))
    short = stars[stars["width"] <= 16]  # 4-16: without width 4, two points are left: no fit
    fit.update(exponents=exponent_table(short), flat=flat_cell_table(short, exponent_table(short)), coef_star=short)
    assert flat_cell_table(short, exponent_table(short)).set_index("norm").loc["sum", "verdict_without"] == "not fitted"
    cells = answer_md(answer_rows({"planted": fit})).splitlines()[-1].split(" | ")
    assert cells[3].endswith("still‡") and cells[4].endswith("moves‡")  # no fit is left without it, in any norm
    assert r"still$^\ddagger$" in answer_tex(answer_rows({"planted": fit}))
    assert flat_cell_table(short.assign(gain_lo=0.1), exponent_table(short)).empty  # no flat cell, no row
