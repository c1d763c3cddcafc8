"""``paper``: regenerate everything under paper/ (figures, LaTeX tables, number macros) from the
results table kept in the repository. Nothing is trained and no number in the paper is typed by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures import all_figures
from analysis.fit import identity_table, lambda_star_table, scaling_table
from analysis.table import read_table

PAPER = Path(__file__).resolve().parents[1] / "paper"
NORM_NAME = {"sum": "Sum", "mean": "Mean", "per_step": "PerStep"}


def _num(x: float, digits: int = 2) -> str:
    return "--" if not np.isfinite(x) else f"{x:.{digits}f}"


def _sci(x: float) -> str:
    if not np.isfinite(x) or x <= 0:
        return "--"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"${mantissa}\\times10^{{{int(exponent)}}}$"


def lambda_star_tex(stars: pd.DataFrame) -> str:
    lines = [r"\begin{tabular}{llrrrl}", r"\toprule",
             r"normalisation & width & $N_\mathrm{decayed}$ & $\lambda^*$ & 95\% CI & edge \\", r"\midrule"]
    for _, s in stars.sort_values(["norm", "width"]).iterrows():
        ci = f"[{_sci(s['lam_star_lo'])}, {_sci(s['lam_star_hi'])}]" if np.isfinite(s["lam_star_lo"]) else "--"
        lines.append(f"{s['norm'].replace('_', '-')} & {s['width']} & {s['n_decayed']:,} & {_sci(s['lam_star'])} "
                     f"& {ci} & {'yes' if s['at_edge'] else ''} \\\\")
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def scaling_tex(scaling: pd.DataFrame) -> str:
    lines = [r"\begin{tabular}{llrlrr}", r"\toprule",
             r"normalisation & against & $\alpha$ & 95\% CI & widths & $R^2$ \\", r"\midrule"]
    for _, s in scaling.sort_values(["x", "norm"]).iterrows():
        x = "width" if s["x"] == "width" else r"$N_\mathrm{params}$"
        lines.append(f"{s['norm'].replace('_', '-')} & {x} & {_num(s['alpha'])} & "
                     f"[{_num(s['alpha_lo'])}, {_num(s['alpha_hi'])}] & {s['n_widths']} & {_num(s['r2'])} \\\\")
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def identities_tex(identities: pd.DataFrame) -> str:
    lines = [r"\begin{tabular}{lrrr}", r"\toprule", r"identity & observed & expected & difference \\", r"\midrule"]
    for _, s in identities.iterrows():
        label = s["identity"].replace("alpha_per_step", r"\alpha_\text{per-step}").replace(
            "alpha_mean", r"\alpha_\text{mean}").replace("alpha_sum", r"\alpha_\text{sum}").replace("kappa", r"\kappa")
        lines.append(f"${label}$ & {_num(s['observed'])} & {_num(s['expected'])} & {_num(s['difference'])} \\\\")
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def numbers_tex(runs: pd.DataFrame, stars: pd.DataFrame, scaling: pd.DataFrame) -> str:
    """\\newcommand macros for every number the text quotes."""
    first = runs.iloc[0]
    macros = {
        "NRuns": f"{len(runs)}", "NCompleted": f"{(runs['status'] == 'completed').sum()}",
        "NDiverged": f"{(runs['status'] == 'diverged').sum()}", "NFailed": f"{(runs['status'] == 'failed').sum()}",
        "Widths": ", ".join(str(w) for w in sorted(runs["width"].unique())),
        "NSeeds": f"{runs['seed'].nunique()}", "NTrain": f"{int(first['n_train']):,}",
        "BatchSize": f"{int(first['batch_size'])}", "Epochs": f"{int(first['epochs'])}",
        "Model": str(first["model"]), "Optimizer": str(first["optimizer"]), "LR": f"{first['lr']:g}",
        "Dataset": str(first.get("dataset", "")), "Apply": str(first["apply"]),
    }
    for _, s in scaling[scaling["x"] == "width"].drop_duplicates("norm").iterrows():
        name = NORM_NAME[s["norm"]]
        macros[f"Alpha{name}"] = _num(s["alpha"])
        macros[f"Alpha{name}Lo"] = _num(s["alpha_lo"])
        macros[f"Alpha{name}Hi"] = _num(s["alpha_hi"])
        macros[f"Alpha{name}Widths"] = f"{s['n_widths']}"
    return "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in macros.items())


def build_paper(table: Path, out: Path = PAPER, metric: str = "val_loss") -> list[Path]:
    runs = read_table(str(table))
    stars = lambda_star_table(runs, metric)
    scaling = scaling_table(stars)
    identities = identity_table(stars, scaling)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("lambda_star", stars), ("scaling", scaling), ("identities", identities)):
        frame.to_csv(tables / f"{name}.csv", index=False)
        written.append(tables / f"{name}.csv")
    for name, text in (("lambda_star.tex", lambda_star_tex(stars)), ("scaling.tex", scaling_tex(scaling)),
                       ("identities.tex", identities_tex(identities)),
                       ("numbers.tex", numbers_tex(runs, stars, scaling))):
        (tables / name).write_text(text)
        written.append(tables / name)
    return written + all_figures(runs, stars, metric, out / "figures")
