"""``python -m analysis`` (analysis/__main__.py): bad input is one line and exit 2; and the package reads
results only, never importing the trainer."""

import subprocess
import sys

import numpy as np
import pytest

from analysis.__main__ import main as analysis_main
from analysis.planted import BATCH

from helpers import QUIET, planted_table, write_csv


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing_dir", "no/such/dir: directory not found"),
        ("empty", "the table has no rows"),
        ("missing_column", "missing columns: lam"),
        ("no_config", "no config.* columns"),
        ("empty_axis", "column batch_size: 1 usable run(s) have no value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, message):
    if case == "missing_dir":
        argv = ["collect", "no/such/dir", "--out", str(tmp_path / "t.csv")]
    else:
        df, _ = planted_table(**QUIET)
        df = {
            "empty": df.iloc[:0],
            "missing_column": df.drop(columns="lam"),
            "no_config": df[[c for c in df.columns if not c.startswith("config.")]],
            "empty_axis": df.assign(batch_size=[np.nan] + [BATCH] * (len(df) - 1)),
        }[case]
        argv = ["fit", write_csv(df, tmp_path / "t.csv"), "--out", str(tmp_path / "fit")]
    with pytest.raises(SystemExit) as exit_:
        analysis_main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_the_analysis_never_imports_torch_nor_the_trainer():
    """It reads result files and tables only; λ in each normalisation comes from torch-free math."""
    modules = [
        "analysis.__main__",
        "analysis.table",
        "analysis.fit",
        "analysis.pipeline",
        "analysis.summary",
        "analysis.tex",
        "analysis.answer",
        "analysis.paper_tables",
        "analysis.numbers",
        "analysis.readme",
        "analysis.paper",
        "analysis.figures",
        "analysis.planted",
        "analysis.bootstrap",
        "analysis.calibrate",
        "analysis.curvature",
        "analysis.equilibrium",
    ]
    code = (
        f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if m == 'torch' or "
        "m.startswith(('torch.', 'wdbench.train', 'wdbench.runner', 'wdbench.penalty'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
