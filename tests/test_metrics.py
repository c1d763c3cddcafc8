"""The answer on every metric (analysis/metrics.py): the best-epoch loss's and the error rate's columns of the
answer table (Markdown and LaTeX) on a small planted table, their marks and reasons, and their numbers."""

import re

import numpy as np
import pandas as pd
import pytest

from analysis.answer import answer_md, answer_rows, answer_tex
from analysis.metrics import (
    calibrated,
    fit_others,
    metric_calibration_numbers,
    metric_cells,
    metric_numbers,
    unavailable,
)
from analysis.numbers import experiment_numbers
from analysis.pipeline import analyse
from analysis.planted import MetricScenario, Scenario, planted

from helpers import QUIET, write_csv

METRICS = MetricScenario(best_shift=-0.2, best_slope=0.3, err_shift=0.1, err_slope=-0.2, n_val=4096)
QUANTITIES = ["log10 coef* per width", "gain over λ = 0", "exponent against width"]
JOINT = ["joint optimum: exponent against width", "joint optimum: lr*", "joint optimum: coef*"]


def _calibration(coverage, joint=0.95):
    """A calibrate table: ``coverage`` for the per-setting quantities, ``joint`` for the joint optimum's."""
    return pd.DataFrame(
        {
            "quantity": QUANTITIES + JOINT,
            "intervals": 190,
            "withheld": 10,
            "coverage": [coverage] * 3 + [joint] * 3,
            "coverage_lo": 0.9,
            "coverage_hi": 0.97,
            "median_width": 0.5,
        }
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A planted two-lr sweep with every metric, fitted on the final loss, and its fits on the others."""
    scenario = Scenario(lrs=(0.01, 0.1), lr_shift=0.5, widths=(4, 8, 16, 32, 64), seeds=3, **QUIET)
    table, truth = planted(scenario, np.random.default_rng(0), metrics=METRICS)
    fit = analyse(write_csv(table, tmp_path_factory.mktemp("metrics") / "planted.csv"), "val_loss")
    return table, fit, fit_others(fit["runs"], "val_loss")


def test_the_answer_has_the_other_metrics_sum_exponent_beside_the_final_losses(fitted):
    _, fit, others = fitted
    calibrations = {"val_loss": _calibration(0.94), "best_val_loss": _calibration(0.93), "val_err": _calibration(0.85)}
    rows = metric_cells(answer_rows({"planted": fit}), {"planted": others}, calibrations)
    markdown = answer_md(rows)
    header = markdown.splitlines()[0].split(" | ")
    assert header[6:8] == ["λ*_sum, best-epoch loss", "λ*_sum, error rate"] and len(header) == 9
    by_setting = {line.split(" | ")[1]: line.split(" | ") for line in markdown.splitlines()[2:] if "| width" in line}
    for metric, column in (("best_val_loss", 6), ("val_err", 7)):
        e = others[metric]["exponents"].set_index(["setting", "norm", "axis"])
        for setting in ("optim.lr=0.01", "optim.lr=0.1"):
            sum_ = e.loc[(setting, "sum", "width")]
            cell = by_setting[setting][column]
            expected = f"{sum_['exponent']:.2f} [{sum_['lo']:.2f}, {sum_['hi']:.2f}] {sum_['verdict']}"
            assert cell.startswith(expected.replace("-", "−")), (metric, setting, cell)
            assert ("§" in cell) == (metric == "val_err")  # the error rate's coverage: off the goal
    assert "§: that metric's coverage not measured within the goal" in markdown.splitlines()[-1]
    tex = answer_tex(rows)
    assert r"$\lambda^*_\text{sum}$, best-epoch loss & $\lambda^*_\text{sum}$, error rate" in tex
    assert r"$^\S$" in tex and "§" not in tex
    body = [line for line in tex.splitlines() if line.startswith(r"\quad")]
    assert len(body) == 3 and all(line.count(" & ") == 7 for line in body)  # setting, axis, 3 + 2 exponents, near
    assert r"\multicolumn{8}{l}{\textit{planted}}" in tex  # the experiment's heading spans the new columns too


def test_a_table_without_best_epoch_losses_shows_a_dash_and_why(fitted):
    table, fit, _ = fitted
    older = table.drop(columns="best_val_loss")
    others = fit_others(older, "val_loss")
    assert others["best_val_loss"] == "no best_val_loss" and isinstance(others["val_err"], dict)
    rows = metric_cells(answer_rows({"planted": fit}), {"planted": others}, {})
    assert all(row["metrics"]["best_val_loss"] == "– (no best_val_loss)" for row in rows)
    assert all(row["metrics"]["val_err"].endswith("§") or "§" in row["metrics"]["val_err"] for row in rows)
    assert "| – (no best_val_loss) |" in answer_md(rows) and "-- (no best\\_val\\_loss)" in answer_tex(rows)
    ridge = table.assign(val_acc=np.nan)  # a regression: no accuracy
    assert unavailable(ridge, "val_err") == "no val_acc" and unavailable(ridge, "best_val_loss") is None
    assert "metrics" not in answer_rows({"planted": fit})[0] and "best-epoch" not in answer_md(
        answer_rows({"planted": fit})
    )


def test_a_metric_is_calibrated_only_where_its_coverage_was_measured_within_the_goal():
    assert calibrated(_calibration(0.93)) and not calibrated(_calibration(0.995)) and not calibrated(None)
    assert calibrated(_calibration(0.93, joint=0.94), tuned=True) and not calibrated(_calibration(0.93, 1.0), True)
    lacking = _calibration(0.93)[lambda t: t["quantity"] != "exponent against width"]
    assert not calibrated(lacking)


def test_the_other_metrics_numbers_are_keyed_as_the_final_losses(fitted):
    _, _, others = fitted
    numbers = metric_numbers(others)
    e = others["val_err"]["exponents"].set_index(["setting", "norm", "axis"]).loc[("optim.lr=0.1", "sum", "width")]
    assert numbers["val_err:e:optim.lr=0.1:sum:width"] == f"{e['exponent']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"
    assert numbers["val_err:verdict:optim.lr=0.1:sum:width"] == e["verdict"]
    assert re.fullmatch(r"\d+ of 5", numbers["best_val_loss:bounded:optim.lr=0.01"])
    assert "best_val_loss:e:optim.lr=0.01:mean:width" in numbers
    macros = metric_calibration_numbers({"best_val_loss": _calibration(0.93), "val_err": None})
    assert macros["CoverageBestCoef"] == "0.930" and macros["CoverageBestJointExponent"] == "0.950"
    assert macros["CalibrationSweepsBest"] == "200" and not any(k.startswith("CoverageErr") for k in macros)


def test_each_points_gain_over_no_decay_is_quoted_in_its_noise_and_over_all_widths(fitted):
    _, fit, _ = fitted
    numbers = experiment_numbers(fit)
    points = fit["coef_star"][fit["coef_star"]["setting"] == "optim.lr=0.1"]
    ratios = (points["gain"] / points["sigma"]).to_numpy()
    assert len(points) == 5 and np.ptp(ratios) > 0.01  # the range below has two distinct ends
    for width, ratio in zip(points["width"], ratios):
        assert numbers[f"gainsigma:optim.lr=0.1:{width:g}"] == f"{ratio:.2f}"
    assert numbers["gainsigmas:optim.lr=0.1"] == f"{ratios.min():.2f} to {ratios.max():.2f}"
    upper = points["gain_hi"].to_numpy()
    assert np.ptp(upper) > 0.01 and numbers["gainupper:optim.lr=0.1"] == f"{upper.max():.2f}"
