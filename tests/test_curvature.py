"""The curvature test (analysis/curvature.py): q and the end slopes on exact and planted bent laws, a straight
ridge-like law, too few points, its calibration (``calibrate --curvature``) and its place in ``fit``."""

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main as analysis_main
from analysis.calibrate import CURVATURE_RATES, curvature_coverage, goal_met
from analysis.curvature import MIN_VALUES, curvature_table
from analysis.fit import coef_star_table
from analysis.planted import Scenario, planted

from helpers import QUIET, planted_table, stars_table, write_csv

WIDTHS = (2, 4, 6, 8, 12, 16, 32)  # teacher_width's


def bent_stars(q: float, alpha: float = 0.8, widths=WIDTHS, se=0.05) -> pd.DataFrame:
    u = np.log10(widths)
    return stars_table(list(widths), 10 ** (-2 + alpha * u + q * (u - u.mean()) ** 2), se=se)


def test_q_and_the_end_slopes_are_exact_on_an_exact_bent_law():
    row = curvature_table(bent_stars(-0.3)).set_index("axis").loc["width"]
    u = np.log10(WIDTHS)
    assert row["q"] == pytest.approx(-0.3, abs=1e-9)
    assert row["slope_low"] == pytest.approx(0.8 - 0.6 * (u[0] - u.mean()), abs=1e-9)  # a + 2q·z at each end
    assert row["slope_high"] == pytest.approx(0.8 - 0.6 * (u[-1] - u.mean()), abs=1e-9)
    assert row["change"] == pytest.approx(-0.6 * np.log10(16), abs=1e-9)
    assert row["margin"] == pytest.approx(np.log10(1.5) / np.log10(16))
    assert (row["n_points"], row["n_values"], row["dof"]) == (7, 7, 4)


def test_a_bend_planted_on_quiet_sweeps_is_recovered_and_called_bends():
    table, truth = planted_table(alpha=0.5, bend=-0.3, widths=(4, 8, 16, 32, 64, 128), **QUIET)
    row = curvature_table(coef_star_table(table)).set_index("axis").loc["width"]
    assert row["q_lo"] <= -0.3 <= row["q_hi"] and abs(row["q"] + 0.3) < 0.1
    assert row["verdict"] == "bends"
    for end, width in (("low", 4), ("high", 128)):  # the local slope α + 2q·(log10 w − centre) at each end
        slope = 0.5 - 0.6 * (np.log10(width) - truth["centre"])
        assert row[f"slope_{end}_lo"] <= slope <= row[f"slope_{end}_hi"]


def test_a_bend_draws_nothing_so_a_straight_scenario_keeps_its_stream():
    straight, s_truth = planted(Scenario(**QUIET), np.random.default_rng(0))
    bent, b_truth = planted(Scenario(bend=0.3, **QUIET), np.random.default_rng(0))
    for key, x in s_truth["x"].items():
        assert b_truth["x"][key] - x == pytest.approx(0.3 * (np.log10(key[1]) - s_truth["centre"]) ** 2, abs=1e-12)
    assert np.allclose(straight["val_loss"], bent["val_loss"], equal_nan=True, atol=1e-9)  # the same draws
    assert not np.allclose(straight["coef"], bent["coef"])  # on grids that moved with the optimum


def test_a_straight_ridge_like_law_is_called_straight_in_both_axes():
    """coef* = d·σ²/(n·r²) exactly, as ridge's closed form, over 16× of width and 8× of N_train (full batch)."""
    rng = np.random.default_rng(0)
    grid = pd.DataFrame(
        [(w, n) for w in (64, 128, 256, 512, 1024) for n in (2048, 4096, 8192, 16384)], columns=["width", "n_train"]
    )
    stars = stars_table(grid["width"].tolist(), grid["width"] / grid["n_train"] * 10 ** rng.normal(0, 0.01, len(grid)))
    stars["se"], stars["n_train"], stars["batch_size"] = 0.01, grid["n_train"], grid["n_train"]
    rows = curvature_table(stars).set_index("axis")
    assert list(rows.index) == ["width", "n_train"]  # B moves with N_train: not an axis of its own
    assert (rows["verdict"] == "straight").all(), rows[["q", "change_lo90", "change_hi90", "margin"]]
    assert rows.loc["width", "other_axes"] == "n_train" and rows.loc["n_train", "other_axes"] == "width"
    assert rows.loc["n_train", "slope_low_lo"] < -1 < rows.loc["n_train", "slope_low_hi"]


def test_too_few_points_is_a_row_saying_so_not_an_error():
    stars = pd.concat(
        [
            bent_stars(0.0, widths=(4, 8, 16)).assign(setting="three widths"),
            bent_stars(0.0).assign(setting="open points", status=["ok", "open", "ok", "open", "ok", "ok", "edge"]),
            bent_stars(0.0, widths=(4, 8, 16, 32)).assign(setting="four widths"),
        ]
    )
    rows = curvature_table(stars).set_index("setting")
    assert rows.loc["three widths", "verdict"] == f"too few points (3 bounded values of width; needs {MIN_VALUES})"
    assert rows.loc["open points", "n_values"] == 4 and np.isfinite(rows.loc["open points", "q"])  # 4 bounded
    assert rows.loc["four widths", "dof"] == 1 and not rows.loc["four widths", "verdict"].startswith("too few")
    one = curvature_table(bent_stars(0.0).assign(status=["ok"] + ["open"] * 6)).iloc[0]
    assert one["verdict"] == f"too few points (1 bounded value of width; needs {MIN_VALUES})"


def test_the_calibration_covers_near_nominal_and_rarely_calls_a_straight_law_bent():
    """A fast version of ``calibrate --curvature`` (the full run, docs/analysis.md#curvature, is held to
    [0.90, 0.99])."""
    table = curvature_coverage(20, seed=3).set_index("quantity")
    intervals = table[~table.index.str.startswith(CURVATURE_RATES)]
    assert len(intervals) == 8 and intervals["intervals"].min() >= 15
    assert intervals["coverage"].between(0.8, 1.0).all(), intervals
    for sweeps in ("realistic", "quiet"):
        assert table.loc[f"'bends' said, straight laws, {sweeps} sweeps", "coverage"] <= 0.2
        assert table.loc[f"'straight' said, bent laws, {sweeps} sweeps", "coverage"] == 0.0


def test_calibrate_curvature_and_fit_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "curvature_calibration.csv"
    with pytest.raises(SystemExit) as exit_:  # one sweep of each kind cannot meet a coverage goal
        analysis_main(["calibrate", "--curvature", "--replicates", "1", "--out", str(out)])
    assert exit_.value.code == 1
    table = pd.read_csv(out)
    assert len(table) == 16 and (table["intervals"] + table["withheld"]).isin([1, 2]).all()
    assert not goal_met(table, curvature=True) and "runtime:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["calibrate", "--curvature", "--bootstrap"])
    assert exit_.value.code == 2 and "one calibration at a time" in capsys.readouterr().err
    table, _ = planted_table(alpha=0.5, bend=-0.3, widths=(4, 8, 16, 32, 64, 128), **QUIET)
    analysis_main(["fit", write_csv(table, tmp_path / "results.csv"), "--out", str(tmp_path / "fit")])
    assert "curvature of coef*" in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "fit" / "curvature.csv")
    assert list(written["axis"]) == ["width"] and written["verdict"].iloc[0] == "bends"
