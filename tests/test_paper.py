"""The paper build (analysis/paper.py) end to end, after ``fit`` and ``figures`` on the same planted table."""

import re

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main as analysis_main
from analysis.paper import build_paper
from analysis.planted import BATCH
from analysis.readme import README_ANSWER
from analysis.table import write_table

from helpers import QUIET, planted_table, planted_tensors, write_csv


@pytest.mark.slow
def test_fit_figures_and_paper_write_what_the_text_quotes(tmp_path, capsys):
    df, _ = planted_table(lrs=(0.01, 0.1), lr_shift=2.0, **QUIET)
    df = df[~((df["width"] == 128) & (df["coef"] > 0) & (df["lr"] == 0.1))]  # a width with λ = 0 runs only
    path = write_csv(df, tmp_path / "results.csv")
    analysis_main(["fit", path, "--out", str(tmp_path / "fit")])
    printed = capsys.readouterr().out
    assert "setting: optim.lr=0.01" in printed and "setting: optim.lr=0.1" in printed
    assert "joint optimum over the learning rate" in printed and "no_runs: 1 point(s)" in printed
    analysis_main(["figures", path, "--out", str(tmp_path / "fig")])
    for name in ("loss_vs_lambda", "lambda_star_vs_width", "loss_heatmap", "decayed_norm_vs_lambda"):
        for lr in ("0.01", "0.1"):
            assert (tmp_path / "fig" / f"{name}_optim.lr={lr}.png").stat().st_size > 5000
    analysis_main(
        ["figures", write_csv(df[df["width"] == 16], tmp_path / "one_width.csv"), "--out", str(tmp_path / "one")]
    )
    assert not list((tmp_path / "one").glob("lambda_star_vs_width*"))  # one width: no figure against width
    assert len(list((tmp_path / "one").glob("loss_vs_lambda*.png"))) == 2
    (tmp_path / "results" / "equilibrium").mkdir(parents=True)
    write_table(df, str(tmp_path / "results" / "planted.csv.gz"))
    planted_tensors(np.random.default_rng(0)).to_csv(tmp_path / "results" / "equilibrium" / "tensors.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text("# A\n" + "".join(README_ANSWER) + "after\n")
    written = build_paper(tmp_path / "results", out=tmp_path / "paper", replicates=20, readme=readme)
    assert all(p.stat().st_size > 0 for p in written)
    tex = (tmp_path / "paper" / "tables" / "numbers.tex").read_text()
    numbers = dict(re.findall(r"\\csname result:planted:([^\\]+)\\endcsname\{([^}]*)\}", tex))
    assert numbers["runs"] == f"{len(df):,}" and numbers["settings"] == "2"
    assert numbers["width:range"] == f"{df['width'].max() / df['width'].min():g}" and numbers["batch_size:range"] == "1"
    assert numbers["config:model.name"] == "resnet" and numbers["config:optim.batch_size"] == f"{BATCH}"
    assert "config:optim.lr" not in numbers and "config:data.n_train" not in numbers  # two values; none
    fitted = pd.read_csv(tmp_path / "fit" / "exponents.csv").set_index(["setting", "norm", "axis"])
    span = fitted.loc[("optim.lr=0.01", "sum", "width")]
    assert numbers["span:optim.lr=0.01:width"] == f"{span['axis_min']:g}--{span['axis_max']:g}"
    assert numbers["e:optim.lr=0.01:sum:width"].startswith(
        f"{fitted.loc[('optim.lr=0.01', 'sum', 'width'), 'exponent']:.3f} [".replace("-", "$-$")
    )
    params = df.loc[df["model"] != "linear", "n_params"].max()
    assert f"\\newcommand{{\\NetworkParamsMax}}{{{params / 1e6:.1f} million}}" in tex
    assert "\\newcommand{\\CoverageCoef}" in tex and "\\errmessage{no number result:#1" in tex
    answer = (tmp_path / "paper" / "tables" / "answer.tex").read_text()
    assert answer.count("\\textit{planted}") == 1 and "CoverageJointExponent" in tex
    markdown = (tmp_path / "paper" / "tables" / "answer.md").read_text()
    for setting in ("0.01", "0.1", "tuned"):
        assert answer.count(f"\\quad optim.lr={setting} & width") == 1
        assert markdown.count(f"| planted | optim.lr={setting} | width ") == 1
    assert readme.read_text() == "# A\n" + README_ANSWER[0] + markdown + README_ANSWER[1] + "after\n"
    # the other metrics beside: the table has error rates but no best-epoch losses, and no kept calibrations
    assert "| λ*_sum, best-epoch loss | λ*_sum, error rate |" in markdown and "| – (no best_val_loss) |" in markdown
    assert "val_err:verdict:optim.lr=0.01:sum:width" in numbers and "§" in markdown
    equilibrium = dict(re.findall(r"\\csname result:equilibrium:([^\\]+)\\endcsname\{([^}]*)\}", tex))
    shortest, longest = sorted({int(df["epochs"].min()), int(equilibrium["epochs"])})  # the sweep's and equilibrium's
    assert f"\\newcommand{{\\NetworkEpochs}}{{{shortest}--{longest}}}" in tex
    _, lo, hi = map(float, re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", equilibrium["e:angle:coef"]).groups())
    assert lo <= 0.5 <= hi and equilibrium["seeds"] == "5" and equilibrium["predicted:norm:coef"] == "$-$0.5"
    assert equilibrium["predicted:norm:elements"] == "+0.5" and equilibrium["elements"] == "432--4,608"
    assert (tmp_path / "paper" / "tables" / "equilibrium.tex").read_text().count("\\times\\!10^{") == 5
    assert (tmp_path / "paper" / "figures" / "equilibrium.pdf").stat().st_size > 5000
    appendix = (tmp_path / "paper" / "tables" / "planted" / "appendix.tex").read_text()
    assert appendix.count("\\includegraphics{figures/planted/loss_vs_lambda_optim.lr=") == 2
    assert (tmp_path / "paper" / "figures" / "planted" / "coef_star_vs_axes.pdf").is_file()
    curvature = pd.read_csv(tmp_path / "paper" / "tables" / "planted" / "curvature.csv").set_index("setting")
    assert numbers["curvature:optim.lr=0.01:width"] == curvature.loc["optim.lr=0.01", "verdict"]
    assert numbers["q:optim.lr=0.01:width"].startswith(
        f"{curvature.loc['optim.lr=0.01', 'q']:.3f} [".replace("-", "$-$")
    )
    assert (tmp_path / "paper" / "tables" / "curvature.tex").read_text().count("\\quad optim.lr=0.01 & width") == 1
    assert "\\newcommand{\\CurvQBentQuiet}" in tex and "\\newcommand{\\CurvSweeps}{20}" in tex
    assert len(pd.read_csv(tmp_path / "paper" / "tables" / "curvature_calibration.csv")) == 16
