"""``collect`` (analysis/table.py): real run directories into one table, and what it warns about."""

import json

import pandas as pd
import pytest

from analysis.fit import consistency_table, setting_fields
from analysis.table import COLUMNS, collect, warn_mixed_devices
from wdbench.results import device_type

from helpers import TINY


@pytest.mark.slow
def test_coef_grid_runs_are_bit_identical_whichever_normalisation_names_them(cli, tmp_path):
    assert cli("-m", *TINY, "optim.epochs=1", "penalty=sum,mean", "penalty.log10_coef=-2", "name=s")[0] == 0
    assert cli("-m", *TINY, "optim.epochs=1", "penalty.lam=0", "seed=0,1", "name=s")[0] == 0
    df = collect([str(tmp_path / "out" / "multirun" / "s")])
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS and len(df) == 4
    coef_runs = df[df["coef"] > 0].set_index("norm")
    assert coef_runs.loc["sum", "coef"] == coef_runs.loc["mean", "coef"] == 0.01
    assert coef_runs.loc["sum", "val_loss"] == coef_runs.loc["mean", "val_loss"]  # bit-identical
    assert coef_runs.loc["mean", "lam"] == pytest.approx(0.01 * coef_runs.loc["mean", "n_decayed"])
    assert setting_fields(df) == []  # penalty.norm and the λ fields are not settings
    assert consistency_table(df)["agree"].all()
    for _, r in df.iterrows():
        assert json.loads((tmp_path / r["run_dir"] / "result.json").read_text())["seed"] == r["seed"]


def test_collect_says_when_one_settings_runs_trained_on_different_devices(capsys):
    assert device_type({"device": "cuda:0 (NVIDIA H100)"}) == device_type({"device_type": "cuda"}) == "cuda"
    assert device_type({"device": "cpu"}) == device_type({}) == "cpu"
    df = pd.DataFrame(
        {
            "config.model.width": [8, 8, 8, 16],
            "config.seed": [0, 1, 2, 0],
            "config.penalty.lam": [0.1, 0.2, 0.1, 0.1],
            "device": ["cpu", "cuda", "cpu", "cuda"],
            "run_dir": ["a", "b", "c", "d"],
        }
    )
    warn_mixed_devices(df)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("analysis: warning: 3 runs of one setting trained on cpu, cuda (e.g. a)")
    warn_mixed_devices(df[df.device == "cpu"])
    assert capsys.readouterr().err == ""
