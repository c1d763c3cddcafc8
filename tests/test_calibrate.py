"""The coverage of the intervals measured on planted tables (analysis/calibrate.py), a fast version."""

import pandas as pd
import pytest

from analysis.__main__ import main as analysis_main
from analysis.calibrate import coverage
from analysis.table import AnalysisError


def test_calibration_covers_near_nominal_on_planted_tables():
    result = coverage(60, seed=3).set_index("quantity")
    assert result["intervals"].min() >= 15
    assert result["coverage"].between(0.8, 1.0).all(), result  # the full run (docs/analysis.md) is held to [0.90, 0.99]


def test_calibrate_fits_the_metric_asked_for_and_refuses_it_for_the_bootstrap(tmp_path, capsys):
    """--metric calibrates the planted best-epoch loss or error rate; the final loss's planted draws and hence its
    calibration are what they were (the other metrics draw from a generator of their own)."""
    out = tmp_path / "val_err.csv"
    with pytest.raises(SystemExit):  # two sweeps cannot meet the goal; the table is written all the same
        analysis_main(["calibrate", "--replicates", "2", "--metric", "val_err", "--out", str(out)])
    table = pd.read_csv(out).set_index("quantity")
    assert list(table.index[:3]) == ["log10 coef* per width", "gain over λ = 0", "exponent against width"]
    assert table.loc["gain over λ = 0", "intervals"] > 0
    val_loss = coverage(2, seed=1)
    best = coverage(2, seed=1, metric="best_val_loss")
    assert not val_loss.equals(best) and val_loss.equals(coverage(2, seed=1, metric="val_loss"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        analysis_main(["calibrate", "--bootstrap", "--metric", "val_err"])
    assert exit_.value.code == 2 and "--metric val_err" in capsys.readouterr().err
    with pytest.raises(AnalysisError, match="--metric val_acc: unknown"):
        coverage(1, metric="val_acc")
