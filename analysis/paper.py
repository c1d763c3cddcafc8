"""``paper``: regenerate everything under paper/ (figures, LaTeX tables, number macros, the measured
calibration) from the results table kept in the repository. Nothing is trained, no number in the
paper is typed by hand, and a table with several settings gets a table and figures per setting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.calibrate import GOAL, coverage
from analysis.figures import all_figures, slug
from analysis.scaling import MARGIN
from analysis.table import CONFIG
from wdbench.penalty import NORMS

PAPER = Path(__file__).resolve().parents[1] / "paper"
CALIBRATION_REPLICATES = 400
LAMBDA, TEX_LAMBDA = "λ", r"$\lambda$"
FIGURES = {"lambda_star_vs_width": "Optimal weight decay against width. (a) coef$^*$ with its 95\\% interval (test "
           "inversion), the near-optimal range and the fitted power law; (b) $\\lambda^*$ in each normalisation "
           "relative to its fit at the middle width; grey: the equivalence region (moves less than the margin over "
           "the widths). Per-step coincides with sum at fixed $B$ and $N_\\mathrm{train}$.",
           "loss_vs_lambda": "The metric against coef, a panel per width: runs with their seed offset removed, the "
                             "seed means, the fitted spline, coef$^*$ on it with its 95\\% interval, and the "
                             "$\\lambda=0$ baseline.",
           "loss_heatmap": "The metric over width $\\times$ coef: mean over seeds minus the width's best, one "
                           "colour scale for every width and setting, coef$^*$ marked with its 95\\% interval.",
           "decayed_norm_vs_lambda": "Norm of the decayed weights at the end of training."}


def _tex(text: str) -> str:
    return str(text).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")


def _sci(x: float) -> str:
    if not np.isfinite(x) or x <= 0:
        return "--"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"${mantissa}\\!\\times\\!10^{{{int(exponent)}}}$"


def _interval(x: float, lo: float, hi: float, fmt=_sci) -> str:
    return f"{fmt(x)} [{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) else f"{fmt(x)} [open]"


def _fixed(x: float) -> str:
    return "--" if not np.isfinite(x) else f"{x:.2f}"


def _table(columns: str, header: str, lines: list[str]) -> str:
    return "\n".join([rf"\begin{{tabular}}{{{columns}}}", r"\toprule", header + r" \\", r"\midrule",
                      *[line + r" \\" for line in lines], r"\bottomrule", r"\end{tabular}", ""])


def answer_tex(exponents: pd.DataFrame) -> str:
    """The answer: per setting and normalisation, the exponent of λ* with intervals and the verdict."""
    lines = []
    for _, e in exponents[exponents["norm"] != "coef"].iterrows():
        norm = e["norm"].replace("_", "-")
        lines.append(f"{_tex(e['setting'])} & {norm} & {_tex(e['axis'])} & "
                     f"{_fixed(e['exponent'])} [{_fixed(e['lo'])}, {_fixed(e['hi'])}] & "
                     f"[{_fixed(e['lo90'])}, {_fixed(e['hi90'])}] & $\\pm${e['margin']:.3f} & {e['verdict']}")
    return _table("lllllll", r"setting & $\lambda^*$ in & axis & exponent [95\%] & 90\% & margin & verdict", lines)


def coef_star_tex(stars: pd.DataFrame) -> str:
    lines, lams = [], []
    for _, s in stars.sort_values("width").iterrows():
        lines.append(f"{s['width']} & {s['n_decayed']:,} & {s['n_seeds']} & "
                     f"{_interval(s['coef_star'], s['coef_lo'], s['coef_hi'])} & "
                     f"{_sci(s['coef_near_lo'])}--{_sci(s['coef_near_hi'])} & "
                     f"{_interval(s['gain'], s['gain_lo'], s['gain_hi'], _fixed)} & {s['status']}")
        lams.append(f"{s['width']} & " + " & ".join(
            _interval(s[f"lam_star_{n}"], s[f"lam_lo_{n}"], s[f"lam_hi_{n}"]) for n in NORMS))
    return (_table("rrrlllr", r"width & $N_\mathrm{decayed}$ & seeds & coef$^*$ [95\%] & near-optimal coef & "
                   r"gain over $\lambda=0$ [95\%] & status", lines) + "\n\\medskip\n"
            + _table("rlll", r"width & $\lambda^*_\mathrm{sum}$ [95\%] & $\lambda^*_\mathrm{mean}$ [95\%] & "
                     r"$\lambda^*_\text{per-step}$ [95\%]", lams))


def setup_tex(runs: pd.DataFrame) -> str:
    """Every recorded config field with its value(s): what was run, derived from the results."""
    lines = []
    for column in sorted(c for c in runs.columns if c.startswith(CONFIG)):
        values = runs[column].dropna().astype(str).unique()
        numeric = pd.to_numeric(pd.Series(values), errors="coerce")
        ordered = values[np.argsort(numeric.to_numpy())] if numeric.notna().all() else sorted(values)
        shown = ", ".join(ordered[:8]) + (f" … ({len(values)} values)" if len(values) > 8 else "")
        lines.append(f"\\texttt{{{_tex(column[len(CONFIG):])}}} & {_tex(shown) if len(values) else 'null'}")
    return _table("ll", r"config field & value(s) in the kept runs", lines)


def calibration_tex(table: pd.DataFrame) -> str:
    lines = [f"{_tex(r['quantity']).replace(LAMBDA, TEX_LAMBDA)} & {r['intervals']} & {r['withheld']} & "
             f"{r['coverage']:.3f} [{r['coverage_lo']:.3f}, {r['coverage_hi']:.3f}] & {r['median_width']:.2f}"
             for _, r in table.iterrows()]
    return _table("lrrlr", r"nominal 95\% interval of & intervals & withheld & coverage [95\%] & median width", lines)


def numbers_tex(runs: pd.DataFrame, stars: pd.DataFrame, exponents: pd.DataFrame, calibration: pd.DataFrame,
                replicates: int) -> str:
    """\\newcommand macros for every number the text quotes; none is taken from an arbitrary row."""
    seeds = stars["n_seeds"]
    macros = {
        "NRuns": f"{len(runs)}", "NCompleted": f"{(runs['status'] == 'completed').sum()}",
        "NDiverged": f"{(runs['status'] == 'diverged').sum()}", "NFailed": f"{(runs['status'] == 'failed').sum()}",
        "NSettings": f"{stars['setting'].nunique()}", "Widths": ", ".join(str(w) for w in sorted(stars["width"].unique())),
        "SeedsMin": f"{seeds.min()}", "SeedsMax": f"{seeds.max()}", "Margin": f"{MARGIN:g}",
        "NCoefs": f"{runs.loc[runs['coef'] > 0, 'coef'].round(12).nunique()}",
        "NOk": f"{(stars['status'] == 'ok').sum()}", "NPoints": f"{len(stars)}",
        "CalibrationReplicates": f"{replicates}", "GoalLo": f"{GOAL[0]:.2f}", "GoalHi": f"{GOAL[1]:.2f}",
    }
    for _, r in calibration.iterrows():
        name = {"log10 coef* per width": "CoverageCoef", "exponent against width": "CoverageExponent",
                "gain over λ = 0": "CoverageGain", "joint optimum: lr*": "CoverageJointLr",
                "joint optimum: coef*": "CoverageJointCoef"}[r["quantity"]]
        macros[name] = f"{r['coverage']:.3f}"
    verdicts = exponents[(exponents["norm"] != "coef") & (exponents["axis"] == "width")]
    counts = verdicts["verdict"].value_counts()
    for verdict in ("still", "moves", "undecided"):
        macros[f"N{verdict.capitalize()}"] = f"{counts.get(verdict, 0)}"
    return "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in macros.items())


def build_paper(table: Path, out: Path = PAPER, metric: str = "val_loss",
                replicates: int = CALIBRATION_REPLICATES) -> list[Path]:
    from analysis.__main__ import analyse

    fit = analyse(str(table), metric)
    runs, stars, exponents = fit["runs"], fit["coef_star"], fit["exponents"]
    calibration = coverage(replicates)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for stale in tables.glob("coef_star_*.tex"):
        stale.unlink()
    texts = {"answer.tex": answer_tex(exponents), "setup.tex": setup_tex(runs),
             "calibration.tex": calibration_tex(calibration),
             "numbers.tex": numbers_tex(runs, stars, exponents, calibration, replicates)}
    settings = sorted(stars["setting"].unique())
    inputs = []
    for setting in settings:
        name = f"coef_star_{slug(setting)}.tex"
        texts[name] = coef_star_tex(stars[stars["setting"] == setting])
        inputs.append(f"\\paragraph{{Setting {_tex(setting)}.}}\n\\input{{tables/{name}}}\n")
    texts["coef_star_all_settings.tex"] = "\\setlength{\\tabcolsep}{4pt}\n" + "\n".join(inputs)
    texts["figures.tex"] = "".join(
        f"\\begin{{figure}}[tbp]\n  \\centering\n  \\includegraphics{{figures/{name}"
        f"{'' if len(settings) == 1 else '_' + slug(setting)}.pdf}}\n  \\caption{{{caption}"
        f"{'' if len(settings) == 1 else f' Setting: {_tex(setting)}.'}}}\n\\end{{figure}}\n\n"
        for setting in settings for name, caption in FIGURES.items())
    written = []
    for name, text in texts.items():
        (tables / name).write_text(text)
        written.append(tables / name)
    for name in ("coef_star", "exponents", "consistency"):
        fit[name].to_csv(tables / f"{name}.csv", index=False)
        written.append(tables / f"{name}.csv")
    calibration.to_csv(tables / "calibration.csv", index=False)
    return written + [tables / "calibration.csv"] + all_figures(fit, metric, out / "figures")
