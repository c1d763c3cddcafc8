import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.__main__ import main as analysis_main
from analysis.bootstrap import kept_bootstrap, resampled
from analysis.planted import Scenario, planted
from analysis.table import AnalysisError, write_table


def test_a_resample_is_whole_seeds_drawn_with_replacement_each_draw_its_own_seed():
    runs = pd.DataFrame({"seed": np.repeat([0, 1, 2, 3], 3), "value": np.arange(12.0)})
    rng = np.random.default_rng(3)
    drawn = np.random.default_rng(3).choice([0, 1, 2, 3], 4)
    out = resampled(runs, rng)
    assert sorted(out["seed"].unique()) == [0, 1, 2, 3]
    for label, seed in enumerate(drawn):
        assert out.loc[out["seed"] == label, "value"].tolist() == runs.loc[runs["seed"] == seed, "value"].tolist()


@pytest.mark.slow
def test_bootstrap_spread_matches_the_meta_regression_on_independent_points_and_the_paper_refuses_a_stale_one(
        tmp_path, capsys):
    df, _ = planted(Scenario(alpha=1.0, seeds=10, misfit=0.0, seed_jitter=0.05), np.random.default_rng(0))
    (tmp_path / "results").mkdir()
    table = tmp_path / "results" / "planted.csv.gz"
    write_table(df, str(table))
    out = tmp_path / "results" / "bootstrap" / "planted.csv"
    analysis_main(["bootstrap", str(table), "--out", str(out), "--replicates", "40"])
    boot = kept_bootstrap("planted", table).set_index("axis").loc["width"]
    assert boot["kept"] >= 30 and boot["boot_lo"] < boot["exponent"] < boot["boot_hi"]
    # the meta-regression's SD of the exponent, from its 95% interval on k - p degrees of freedom
    meta_sd = (boot["hi"] - boot["lo"]) / 2 / stats.t.ppf(0.975, boot["dof"])
    assert 0.5 < boot["boot_sd"] / meta_sd < 2
    write_table(df.iloc[1:], str(table))
    with pytest.raises(AnalysisError, match="drawn from another version"):
        kept_bootstrap("planted", table)


def test_a_bootstrap_needs_two_replicates_and_two_seeds(tmp_path, capsys):
    df, _ = planted(Scenario(seeds=1), np.random.default_rng(0))
    path = tmp_path / "t.csv"
    write_table(df, str(path))
    for argv, message in ((["--replicates", "1"], "--replicates 1: must be >= 2"), ([], "one seed")):
        with pytest.raises(SystemExit) as exit_:
            analysis_main(["bootstrap", str(path), "--out", str(tmp_path / "b.csv"), *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "b.csv").exists()
