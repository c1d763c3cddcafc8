"""The analysis on synthetic tables with a known answer, and on real run directories."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main as analysis_main
from analysis.fit import lambda_star_table, refined_argmin, scaling_table, identity_table
from analysis.paper import build_paper
from analysis.table import COLUMNS, collect
from conftest import TINY

WIDTHS = [8, 16, 32, 64, 128]
N_TRAIN, BATCH = 1000, 100


def n_decayed(width):
    return 100 * width ** 2


def synthetic(alpha=-0.7, c=0.5, norm="sum", seeds=4, noise=0.01, rng=0, grid=None, widths=WIDTHS):
    """U-shaped losses in log λ around a planted coefficient λ*·c = C·width^α."""
    rng = np.random.default_rng(rng)
    rows = []
    for w in widths:
        factor = {"sum": 1.0, "mean": 1.0 / n_decayed(w), "per_step": BATCH / N_TRAIN}[norm]
        star = c * w ** alpha / factor  # λ* in this normalisation
        lams = 10.0 ** (grid if grid is not None else np.round(np.log10(star) + np.arange(-2, 2.01, 0.25), 6))
        for s in range(seeds):
            for lam in lams:
                loss = 0.3 + 2.0 / w + 0.2 * (np.log10(lam) - np.log10(star)) ** 2 + noise * rng.standard_normal()
                rows.append({"model": "resnet", "width": w, "n_params": 110 * w ** 2, "n_decayed": n_decayed(w),
                             "norm": norm, "apply": "coupled", "lam": lam, "coef": lam * factor, "optimizer": "sgd",
                             "lr": 0.1, "batch_size": BATCH, "n_train": N_TRAIN, "epochs": 10, "seed": s,
                             "status": "completed", "val_loss": loss, "val_acc": 1 - loss / 2, "train_loss": loss,
                             "decayed_norm": 1 / lam, "run_dir": f"r{w}_{lam}_{s}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def fitted_alpha(df, n_bootstrap=1000):
    scaling = scaling_table(lambda_star_table(df, n_bootstrap=n_bootstrap))
    return scaling[scaling["x"] == "width"].iloc[0]


def test_fit_recovers_the_planted_exponent_within_an_honest_interval():
    row = fitted_alpha(synthetic(alpha=-0.7))
    assert row["alpha_lo"] <= -0.7 <= row["alpha_hi"]
    assert abs(row["alpha"] + 0.7) < 0.1 and row["alpha_hi"] - row["alpha_lo"] < 0.4
    assert row["n_widths"] == 5 and row["r2"] > 0.97
    assert fitted_alpha(synthetic(alpha=-0.7)).equals(row)  # deterministic bootstrap


def test_the_interval_covers_the_truth_at_about_its_nominal_rate():
    covered = [fitted_alpha(synthetic(alpha=0.4, noise=0.02, seeds=2, rng=r), n_bootstrap=0) for r in range(20)]
    hits = sum(r["alpha_lo"] <= 0.4 <= r["alpha_hi"] for r in covered)
    assert hits >= 16  # 95% nominal; P(<16 of 20) is under 0.3% at 95% coverage
    assert np.median([r["alpha_hi"] - r["alpha_lo"] for r in covered]) < 1.0


def test_parabola_refinement_finds_an_optimum_between_grid_points():
    grid = np.arange(-4, 0.01, 0.5)
    truth = -2.2  # between -2.5 and -2.0
    x_star, i = refined_argmin(grid, (grid - truth) ** 2)
    assert x_star == pytest.approx(truth, abs=1e-9) and grid[i] == -2.0
    stars = lambda_star_table(synthetic(noise=0.0, seeds=1, grid=grid))
    planted = np.log10(0.5 * np.array(WIDTHS, float) ** -0.7)
    assert np.allclose(stars["log10_lam_star"], planted, atol=1e-6)
    assert stars["lam_star_lo"].isna().all()  # one seed: no bootstrap interval is claimed


def test_an_edge_optimum_is_flagged_and_left_out_of_the_fit():
    df = synthetic(grid=np.arange(-3, 0.01, 0.25))
    df = df[~((df["width"] == 8) & (df["lam"] < 0.2))]  # width 8's grid now starts above its λ* ≈ 0.12
    stars = lambda_star_table(df)
    edge = stars.set_index("width")["at_edge"]
    assert edge[8] and not edge[[16, 32, 64, 128]].any()
    row = scaling_table(stars).query("x == 'width'").iloc[0]
    assert row["n_widths"] == 4 and row["n_excluded"] == 1 and row["alpha_lo"] <= -0.7 <= row["alpha_hi"]
    assert scaling_table(stars, include_edge=True).query("x == 'width'").iloc[0]["n_widths"] == 5


def test_diverged_runs_count_as_infinite_loss_and_an_all_diverged_width_does_not_crash():
    df = synthetic()
    best = df[df["width"] == 16].groupby("lam")["val_loss"].mean().idxmin()
    df.loc[(df["width"] == 16) & (df["lam"] == best) & (df["seed"] == 0), ["status", "val_loss"]] = ["diverged", np.nan]
    df.loc[df["width"] == 128, "status"] = "diverged"
    stars = lambda_star_table(df).set_index("width")
    assert stars.loc[16, "lam_star"] != pytest.approx(best, rel=1e-3)  # its best λ diverged once: not λ*
    assert stars.loc[128, "all_diverged"] and np.isnan(stars.loc[128, "lam_star"])
    row = scaling_table(stars.reset_index()).query("x == 'width'").iloc[0]
    assert row["n_widths"] == 4 and np.isfinite(row["alpha"])


def test_lambda_star_is_expressed_in_every_normalisation_and_identities_hold():
    df = pd.concat([synthetic(norm=n, rng=i) for i, n in enumerate(["sum", "mean", "per_step"])])
    stars = lambda_star_table(df)
    for _, s in stars.iterrows():
        assert s["lam_star_mean"] == pytest.approx(s["lam_star_sum"] * s["n_decayed"])
        assert s["lam_star_per_step"] == pytest.approx(s["lam_star_sum"] * N_TRAIN / BATCH)
    identities = identity_table(stars, scaling_table(stars)).set_index("identity")
    assert identities.loc["alpha_mean - alpha_sum = kappa", "expected"] == pytest.approx(2.0)
    assert abs(identities["difference"]).max() < 0.1


def _write(df, path):
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("case,message", [
    ("missing_dir", "no/such/dir: directory not found"),
    ("empty", "the table has no rows"),
    ("missing_column", "missing columns: lam"),
    ("single_width", "the table has a single width (16)"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, message):
    if case == "missing_dir":
        argv = ["collect", "no/such/dir", "--out", str(tmp_path / "t.csv")]
    else:
        df = {"empty": synthetic().iloc[:0], "missing_column": synthetic().drop(columns="lam"),
              "single_width": synthetic(widths=[16])}[case]
        argv = ["fit", _write(df, tmp_path / "t.csv"), "--out", str(tmp_path / "fit")]
    with pytest.raises(SystemExit) as exit_:
        analysis_main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.slow
def test_fit_figures_and_paper_write_non_empty_files(tmp_path, capsys):
    df = pd.concat([synthetic(norm=n, rng=i, seeds=2) for i, n in enumerate(["sum", "mean", "per_step"])])
    table = _write(df, tmp_path / "results.csv")
    analysis_main(["fit", table, "--out", str(tmp_path / "fit")])
    scaling = pd.read_csv(tmp_path / "fit" / "scaling.csv")
    assert set(scaling["norm"]) == {"sum", "mean", "per_step"} and set(scaling["x"]) == {"width", "n_params"}
    analysis_main(["figures", table, "--out", str(tmp_path / "fig")])
    for name in ("loss_vs_lambda", "lambda_star_vs_width", "loss_heatmap", "decayed_norm_vs_lambda"):
        for ext in ("pdf", "png"):
            assert (tmp_path / "fig" / f"{name}.{ext}").stat().st_size > 5000
    written = build_paper(tmp_path / "results.csv", out=tmp_path / "paper")
    assert all(p.stat().st_size > 0 for p in written)
    numbers_tex = (tmp_path / "paper" / "tables" / "numbers.tex").read_text()
    numbers = dict(re.findall(r"\\newcommand\{\\(\w+)\}\{([^}]*)\}", numbers_tex))
    assert float(numbers["AlphaSumLo"]) <= -0.7 <= float(numbers["AlphaSumHi"])
    assert abs(float(numbers["AlphaMean"]) - 1.3) < 0.15  # α_mean = α_sum + κ, κ = 2
    assert numbers["NRuns"] == str(len(df)) and numbers["Widths"] == "8, 16, 32, 64, 128"


@pytest.mark.slow
def test_collect_reads_real_run_directories_and_keeps_diverged_runs(cli, tmp_path):
    assert cli("-m", *TINY, "optim.epochs=1", "model.width=4,8", "penalty.log10_lam=-3,-1", "name=s")[0] == 0
    assert cli("-m", *TINY, "optim.epochs=1", "model.width=4", "optim.lr=1e6", "optim.schedule=constant",
               "name=s")[0] == 0
    df = collect([str(tmp_path / "out" / "multirun" / "s")])
    assert list(df.columns[:len(COLUMNS)]) == COLUMNS and len(df) == 5
    assert sorted(df["status"]) == ["completed"] * 4 + ["diverged"]
    ok = df[df["status"] == "completed"]
    assert set(zip(ok["width"], ok["lam"].round(6))) == {(4, 0.001), (4, 0.1), (8, 0.001), (8, 0.1)}
    for _, r in df.iterrows():
        assert json.loads((tmp_path / r["run_dir"] / "result.json").read_text())["seed"] == r["seed"]
