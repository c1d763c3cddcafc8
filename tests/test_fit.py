"""Settings, pooled coef*, λ* per normalisation, exponents, the joint (η, λ) optimum, predictions and notes
(analysis/fit.py), on planted tables with a known answer and hand-written coef* tables."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.fit import (
    LR,
    _split_normal,
    coef_star_table,
    consistency_table,
    exponent_table,
    fitted_groups,
    joint_lr_table,
    notes,
    prediction_table,
    setting_fields,
    tuned_lr_stars,
)
from analysis.planted import BATCH, N_TRAIN, Scenario, n_decayed
from analysis.scaling import MARGIN, meta_regression
from analysis.table import AnalysisError
from wdbench.penalty import norm_factor

from helpers import QUIET, planted_table, stars_table


def test_one_coef_star_per_width_pools_normalisations_run_on_different_grids():
    df, truth = planted_table(**QUIET)
    # each normalisation on its own grid (every third coef), λ in that normalisation
    position = df.groupby(["width", "seed"]).cumcount()
    df["norm"] = position.map(lambda i: ("sum", "mean", "per_step")[i % 3])
    df["lam"] = df["coef"] / df.apply(
        lambda r: norm_factor(r["norm"], n_decayed=r["n_decayed"], batch_size=BATCH, n_train=N_TRAIN), axis=1
    )
    assert df.groupby("norm")["coef"].apply(set).pipe(lambda g: not (g["sum"] & g["mean"] - {0.0}))
    stars = coef_star_table(df)
    assert len(stars) == len(Scenario().widths) and (stars["status"] == "ok").all()
    for _, s in stars.iterrows():
        assert np.log10(s["coef_lo"]) <= truth["x"][(0.05, s["width"])] <= np.log10(s["coef_hi"])
        assert s["lam_star_sum"] == s["coef_star"]
        assert s["lam_star_mean"] == pytest.approx(s["coef_star"] * n_decayed(s["width"]), rel=1e-12)
        assert s["lam_star_per_step"] == pytest.approx(s["coef_star"] * N_TRAIN / BATCH, rel=1e-12)
    exps = exponent_table(stars).set_index(["norm", "axis"])
    assert exps.loc[("sum", "width"), "exponent"] == exps.loc[("coef", "width"), "exponent"]
    assert exps.loc[("mean", "width"), "exponent"] - exps.loc[("sum", "width"), "exponent"] == pytest.approx(2.0)


def test_two_learning_rates_are_two_settings_never_one_average():
    df, truth = planted_table(lrs=(0.01, 0.1), lr_shift=2.0, log10_c0=-3.5, **QUIET)  # λ* 100x apart
    assert setting_fields(df) == ["config.optim.lr"]
    stars = coef_star_table(df)
    assert sorted(stars["setting"].unique()) == ["optim.lr=0.01", "optim.lr=0.1"]
    ok = stars[stars["status"] == "ok"]
    assert len(ok) >= 10
    for _, s in ok.iterrows():
        assert abs(np.log10(s["coef_star"]) - truth["x"][(s["config.optim.lr"], s["width"])]) < 0.3
    joint = joint_lr_table(stars)
    assert len(joint) >= 4 and set(joint["lr_star"]) <= {0.01, 0.1}
    assert (joint["coef_lo"] <= joint["coef_star"]).all() and (joint["coef_star"] <= joint["coef_hi"]).all()


def test_planted_exponent_is_recovered_and_the_verdicts_follow_it():
    still, _ = planted_table(alpha=0.0, **QUIET)
    moving, _ = planted_table(alpha=1.0, **QUIET)
    e_still = exponent_table(coef_star_table(still)).set_index(["norm", "axis"])
    e_moving = exponent_table(coef_star_table(moving)).set_index(["norm", "axis"])
    assert e_still.loc[("sum", "width"), "lo"] <= 0.0 <= e_still.loc[("sum", "width"), "hi"]
    assert e_still.loc[("sum", "width"), "verdict"] == "still"
    assert e_still.loc[("mean", "width"), "verdict"] == "moves"  # λ*_mean ∝ N ∝ width²
    assert e_moving.loc[("sum", "width"), "lo"] <= 1.0 <= e_moving.loc[("sum", "width"), "hi"]
    assert e_moving.loc[("sum", "width"), "verdict"] == "moves"


def test_runs_of_one_coef_and_seed_in_two_normalisations_must_agree():
    df, _ = planted_table(norms=("sum",), **QUIET)
    twin = df.iloc[[5]].assign(norm="mean")
    assert consistency_table(pd.concat([df, twin]))["agree"].all()
    bad = consistency_table(pd.concat([df, twin.assign(val_loss=twin["val_loss"] + 0.1)]))
    assert len(bad) == 1 and not bad["agree"].iloc[0] and bad["spread"].iloc[0] == pytest.approx(0.1)
    rerun = consistency_table(pd.concat([df, df.iloc[[7]].assign(val_loss=df["val_loss"].iloc[7] + 0.1)]))
    assert len(rerun) == 1 and not rerun["agree"].iloc[0]  # a duplicate in one normalisation is checked too


def test_coefs_equal_but_for_the_last_bit_are_one_grid_point():
    df, _ = planted_table(**QUIET)
    nudged = df.assign(coef=[np.nextafter(c, 1.0) if s % 2 and c > 0 else c for c, s in zip(df["coef"], df["seed"])])
    exact, near = coef_star_table(df), coef_star_table(nudged)
    assert (near["n_coefs"] == exact["n_coefs"]).all() and np.allclose(near["coef_star"], exact["coef_star"])


def test_margin_is_the_range_of_the_fitted_widths_and_gain_covers_its_truth():
    df, truth = planted_table(**QUIET)
    stars = coef_star_table(df[~((df["width"] == 128) & (df["coef"] > 0))])  # widest: λ = 0 runs only
    assert stars.set_index("width").loc[128, "status"] == "no_runs"
    e = exponent_table(stars).set_index(["norm", "axis"]).loc[("sum", "width")]
    assert e["n_points"] == 5 and e["margin"] == pytest.approx(np.log10(MARGIN) / np.log10(64 / 4))
    assert (e["axis_min"], e["axis_max"], e["n_left_out"]) == (4, 64, 1)
    ok = stars[stars["status"] == "ok"]
    hits = [lo <= truth["gain"][(0.05, w)] <= hi for w, lo, hi in zip(ok["width"], ok["gain_lo"], ok["gain_hi"])]
    assert sum(hits) >= len(hits) - 1 and (ok["gain_hi"] - ok["gain_lo"] < 0.05).all()


def test_batch_size_as_a_second_axis_places_per_step_on_it():
    """coef* ∝ B (planted): along B, per-step's λ* = coef*·N_train/B stays still, sum's moves."""
    small, _ = planted_table(**QUIET)
    large = small.assign(batch_size=4 * BATCH, coef=small["coef"] * 4)
    large["config.optim.batch_size"] = 4 * BATCH
    large["lam"] = large["coef"]  # named in sum
    large["norm"] = large["config.penalty.norm"] = "sum"
    stars = coef_star_table(pd.concat([small.assign(norm="sum", lam=small["coef"]), large]))
    assert stars["setting"].unique().tolist() == ["all"] and sorted(stars["batch_size"].unique()) == [BATCH, 4 * BATCH]
    e = exponent_table(stars).set_index(["norm", "axis"])
    assert e.loc[("coef", "batch_size"), "lo"] <= 1.0 <= e.loc[("coef", "batch_size"), "hi"]
    assert e.loc[("per_step", "batch_size"), "exponent"] == pytest.approx(e.loc[("coef", "batch_size"), "exponent"] - 1)
    assert (
        e.loc[("per_step", "batch_size"), "verdict"] == "still" and e.loc[("sum", "batch_size"), "verdict"] == "moves"
    )
    assert e.loc[("sum", "width"), "verdict"] == "still"


def test_exponent_table_fits_each_normalisation_and_places_mean_by_kappa():
    widths = np.array([4, 8, 16, 32, 64])
    wobble = np.array([0.02, -0.03, 0.01, 0.02, -0.02])
    stars = stars_table(widths, 10 ** (-2 + 0.3 * np.log10(widths) + wobble))
    stars.loc[5] = stars.loc[0].copy()
    stars.loc[5, ["width", "status"]] = [128, "open"]  # not fitted: outside the range the verdict speaks for
    table = exponent_table(stars).set_index("norm")
    slope = np.polyfit(np.log10(widths), -2 + 0.3 * np.log10(widths) + wobble, 1)[0]  # equal se: plain LS
    assert table.loc["coef", "exponent"] == pytest.approx(slope) and table.loc["sum", "exponent"] == pytest.approx(
        slope
    )
    assert table.loc["mean", "exponent"] == pytest.approx(slope + 2) and table.loc[
        "per_step", "exponent"
    ] == pytest.approx(slope)
    row = table.loc["coef"]
    assert (row["n_points"], row["n_left_out"], row["axis"], row["dof"]) == (5, 1, "width", 3)
    assert row["margin"] == pytest.approx(np.log10(1.5) / np.log10(16)) and (row["axis_min"], row["axis_max"]) == (
        4,
        64,
    )
    assert row["lo"] < row["lo90"] < row["exponent"] < row["hi90"] < row["hi"] and row["verdict"] == "moves"
    assert table.loc["mean", "log10_C"] == pytest.approx(table.loc["coef", "log10_C"] + np.log10(1000))
    flat = exponent_table(stars_table(widths, 10 ** (-2 + wobble / 10), se=0.01)).set_index("norm")
    assert flat.loc["sum", "verdict"] == "still" and flat.loc["mean", "verdict"] == "moves"
    two = exponent_table(stars_table(widths[:2], [0.01, 0.02]))
    assert two["verdict"].iloc[0].startswith("not fitted: an exponent fit needs more points (2)")
    assert two.iloc[0][["setting", "norm", "axis", "n_points"]].tolist() == ["all", "coef", "width", 2]
    fit = meta_regression(
        np.column_stack([np.ones(5), np.log10(widths)]),
        np.log10(stars["coef_star"].iloc[:5].to_numpy()),
        np.full(5, 0.05),
    )
    assert row["tau"] == pytest.approx(fit.tau) and row["exponent"] == pytest.approx(fit.estimate[1])
    assert exponent_table(stars_table([8], [0.01])).empty  # one width: nothing to fit


def test_joint_lr_picks_the_lowest_level_and_reads_its_interval_from_the_draws():
    lr = "config.optim.lr"
    stars = stars_table([8, 8, 8], [1e-3, 1e-2, 1e-1], **{lr: [0.01, 0.1, 1.0]})
    stars["value"], stars["value_se"] = [0.5, 0.2, 0.6], [1e-4, 1e-4, 1e-4]
    stars["coef_lo"], stars["coef_hi"] = stars["coef_star"] / 2, stars["coef_star"] * 4
    stars["status"] = ["ok", "ok", "open"]
    row = joint_lr_table(stars).iloc[0]
    assert (row["lr_star"], row["lr_lo"], row["lr_hi"], row["n_lrs"], row["value"]) == (0.1, 0.1, 0.1, 3, 0.2)
    assert row["coef_star"] == 1e-2
    # the winner's own interval, read back from 4000 split-normal draws (Monte Carlo error ~3%)
    assert row["coef_lo"] == pytest.approx(1e-2 / 2, rel=0.1) and row["coef_hi"] == pytest.approx(4e-2, rel=0.1)
    tied = stars.assign(value=[0.2, 0.2, 0.6], value_se=0.01)
    row = joint_lr_table(tied).iloc[0]
    assert (row["lr_lo"], row["lr_hi"]) == (0.01, 0.1)  # either lr wins half the draws
    open_wins = stars.assign(value=[0.5, 0.2, 0.1])
    row = joint_lr_table(open_wins).iloc[0]
    assert row["lr_star"] == 1.0 and np.isnan(row["coef_lo"]) and np.isnan(row["coef_hi"])
    assert joint_lr_table(stars.assign(**{lr: 0.1})).empty and joint_lr_table(stars.drop(columns=lr)).empty


def test_notes_say_what_a_reader_must_know_one_line_each():
    widths = np.array([4, 8, 16, 32, 64])
    stars = stars_table(
        widths,
        [1e-2] * 5,
        n_seeds=[5, 2, 3, 5, 5],
        elsewhere=[0.0, 0.25, 0.0, 0.0, 0.0],
        n_diverged_near=[0, 0, 1, 0, 0],
    )
    stars["status"] = ["ok", "edge", "open", "too_few", "no_runs"]
    runs = pd.DataFrame({"width": widths, "status": "completed", "config.model.width": widths})
    assert notes(runs, stars) == [
        "fewer than 3 seeds at 1 point(s) (e.g. width 8: 2): intervals are wide and rest on the model",
        "edge: 1 point(s), e.g. all width 8: the minimum is at the end of the grid (or next to diverged coefs): "
        "widen or refine the grid there",
        "open: 1 point(s), e.g. all width 16: the interval reaches the end of the grid (a flat basin): not fitted",
        "too_few: 1 point(s), e.g. all width 32: too few runs to fit the curve",
        "no_runs: 1 point(s), e.g. all width 64: no finite run at coef > 0 (only λ = 0, or every run diverged)",
        "κ = d log N_decayed / d log width = 2.000 (all): λ*_mean's exponent is coef*'s plus κ",
        "1 point(s) have coefs away from their interval that are also plausible as the minimum (e.g. width 8: "
        "0.25 dex; elsewhere column): usually a barely constrained end of the grid; a denser grid there settles it",
        "1 run(s) diverged inside a λ* interval (e.g. width 16)",
    ]
    two = pd.DataFrame(
        {
            "width": [4, 8, 8],
            "status": "completed",
            "config.optim.lr": [0.1, 0.1, 0.2],
            "config.optim.epochs": [5, 5, 10],
        }
    )
    settings = pd.concat(
        [
            stars_table([4, 8], [1e-2, 1e-2]).assign(setting="optim.lr=0.1, optim.epochs=5"),
            stars_table([8], [1e-2]).assign(setting="optim.lr=0.2, optim.epochs=10"),
        ]
    )
    assert notes(two, settings) == [
        "2 settings, told apart by: optim.epochs, optim.lr",
        "setting 'optim.lr=0.2, optim.epochs=10' has a single width (8): a field that varies with the width cannot be "
        "a setting; no exponent for it",
        "κ = d log N_decayed / d log width = 2.000 (optim.lr=0.1, optim.epochs=5): λ*_mean's exponent is coef*'s "
        "plus κ",
    ]
    one_width = pd.DataFrame({"width": [8, 8], "status": "completed", "config.optim.lr": [0.1, 0.2]})
    assert notes(
        one_width, pd.concat([stars_table([8], [1e-2]).assign(setting=f"optim.lr={lr}") for lr in (0.1, 0.2)])
    ) == ["2 settings, told apart by: optim.lr"]  # every setting has the one width: nothing to say about it


def test_consistency_table_names_each_experiment_and_agrees_up_to_its_tolerance():
    df, _ = planted_table(norms=("sum",), **QUIET)
    twin = df.iloc[[5]].assign(norm="mean")
    diverged = df.iloc[[9, 9]].assign(status="diverged", norm=["sum", "per_step"])  # both +inf: they agree
    base = df.drop(index=df.index[9])
    result = consistency_table(pd.concat([base, twin, diverged]), tolerance=0.0)
    assert list(result.columns) == [
        "setting",
        "width",
        "n_train",
        "batch_size",
        "coef",
        "seed",
        "norms",
        "spread",
        "agree",
    ]
    first = result.iloc[0]
    assert (first["setting"], first["width"], first["coef"], first["seed"]) == (
        "all",
        df["width"].iloc[5],
        float(f"{df['coef'].iloc[5]:.10g}"),
        df["seed"].iloc[5],
    )
    assert first["norms"] == "mean,sum" and result["spread"].tolist() == [0.0, 0.0] and result["agree"].all()
    at_tolerance = consistency_table(pd.concat([df, twin.assign(val_loss=twin["val_loss"] + 0.25)]), tolerance=0.25)
    assert at_tolerance["agree"].all()  # a spread equal to the tolerance agrees
    assert consistency_table(df).empty and list(consistency_table(df).columns) == list(result.columns)


def test_split_normal_draws_reproduce_each_side_of_an_asymmetric_interval():
    rows = np.array([[-3.0, -2.0, -1.5], [np.nan, -2.0, -1.0], [-3.0, -2.0, np.nan]])
    draws = _split_normal(np.random.default_rng(0), rows)
    assert draws.shape == (4000, 3)
    z = stats.norm.ppf([0.025, 0.25, 0.75, 0.975])
    expected = [-2.0 + z[0] * 1.0 / 1.96, -2.0 + z[1] * 1.0 / 1.96, -2.0 + z[2] * 0.5 / 1.96, -1.5]
    # Monte Carlo error with 4000 draws: ~0.01 at the quartiles, ~0.02 at the tails
    error = np.abs(np.percentile(draws[:, 0], [2.5, 25, 75, 97.5]) - expected)
    assert (error < [0.08, 0.04, 0.04, 0.08]).all(), error
    assert (draws[:, 1] >= -2.0).all() and np.percentile(draws[:, 1], 97.5) == pytest.approx(-1.0, abs=0.05)
    assert (draws[:, 2] <= -2.0).all() and np.percentile(draws[:, 2], 2.5) == pytest.approx(-3.0, abs=0.05)


def test_joint_lr_table_is_drawn_with_seed_0_unless_asked():
    stars = stars_table([8, 8], [1e-3, 1e-2], **{"config.optim.lr": [0.01, 0.1]})
    stars = stars.assign(
        value=[0.2, 0.21], value_se=0.02, coef_lo=stars["coef_star"] / 2, coef_hi=stars["coef_star"] * 2
    )
    assert joint_lr_table(stars).equals(joint_lr_table(stars, seed=0))
    assert not joint_lr_table(stars).equals(joint_lr_table(stars, seed=1))


def test_joint_lr_rows_cover_every_width_in_order_and_only_fitted_optima_compete():
    lr = "config.optim.lr"
    stars = stars_table(
        [16, 16, 16, 8, 4, 4],
        [1e-3, 1e-2, 1e-1, 1e-2, 1e-3, 1e-2],
        **{lr: [0.01, 0.1, 1.0, 0.1, 0.01, 0.1], "config.penalty.log10_coef": np.nan},
    )
    stars["value"], stars["value_se"] = [0.5, 0.2, 0.05, 0.3, 0.4, 0.3], 1e-4
    stars["status"] = ["ok", "ok", "edge", "ok", "ok", "ok"]  # an edge optimum is no optimum: it cannot win
    stars["coef_lo"], stars["coef_hi"] = stars["coef_star"] / 10, stars["coef_star"] * 10
    table = joint_lr_table(stars)
    assert table["width"].tolist() == [4, 16]  # width 8 has one lr: no row, and the others still come
    assert table["lr_star"].tolist() == [0.1, 0.1] and table["n_lrs"].tolist() == [2, 2]
    # coef*'s interval read back from the split-normal draws (Monte Carlo error ~5% at ±1 dex)
    assert table["coef_lo"].tolist() == pytest.approx([1e-3, 1e-3], rel=0.12)
    assert table["coef_hi"].tolist() == pytest.approx([1e-1, 1e-1], rel=0.12)


@pytest.mark.parametrize(
    "loser_lr,z,bound,expected",
    [
        (0.01, 1.88, "lr_lo", 0.01),
        (1.0, 1.88, "lr_hi", 1.0),  # the loser wins 3% of the draws: inside 95%
        (0.01, 2.05, "lr_lo", 0.1),
        (1.0, 2.05, "lr_hi", 0.1),
    ],
)  # 2%: outside the central 95%
def test_the_joint_lr_interval_is_the_central_95_percent_of_the_draws(loser_lr, z, bound, expected):
    lr = "config.optim.lr"
    stars = stars_table([8, 8], [1e-2, 1e-2], **{lr: [0.1, loser_lr]})
    # the loser is z SDs of the difference worse: it wins Φ(−z) of the draws
    stars = stars.assign(value=[0.2, 0.2 + z * 0.01 * np.sqrt(2)], value_se=0.01, coef_lo=1e-3, coef_hi=1e-1)
    row = joint_lr_table(stars).iloc[0]
    assert row[bound] == pytest.approx(expected) and row["lr_star"] == 0.1


def test_exponent_rows_come_in_setting_order():
    widths = np.array([4, 8, 16, 32])
    stars = pd.concat(
        [
            stars_table(widths, 10 ** (-2 + 0.1 * np.log10(widths) + [0.01, -0.01, 0.02, 0])).assign(setting=s)
            for s in ("optim.lr=0.2", "optim.lr=0.1")
        ]
        + [stars_table([8], [0.01]).assign(setting="optim.lr=0.05")]
    )
    # the one-width setting first in order has no exponent; the others still do, in order
    assert exponent_table(stars)["setting"].drop_duplicates().tolist() == ["optim.lr=0.1", "optim.lr=0.2"]


def test_coef_star_table_fits_the_metric_it_is_asked_for_and_reports_sizes():
    df, _ = planted_table(**QUIET)
    by_loss, by_error = coef_star_table(df), coef_star_table(df, "val_err")
    # planted: val_acc = 1 − val_loss/3, so the error is the loss over 3 and its optimum the same coef
    assert (by_error["metric"] == "val_err").all() and by_error["value"].tolist() == pytest.approx(
        (by_loss["value"] / 3).tolist(), rel=1e-6
    )
    assert by_error["coef_star"].tolist() == pytest.approx(by_loss["coef_star"].tolist(), rel=1e-6)
    assert (by_loss["n_params"] >= by_loss["n_decayed"]).all() and (by_loss["n_decayed"] > 0).all()


def test_the_best_epochs_loss_is_a_metric_of_its_own():
    """--metric best_val_loss fits each run's lowest validation loss over its epochs, not its last."""
    df, _ = planted_table(**QUIET)
    df["best_val_loss"] = df["val_loss"] / 2  # planted: the same optimum, half the level
    by_final, by_best = coef_star_table(df), coef_star_table(df, "best_val_loss")
    assert (by_best["metric"] == "best_val_loss").all()
    assert by_best["value"].tolist() == pytest.approx((by_final["value"] / 2).tolist(), rel=1e-6)
    assert by_best["coef_star"].tolist() == pytest.approx(by_final["coef_star"].tolist(), rel=1e-6)
    with pytest.raises(AnalysisError, match="^--metric best_val_loss: the table has no best_val_loss column"):
        coef_star_table(df.drop(columns="best_val_loss"), "best_val_loss")


def test_each_metrics_intervals_are_widened_as_its_calibration_needs():
    """The same numbers fitted as each metric: the same coef*, the final loss's interval the narrowest, the
    error rate's the hull of its plausible coefs, the best-epoch loss's also reaching its neighbouring grid coefs."""
    df, _ = planted_table(**QUIET)
    df["best_val_loss"], df["val_acc"] = df["val_loss"], 1 - df["val_loss"]
    final, best, error = (coef_star_table(df, m).set_index("width") for m in ("val_loss", "best_val_loss", "val_err"))
    ok = final.index[final["status"] == "ok"]
    assert len(ok) >= 4 and (best.loc[ok, "coef_star"] == final.loc[ok, "coef_star"]).all()
    assert (error.loc[ok, "coef_lo"] <= final.loc[ok, "coef_lo"] * (1 + 1e-12)).all()
    assert (best.loc[ok, "coef_lo"] <= error.loc[ok, "coef_lo"] * (1 + 1e-12)).all()
    assert (best.loc[ok, "coef_hi"] >= error.loc[ok, "coef_hi"] * (1 - 1e-12)).all()
    grid = df.loc[df["coef"] > 0].groupby("width")["coef"].apply(lambda c: np.sort(c.unique()))
    for w in best.index[best["status"] == "ok"]:  # at least the grid coefs either side of coef*
        star, coefs = best.loc[w, "coef_star"], grid[w]
        assert (
            best.loc[w, "coef_lo"] <= coefs[coefs < star].max() and best.loc[w, "coef_hi"] >= coefs[coefs > star].min()
        )
    assert (
        final.loc[ok, "coef_hi"] / final.loc[ok, "coef_lo"] < best.loc[ok, "coef_hi"] / best.loc[ok, "coef_lo"]
    ).any()


def test_one_experiment_named_twice_counts_once_and_rows_come_in_axis_order():
    df, _ = planted_table(**QUIET)
    twins = df[df["coef"] > 0].iloc[:6].assign(norm="mean")  # the same (coef, seed) named in another norm
    base = coef_star_table(df)
    pooled = coef_star_table(pd.concat([df, twins]).sample(frac=1.0, random_state=0))  # and in no order
    assert pooled["width"].tolist() == sorted(base["width"]) and pooled["n_runs"].tolist() == base["n_runs"].tolist()
    with pytest.raises(AnalysisError, match="^no completed or diverged runs in the table$"):
        list(fitted_groups(df.assign(status="failed"), "val_loss"))
    two_axes = stars_table([4, 8], [0.01, 0.02]).assign(batch_size=[64, 128])
    assert exponent_table(two_axes)["axis"].tolist() == ["width,batch_size"]  # not fitted: too few points


def test_each_predicted_exponent_is_printed_beside_the_measured_and_judged_by_its_interval(tmp_path, capsys):
    """Planted coef* ∝ width¹: the law that says 1 is consistent, the one that says ½ is not, and a
    law about an axis that does not vary is reported as not fitted; runs without laws give none."""
    moving, _ = planted_table(alpha=1.0, **QUIET)
    laws = [
        {"source": "right", "norm": "coef", "axis": "width", "exponent": 1.0},
        {"source": "square root", "norm": "sum", "axis": "width", "exponent": 0.5},
        {"source": "data size", "norm": "coef", "axis": "n_train", "exponent": -1.0},
    ]
    moving["predictions"] = json.dumps(laws[:2])
    moving.loc[moving.index[::2], "predictions"] = json.dumps(laws[1:])  # a setting's runs pool their laws
    got = prediction_table(moving, exponent_table(coef_star_table(moving))).set_index("source")
    assert list(got.index) == ["data size", "right", "square root"]
    assert got.loc["right", "consistent"] and got.loc["right", "lo"] <= 1.0 <= got.loc["right", "hi"]
    assert not got.loc["square root", "consistent"] and got.loc["square root", "predicted"] == 0.5
    assert got.loc["data size", "consistent"] is None and np.isnan(got.loc["data size", "exponent"])
    moving["predictions"] = "[]"
    assert prediction_table(moving, exponent_table(coef_star_table(moving))).empty


def test_the_tuned_lr_setting_is_each_point_s_joint_optimum_and_its_exponent_is_fitted_like_any_other():
    df, truth = planted_table(lrs=(0.01, 0.1), lr_shift=1.0, lr_best=0.01, lr_cost=0.5, alpha=1.0, **QUIET)
    stars = coef_star_table(df)
    joint = joint_lr_table(stars)
    tuned = tuned_lr_stars(stars, joint)
    assert (joint["lr_star"] == 0.01).all() and (tuned["setting"] == "optim.lr=tuned").all()
    at_best = stars[stars[LR] == 0.01].set_index("width")
    for _, t in tuned.iterrows():
        assert t["coef_star"] == at_best.loc[t["width"], "coef_star"]
        assert t["lam_star_mean"] == pytest.approx(t["coef_star"] * n_decayed(t["width"]))  # coef = λ/N
        assert t["se"] == pytest.approx(np.log10(t["coef_hi"] / t["coef_lo"]) / 3.92)
    e = exponent_table(tuned).set_index("norm").loc["coef"]
    assert e["lo"] < truth["alpha"] < e["hi"]
