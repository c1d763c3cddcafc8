"""The paper's LaTeX tables other than the answer (``answer``): each experiment's appendix (what was run,
coef* and λ* per point, the fits' evidence), the predictions, the calibration, the seed bootstrap and the
equilibrium check (docs/analysis.md#the-paper)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.bootstrap import changed_by_check, meta_sd
from analysis.fit import AXES
from analysis.table import CONFIG
from analysis.tex import AXIS_HEADERS, fixed, heading, interval, law_tex, minus, sci, signed, tabular, tex, within_page
from wdbench.normalisation import NORMS

EVIDENCE_CAPTION = (
    "the metric against coef, a panel per width: runs with their seed offset removed, the seed "
    "means, the fitted spline, coef$^*$ on it with its 95\\% interval, and the $\\lambda=0$ baseline."
)


def experiment_tex(name: str, fit: dict, figures: list[str]) -> str:
    """An experiment's appendix: what was run (every config field of its runs), coef* and λ* per
    point, and the evidence for each fit (the metric against coef)."""
    stars = fit["coef_star"]
    parts = [
        f"\\subsection{{Experiment \\texttt{{{tex(name)}}}}}\\label{{app:{name}}}",
        "\\begin{center}\\small",
        setup_tex(fit["runs"]),
        "\\end{center}",
        "\\begin{center}\\scriptsize",
        "\\setlength{\\tabcolsep}{4pt}",
    ]
    for setting, s in stars.groupby("setting", sort=True):
        if stars["setting"].nunique() > 1:
            # a caption line, not \paragraph: LaTeX refuses that inside center
            parts.append(f"\\par\\medskip\\textit{{Setting {tex(setting)}}}\\par\\smallskip")
        parts.append(coef_star_tex(s))
    parts.append("\\end{center}")
    parts += [
        f"\\begin{{figure}}[tbp]\\centering\\includegraphics{{{path}}}\\caption{{Experiment "
        f"\\texttt{{{tex(name)}}}: {EVIDENCE_CAPTION}}}\\end{{figure}}"
        for path in figures
    ]
    return "\n".join(parts) + "\n\\clearpage\n"


def setup_tex(runs: pd.DataFrame) -> str:
    """Every recorded config field with its value(s): what was run, derived from the results."""
    lines = []
    for column in sorted(c for c in runs.columns if c.startswith(CONFIG)):
        values = runs[column].dropna().astype(str).unique()
        numeric = pd.to_numeric(pd.Series(values), errors="coerce")
        ordered = values[np.argsort(numeric.to_numpy())] if numeric.notna().all() else sorted(values)
        shown = ", ".join(ordered[:8]) + (f" … ({len(values)} values)" if len(values) > 8 else "")
        lines.append(f"\\texttt{{{tex(column[len(CONFIG) :])}}} & {tex(shown) if len(values) else 'null'}")
    return tabular("ll", r"config field & value(s) in the kept runs", lines)


def coef_star_tex(stars: pd.DataFrame) -> str:
    """A point per row, named by every axis that varies in the setting."""
    axes = [a for a in AXES if stars[a].nunique() > 1] or ["width"]
    lines, lams = [], []
    for _, s in stars.sort_values(axes).iterrows():
        point = " & ".join(f"{s[a]}" for a in axes)
        lines.append(
            f"{point} & {s['n_decayed']:,} & {s['n_seeds']} & "
            f"{interval(s['coef_star'], s['coef_lo'], s['coef_hi'])} & "
            f"{sci(s['coef_near_lo'])}--{sci(s['coef_near_hi'])} & "
            f"{interval(s['gain'], s['gain_lo'], s['gain_hi'], fixed)} & {tex(s['status'])}"
        )
        lams.append(
            f"{point} & " + " & ".join(interval(s[f"lam_star_{n}"], s[f"lam_lo_{n}"], s[f"lam_hi_{n}"]) for n in NORMS)
        )
    header = " & ".join(AXIS_HEADERS[a] for a in axes)
    return (
        within_page(
            tabular(
                "r" * len(axes) + "rrlllr",
                header + r" & $N_\mathrm{decayed}$ & seeds & "
                r"coef$^*$ [95\%] & near-optimal coef & gain over $\lambda=0$ [95\%] & status",
                lines,
            )
        )
        + "\n\\medskip\n"
        + within_page(
            tabular(
                "r" * len(axes) + "lll",
                header + r" & $\lambda^*_\mathrm{sum}$ [95\%] & "
                r"$\lambda^*_\mathrm{mean}$ [95\%] & $\lambda^*_\text{per-step}$ [95\%]",
                lams,
            )
        )
    )


def predictions_tex(predictions: dict[str, pd.DataFrame]) -> str:
    """Each published law an experiment tests, its predicted exponent beside the measured one; the
    experiment's name heads its rows."""
    lines = []
    for name, table in predictions.items():
        if len(table):
            lines.append(heading(name, 5))
        lines += [
            f"\\quad {law_tex(r['source'])} & {AXIS_HEADERS.get(r['axis'], tex(r['axis']))} & "
            f"{minus(format(r['predicted'], 'g'))} & "
            f"{fixed(r['exponent'], 3)} [{fixed(r['lo'], 3)}, {fixed(r['hi'], 3)}] & "
            f"{ {True: 'yes', False: 'no'}.get(r['consistent'], 'not fitted') }"
            for _, r in table.iterrows()
        ]
    return tabular("llrll", r"prediction & axis & predicted & measured [95\%] & inside", lines)


def calibration_tex(table: pd.DataFrame) -> str:
    lines = [
        f"{tex(r['quantity'])} & {r['intervals']} & {r['withheld']} & "
        f"{r['coverage']:.3f} [{r['coverage_lo']:.3f}, {r['coverage_hi']:.3f}] & {r['median_width']:.2f}"
        for _, r in table.iterrows()
    ]
    return tabular("lrrlr", r"nominal 95\% interval of & intervals & withheld & coverage [95\%] & median width", lines)


def bootstrap_tex(boots: dict[str, pd.DataFrame]) -> str:
    """Per bootstrapped experiment, setting and axis: replicates that kept every fitted point bounded, the
    bootstrap's SD of the exponent over the meta-regression's (over those replicates), and in each
    normalisation the check's 90% interval and verdict over every replicate, marked where the verdict
    differs from the answer table's."""
    lines = []
    for name, boot in boots.items():
        lines.append(heading(name, 4 + len(NORMS)))
        for (setting, axis), rows in boot.groupby(["setting", "axis"], sort=True):
            by_norm = rows.set_index("norm")
            coef = by_norm.loc["coef"]
            cells = []
            for norm in NORMS:
                b = by_norm.loc[norm]
                mark = r"$^\dagger$" if changed_by_check(b) else ""
                cells.append(f"[{fixed(b['robust_lo90'])}, {fixed(b['robust_hi90'])}] {b['robust_verdict']}{mark}")
            ratio = fixed(coef["boot_sd"] / meta_sd(coef))
            lines.append(
                f"\\quad {tex(setting)} & {AXIS_HEADERS.get(axis, tex(axis))} & {coef['kept']} & {ratio} & "
                + " & ".join(cells)
            )
    return tabular(
        "llrr" + "l" * len(NORMS),
        "setting & axis & bounded & SD ratio & "
        + " & ".join(f"$\\lambda^*_\\text{{{n.replace('_', '-')}}}$: 90\\% interval, verdict" for n in NORMS),
        lines,
    )


def equilibrium_tex(ratios: pd.DataFrame, exponents: pd.DataFrame) -> str:
    """Measured/predicted per coef (95% over seeds), then each quantity's exponents against coef and C."""
    by = ratios.set_index(["coef", "quantity"])
    lines = [
        f"{sci(coef)} & "
        + " & ".join(
            f"{by.loc[(coef, q), 'ratio']:.2f} [{by.loc[(coef, q), 'lo']:.2f}, {by.loc[(coef, q), 'hi']:.2f}]"
            for q in ("norm", "angle")
        )
        for coef in sorted(ratios["coef"].unique())
    ]
    e = exponents.set_index(["quantity", "variable"])
    for i, (variable, label) in enumerate((("coef", "coef"), ("elements", "size $C$"))):
        lines.append(
            (r"\midrule " if i == 0 else "")
            + f"exponent in {label}: measured & "
            + " & ".join(
                f"{fixed(e.loc[(q, variable), 'exponent'])} [{fixed(e.loc[(q, variable), 'lo'])}, "
                f"{fixed(e.loc[(q, variable), 'hi'])}]"
                for q in ("norm", "angle")
            )
        )
        lines.append(
            f"\\phantom{{exponent in {label}:}} predicted & "
            + " & ".join(minus(signed(e.loc[(q, variable), "predicted"])) for q in ("norm", "angle"))
        )
    return tabular("lll", r"coef & norm [95\%] & angular update [95\%]", lines)


def curvature_tex(curvatures: dict[str, pd.DataFrame]) -> str:
    """Per experiment, setting and axis with a quadratic fit (``analysis.curvature``, at least 4 values of the
    axis bounded): q, the local slopes at the fitted range's ends, the slope's change against its margin, the
    verdict. Rows too few to fit are left to the experiment's curvature.csv."""
    lines = []
    for name, table in curvatures.items():
        fitted = table[np.isfinite(table["q"].astype(float))]
        if len(fitted):
            lines.append(heading(name, 8))
        lines += [
            f"\\quad {tex(r['setting'])} & {AXIS_HEADERS.get(r['axis'], tex(r['axis']))} "
            f"{r['axis_min']:g}--{r['axis_max']:g} & {r['n_points']} & "
            f"{fixed(r['q'])} [{fixed(r['q_lo'])}, {fixed(r['q_hi'])}] & "
            f"{fixed(r['slope_low'])} [{fixed(r['slope_low_lo'])}, {fixed(r['slope_low_hi'])}] & "
            f"{fixed(r['slope_high'])} [{fixed(r['slope_high_lo'])}, {fixed(r['slope_high_hi'])}] & "
            f"[{fixed(r['change_lo90'])}, {fixed(r['change_hi90'])}] $\\pm${fixed(r['margin'], 3)} & {tex(r['verdict'])}"
            for _, r in fitted.iterrows()
        ]
    return tabular(
        "llrllll" + "l",
        r"setting & axis, range & points & $q$ [95\%] & slope at min [95\%] & slope at max [95\%] & "
        r"change: 90\%, margin & verdict",
        lines,
    )


def curvature_calibration_tex(table: pd.DataFrame) -> str:
    """``calibrate --curvature``: per quantity, the coverage of a 95% interval or the rate of a verdict."""
    lines = [
        f"{tex(r['quantity'])} & {r['intervals']} & {r['withheld']} & "
        f"{r['coverage']:.3f} [{max(r['coverage_lo'], 0.0):.3f}, {r['coverage_hi']:.3f}] & {fixed(r['median_width'])}"
        for _, r in table.iterrows()
    ]
    return tabular(
        "lrrlr", r"quantity, planted law, sweeps & fitted & withheld & coverage or rate [95\%] & median width", lines
    )
