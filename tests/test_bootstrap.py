import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.__main__ import main as analysis_main
from analysis.bootstrap import _replicate_exponents, check_interval, kept_bootstrap, meta_sd, resampled
from analysis.fit import NORMS, exponent_table
from analysis.planted import Scenario, planted
from analysis.scaling import verdict
from analysis.table import AnalysisError, write_table

from helpers import stars_table


def test_a_resample_is_whole_seeds_drawn_with_replacement_each_draw_its_own_seed():
    runs = pd.DataFrame({"seed": np.repeat([0, 1, 2, 3], 3), "value": np.arange(12.0)})
    rng = np.random.default_rng(3)
    drawn = np.random.default_rng(3).choice([0, 1, 2, 3], 4)
    out = resampled(runs, rng)
    assert sorted(out["seed"].unique()) == [0, 1, 2, 3]
    for label, seed in enumerate(drawn):
        assert out.loc[out["seed"] == label, "value"].tolist() == runs.loc[runs["seed"] == seed, "value"].tolist()


def test_bootstrap_spread_matches_the_meta_regression_on_independent_points_and_the_paper_refuses_a_stale_one(
    tmp_path, capsys
):
    df, _ = planted(Scenario(alpha=1.0, seeds=10, misfit=0.0, seed_jitter=0.05), np.random.default_rng(0))
    (tmp_path / "results").mkdir()
    table = tmp_path / "results" / "planted.csv.gz"
    write_table(df, str(table))
    out = tmp_path / "results" / "bootstrap" / "planted.csv"
    analysis_main(["bootstrap", str(table), "--out", str(out), "--replicates", "40"])
    every = kept_bootstrap("planted", table)
    assert set(every["norm"]) == {"coef", *NORMS}  # each normalisation's exponent is resampled
    assert (every["setting"] == "all").all() and (every["span"] == 128 / 4).all()  # planted widths 4-128, all bounded
    assert (
        (every["n_points"] == 6).all()
        and (every["replicates"] == 40).all()
        and every["table_sha256"].str.len().eq(64).all()
    )
    assert (every["unfitted"] == 0).all() and (every["kept"] <= 40).all()  # every replicate counts
    boot = every.set_index(["norm", "axis"]).loc[("coef", "width")]
    assert boot["kept"] >= 30 and boot["boot_lo"] < boot["exponent"] < boot["boot_hi"]
    # the meta-regression's SD of the exponent, from its 95% interval on k - p degrees of freedom
    sd = (boot["hi"] - boot["lo"]) / 2 / stats.t.ppf(0.975, boot["dof"])
    # one table: the ratio scatters (1.99 here when only replicates that kept every point counted; its median
    # over many planted tables, near 1, is what calibrate --bootstrap measures)
    assert meta_sd(boot) == pytest.approx(sd) and 0.5 < boot["boot_sd"] / sd < 2.5
    for _, b in every.iterrows():  # the TOST again, each end at least the fit's own
        half = stats.t.ppf(0.95, b["dof"]) * meta_sd(b)
        assert b["robust_lo90"] <= b["exponent"] - half + 1e-12 and b["robust_hi90"] >= b["exponent"] + half - 1e-12
        assert b["robust_verdict"] == verdict(b["robust_lo90"], b["robust_hi90"], b["margin"], b["span"])
    assert boot["robust_verdict"] == boot["verdict"] == "moves"  # alpha = 1: a slope no 5 seeds could hide
    write_table(df.iloc[1:], str(table))
    with pytest.raises(AnalysisError, match="drawn from another version"):
        kept_bootstrap("planted", table)


def test_a_bootstrap_needs_two_replicates_two_seeds_and_an_exponent(tmp_path, capsys):
    df, _ = planted(Scenario(seeds=1), np.random.default_rng(0))
    path, one_width = tmp_path / "t.csv", tmp_path / "w.csv"
    write_table(df, str(path))
    write_table(planted(Scenario(widths=(8,)), np.random.default_rng(0))[0], str(one_width))
    for table, argv, message in (
        (path, ["--replicates", "1"], "--replicates 1: must be >= 2"),
        (path, [], "one seed"),
        (one_width, [], "no exponent fitted"),
    ):
        with pytest.raises(SystemExit) as exit_:
            analysis_main(["bootstrap", str(table), "--out", str(tmp_path / "b.csv"), *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "b.csv").exists()


def test_the_bootstrap_table_marks_a_verdict_that_differs_from_the_answer_tables_and_an_old_file_is_refused(tmp_path):
    from analysis.numbers import bootstrap_counts
    from analysis.paper_tables import bootstrap_tex

    row = dict(
        setting="all",
        axis="width",
        exponent=0.0,
        lo=-0.1,
        hi=0.1,
        dof=4,
        kept=80,
        boot_sd=0.06,
        robust_lo90=-0.2,
        robust_hi90=0.15,
        unfitted=0,
    )
    boot = pd.DataFrame(
        [
            {**row, "norm": "coef", "verdict": "still", "robust_verdict": "undecided"},
            {**row, "norm": "sum", "verdict": "still", "robust_verdict": "undecided"},
            {**row, "norm": "mean", "verdict": "moves", "robust_verdict": "moves"},
            {**row, "norm": "per_step", "verdict": "still", "robust_verdict": "undecided", "robust_hi90": np.inf},
        ]
    )
    tex = bootstrap_tex({"x": boot})
    # the SD ratio is 0.06 over the meta-regression's 0.1 / t(0.975, 4)
    assert f"& 80 & {0.06 / (0.1 / stats.t.ppf(0.975, 4)):.2f} &" in tex
    assert r"[$-$0.20, 0.15] undecided$^\dagger$" in tex  # differs from "still": marked
    assert "[$-$0.20, 0.15] moves &" in tex and tex.count(r"\dagger") == 2  # agrees: unmarked
    assert tex.splitlines()[-3].endswith(r"[$-$0.20, $\infty$] undecided$^\dagger$ \\")  # an end past the grid
    # coef's row is sum's: three verdicts checked, two changed
    assert bootstrap_counts({"x": boot}) == {"BootstrapVerdictsChecked": "3", "BootstrapVerdictsChanged": "2"}
    (tmp_path / "bootstrap").mkdir()
    table = tmp_path / "x.csv"
    table.write_text("a\n")
    boot.drop(columns=["unfitted"]).to_csv(tmp_path / "bootstrap" / "x.csv", index=False)
    with pytest.raises(AnalysisError, match="older bootstrap"):
        kept_bootstrap("x", table)


def test_a_planted_seed_slope_tilts_each_seeds_optima_across_its_widths_and_none_leaves_them_on_the_law():
    quiet = dict(
        alpha=0.5,
        widths=(4, 8, 16, 32, 64, 128),
        seeds=5,
        step=0.05,
        sigma=0.0,
        seed_sd=0.0,
        seed_jitter=0.0,
        misfit=0.0,
        diverge=0.0,
        missing=0.0,
        baseline=False,
        asymmetry=(0.0, 0.0),
    )

    def seed_slopes(seed_slope):
        df, _ = planted(Scenario(**quiet, seed_slope=seed_slope), np.random.default_rng(0))
        best = df.loc[df.groupby(["seed", "width"])["val_loss"].idxmin()]  # each seed's own optimum, per width
        return np.array([np.polyfit(np.log10(g["width"]), np.log10(g["coef"]), 1)[0] for _, g in best.groupby("seed")])

    assert np.abs(seed_slopes(0.0) - 0.5).max() < 0.06  # on the planted law, within the grid's step
    tilted = seed_slopes(0.5)
    assert tilted.std() > 0.1 and np.abs(tilted - 0.5).max() > 0.25  # each seed its own slope (SD 0.5 planted)


@pytest.mark.slow
def test_the_bootstrap_calibration_writes_both_intervals_for_both_kinds_of_seed_and_refuses_seeds(tmp_path, capsys):
    out = tmp_path / "boot_calibration.csv"
    with pytest.raises(SystemExit):  # two sweeps cannot meet a coverage goal; the table is written all the same
        analysis_main(["calibrate", "--bootstrap", "--replicates", "1", "--out", str(out)])
    table = pd.read_csv(out).set_index("quantity")
    assert list(table.index) == [
        f"exponent, seeds {kind}: {interval}"
        for kind in ("independent", "shared across widths")
        for interval in ("meta-regression", "bootstrap check")
    ]
    assert (table["intervals"] + table["withheld"] == 1).all() and "median_sd_ratio" in table
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["calibrate", "--bootstrap", "--seeds", "3"])
    assert exit_.value.code == 2 and "--seeds 3" in capsys.readouterr().err


def test_the_checks_interval_widens_each_way_to_the_bootstraps_reach_and_opens_where_over_a_tail_is_unfitted():
    e = pd.Series({"exponent": 0.0, "lo": -0.1, "hi": 0.1, "dof": 4})
    t, sd = stats.t.ppf(0.95, 4), meta_sd(e)
    narrow = np.linspace(-0.01, 0.01, 100)  # the bootstrap's spread below the fit's: the fit's interval
    assert check_interval(e, narrow, 0.90) == pytest.approx((-t * sd, t * sd))
    wide = np.r_[np.full(10, -1.0), np.zeros(90)]  # 10% reach -1 below: the lower end widens, the upper not
    lo, hi = check_interval(e, wide, 0.90)
    assert lo == pytest.approx(-t * 1.0 / stats.norm.ppf(0.95)) and hi == pytest.approx(t * sd)
    for lost, end in ((4, 0.0), (6, np.inf)):  # 5% is a tail's share: past it, the end is open
        draws = np.r_[np.full(lost, np.inf), np.zeros(100 - lost)]
        assert (
            check_interval(e, draws, 0.90)[1] == pytest.approx(t * sd)
            if end == 0.0
            else np.isinf(check_interval(e, draws, 0.90)[1])
        )
    both = np.r_[np.full(6, np.nan), np.zeros(94)]  # lost both ways: both ends open
    assert np.isinf(check_interval(e, both, 0.90)).all()


def test_a_replicate_counts_each_points_estimate_whatever_its_status_and_names_the_points_it_lost():
    widths = np.array([4, 8, 16, 32])
    stars = stars_table(widths, 10 ** (-2 + 0.5 * np.log10(widths)))
    original = exponent_table(stars).dropna(subset=["exponent"]).set_index(["setting", "norm", "axis"])
    again, lost = _replicate_exponents(original, stars, stars)
    assert not lost.any() and again.to_numpy() == pytest.approx(original["exponent"].to_numpy())
    replicate = stars.copy()  # the narrowest optimum went open, its estimate 0.3 dex lower: the slope steepens
    replicate.loc[0, ["status", "coef_star", "se"]] = ["open", stars.loc[0, "coef_star"] / 10**0.3, np.nan]
    again, lost = _replicate_exponents(original, stars, replicate)
    assert lost.tolist() == [True, False, False, False]
    moved = replicate.assign(status="ok", se=0.05)  # refitted with the original SE where the replicate has none
    for norm in ("sum", "mean", "per_step"):  # every normalisation's λ* moves with coef*
        moved[f"lam_star_{norm}"] = stars[f"lam_star_{norm}"] * replicate["coef_star"] / stars["coef_star"]
    refit = exponent_table(moved).set_index(["setting", "norm", "axis"])["exponent"]
    assert again.to_numpy() == pytest.approx(refit.reindex(again.index).to_numpy())
    assert (again - original["exponent"]).loc[("all", "coef", "width")] > 0.1
    replicate.loc[3, "status"], replicate.loc[3, "coef_star"] = "too_few", np.nan  # no estimate: unfitted
    assert np.isnan(_replicate_exponents(original, stars, replicate)[0]).all()
