"""``paper``: regenerate everything under paper/ (figures, LaTeX tables, number macros, the measured
calibration) from the results tables kept in the repository, one per experiment
(paper/results/NAME.csv.gz). Nothing is trained and no number in the paper is typed by hand: the
text quotes an experiment's numbers as ``\\result{NAME:key}`` (tables/numbers.tex), and a key the kept
results lack stops the build. Each experiment gets its figures (figures/NAME/: coef* against its
axes, λ* in each normalisation per setting, the fits' evidence) and an appendix section (what was
run, coef* and λ* per point); the answer and predictions tables hold every experiment."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.bootstrap import MIN_KEPT, REPLICATES, changed_by_check, kept_bootstrap, meta_sd
from analysis.calibrate import GOAL, SEED_SLOPE, coverage
from analysis.equilibrium import exponents as equilibrium_exponents
from analysis.equilibrium import figure as equilibrium_figure
from analysis.equilibrium import ratios as equilibrium_ratios
from analysis.equilibrium import read_tensors
from analysis.figures import all_figures
from analysis.fit import AXES
from analysis.pipeline import analyse
from analysis.scaling import MARGIN
from analysis.table import COLUMNS, CONFIG, AnalysisError
from wdbench.normalisation import NORMS

PAPER = Path(__file__).resolve().parents[1] / "paper"
README = PAPER.parent / "README.md"  # holds the answer table verbatim, between these markers
README_ANSWER = ("<!-- answer table: paper/tables/answer.md, written by `python -m analysis paper` -->\n",
                 "<!-- end of answer table -->\n")
CALIBRATION_REPLICATES = 400
EVIDENCE_CAPTION = ("the metric against coef, a panel per width: runs with their seed offset removed, the seed "
                    "means, the fitted spline, coef$^*$ on it with its 95\\% interval, and the $\\lambda=0$ baseline.")


UNICODE_TEX = {"λ": r"$\lambda$", "η": r"$\eta$", "σ": r"$\sigma$", "τ": r"$\tau$", "μ": r"$\mu$", "·": r"$\cdot$",
               "²": r"$^2$", "∝": r"$\propto$", "√": r"$\surd$", "×": r"$\times$", "≤": r"$\le$", "≥": r"$\ge$",
               "†": r"$^\dagger$", "–": "--", "—": "---"}


TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
               "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
KEY_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,=:+-/() μλη")


def _tex(text: str) -> str:
    """Plain text (a setting, a field's value, a prediction's source) safe in LaTeX, symbols as math."""
    return "".join(TEX_SPECIAL.get(ch) or UNICODE_TEX.get(ch, ch) for ch in str(text))


LAW_SYMBOLS = {"λ": r"\lambda ", "η": r"\eta ", "σ": r"\sigma ", "∝": r"\propto ", "·": r"\cdot ", "²": "^2"}
LAW_OPERATORS = set("∝·=/()")
LAW_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_*. ") | LAW_OPERATORS | set(LAW_SYMBOLS)
LAW_TOKEN = re.compile(r"sqrt\(|[A-Za-zλησ]+(?:_[A-Za-z]+)?\*?|\S")


def _law_tex(source: str) -> str:
    r"""A prediction's source, "Authors year: law", with its law typeset as math: subscripts, starred optima,
    square roots, names of quantities upright ("λ_t* ∝ B/(η·N_train)" gives $\lambda_t^* \propto B/(\eta\cdot
    N_\text{train})$). A law with a character outside LAW_CHARACTERS is set as plain text."""
    who, colon, law = source.rpartition(": ")
    if not colon or not set(law) <= LAW_CHARACTERS:
        return _tex(source)
    math, closers, previous = [], [], None
    for match in LAW_TOKEN.finditer(law):
        token = match.group()
        if previous is not None and match.start() > previous.end() and not {previous.group()[-1], token[0]} & LAW_OPERATORS:
            math.append(r"\ ")  # a space between two words ("η_layer·λ_t constant") stays a space
        previous = match
        if token == "sqrt(":
            math.append(r"\sqrt{"), closers.append("}")
        elif token == "(":
            math.append("("), closers.append(")")
        elif token == ")":
            math.append(closers.pop() if closers else ")")
        elif token in LAW_SYMBOLS or token in "=/":
            math.append(LAW_SYMBOLS.get(token, token))
        else:
            name, _, subscript = token.rstrip("*").partition("_")
            name = LAW_SYMBOLS.get(name) or (rf"\mathrm{{{name}}}" if len(name) > 1 else name)
            if subscript:
                name += f"_{subscript}" if len(subscript) == 1 else rf"_\text{{{subscript}}}"
            math.append(name + ("^*" if token.endswith("*") else ""))
    if closers:  # a bracket left open: as math it would not compile
        return _tex(source)
    return f"{_tex(who)}: ${''.join(math).strip()}$"


def _sci(x: float) -> str:
    if not np.isfinite(x) or x <= 0:
        return "--"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"${mantissa}\\!\\times\\!10^{{{int(exponent)}}}$"


def _interval(x: float, lo: float, hi: float, fmt=_sci) -> str:
    return f"{fmt(x)} [{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) else f"{fmt(x)} [open]"


def _fixed(x: float, digits: int = 2) -> str:
    """x to ``digits`` decimals with a minus sign; a negative number that rounds to zero prints as 0."""
    return "--" if not np.isfinite(x) else _minus(f"{x:.{digits}f}".replace(f"-{0:.{digits}f}", f"{0:.{digits}f}"))


def _minus(text: str) -> str:
    """A number's hyphen as a minus sign ("2--6", a range, stays)."""
    return re.sub(r"(?<!-)-(?=\d)", "$-$", text)


def _table(columns: str, header: str, lines: list[str]) -> str:
    return "\n".join([rf"\begin{{tabular}}{{{columns}}}", r"\toprule", header + r" \\", r"\midrule",
                      *[line + r" \\" for line in lines], r"\bottomrule", r"\end{tabular}", ""])


def _grid_ends(fits: list) -> dict[tuple, tuple[float, float]]:
    """Per fitted point (setting, *axes): the smallest and largest coef > 0 it ran."""
    ends = {}
    for key, group, _ in fits:
        coefs = group.loc[group["coef"] > 0, "coef"]
        ends[tuple(key)] = (coefs.min(), coefs.max()) if len(coefs) else (np.nan, np.nan)
    return ends


def near_everywhere(points: pd.DataFrame, ends: dict[tuple, tuple[float, float]]) -> str:
    """The coefs within one run's noise of the optimum at every point of a setting (the intersection of
    their near-optimal ranges), as text: "a–b"; "≤b" or "≥a" where the binding end is a grid's end (the
    range goes on past it); "whole grid"; "none" where the points share no coef; "–" where a point has
    no near-optimal range (edge, too few runs) or the setting has no points of its own (the tuned lr)."""
    if points.empty or not (np.isfinite(points["coef_near_lo"]) & np.isfinite(points["coef_near_hi"])).all():
        return "–"
    lo, hi = points["coef_near_lo"].max(), points["coef_near_hi"].min()
    if lo > hi:
        return "none"
    grid = np.array([ends[(r["setting"], *(r[a] for a in AXES))] for _, r in points.iterrows()])

    def at_grid_end(values, bound, grid_end):  # every point that sets the bound stops at its grid's end
        binding = np.isclose(values, bound, rtol=1e-9)
        return bool(np.isclose(values[binding], grid_end[binding], rtol=1e-9).all())

    open_lo = at_grid_end(points["coef_near_lo"].to_numpy(), lo, grid[:, 0])
    open_hi = at_grid_end(points["coef_near_hi"].to_numpy(), hi, grid[:, 1])
    return {(True, True): "whole grid", (True, False): f"≤{hi:.2g}", (False, True): f"≥{lo:.2g}",
            (False, False): f"{lo:.2g}–{hi:.2g}"}[(open_lo, open_hi)]


def answer_rows(fits: dict[str, dict], boots: dict[str, pd.DataFrame] | None = None) -> list[dict]:
    """The answer, every experiment at once: per setting and axis (with its range), the exponent of λ*
    in each normalisation with its 95% interval and verdict, and the λ_sum near-optimal at every point
    of the setting; a setting with no fitted exponent (the tuned lr's too) says how many of its optima
    were bounded. A verdict that the seed bootstrap's check (``boots``, by experiment) changes is marked."""
    rows = []
    for name, fit in fits.items():
        boot = (boots or {}).get(name)
        changed = set() if boot is None else set(map(tuple, boot.loc[
            changed_by_check(boot), ["setting", "norm", "axis"]].to_numpy().tolist()))
        e, stars, tuned = fit["exponents"], fit["coef_star"], fit["tuned"]
        e = e[e["norm"].isin(NORMS) & np.isfinite(pd.to_numeric(e["exponent"]))]
        ends = _grid_ends(fit["fits"])
        for setting in sorted(set(stars["setting"]) | set(tuned["setting"]) | set(e["setting"])):
            points, mine = stars[stars["setting"] == setting], e[e["setting"] == setting]
            optima = points if len(points) else tuned[tuned["setting"] == setting]
            common = {"experiment": name, "setting": setting, "near": near_everywhere(points, ends)}
            if mine.empty:
                rows.append({**common, "axis": None, "cells": None,
                             "bounded": f"{(optima['status'] == 'ok').sum()} of {len(optima)}"})
            for axis, by_axis in mine.groupby("axis", sort=True):
                by_norm = by_axis.set_index("norm")
                first = by_axis.iloc[0]
                rows.append({**common, "axis": (axis, first["axis_min"], first["axis_max"]),
                             "fitted": (int(first["n_points"]), int(first["n_points"] + first["n_left_out"])),
                             "cells": {n: by_norm.loc[n] for n in NORMS if n in by_norm.index},
                             "bootstrap_changed": {n for n in NORMS if (setting, n, axis) in changed}})
    return rows


def _fitted_count(fitted: tuple[int, int], unit: str = " optima") -> str:
    """" (k of n optima)" where some of a setting's n optima were left out of its exponent (open, edge)."""
    k, n = fitted
    return f" ({k} of {n}{unit})" if k < n else ""


def _heading(experiment: str, columns: int) -> str:
    """A table row naming the experiment whose rows follow (a column of names would not fit the page)."""
    return f"\\multicolumn{{{columns}}}{{l}}{{\\textit{{{_tex(experiment)}}}}}"


def _cell(c: pd.Series | None, changed: bool = False) -> str:
    """An exponent, its interval and verdict; † where the seed bootstrap's check changes the verdict."""
    return "–" if c is None else f"{c['exponent']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}] {c['verdict']}{'†' * changed}"


def answer_tex(rows: list[dict]) -> str:
    lines, last = [], None
    for row in rows:
        if row["experiment"] != last:  # the experiment's name heads its rows (a column of it would not fit)
            lines.append(_heading(row["experiment"], 3 + len(NORMS)))
            last = row["experiment"]
        if row["cells"] is None:
            cells = [f"\\multicolumn{{{1 + len(NORMS)}}}{{l}}{{no exponent fitted: {row['bounded']} optima bounded}}"]
        else:
            name, lo, hi = row["axis"]
            cells = [f"{AXIS_HEADERS[name]} {lo:g}--{hi:g}{_fitted_count(row['fitted'], unit='')}"]
            cells += [_minus(_tex(_cell(row["cells"].get(n), n in row["bootstrap_changed"]))) for n in NORMS]
        lines.append(f"\\quad {_tex(row['setting'])} & " + " & ".join(cells) + f" & {_minus(_tex(row['near']))}")
    return _table("ll" + "l" * len(NORMS) + "l", "setting & axis & " + " & ".join(
        f"$\\lambda^*_\\text{{{n.replace('_', '-')}}}$: $e$ [95\\%], verdict" for n in NORMS)
        + r" & near-optimal $\lambda_\mathrm{sum}$, every point", lines)


def answer_md(rows: list[dict]) -> str:
    """The answer table in Markdown, for the README (which must hold it verbatim)."""
    head = ["experiment", "setting", "axis", *(f"λ*_{n}: e [95%], verdict" for n in NORMS),
            "λ_sum near-optimal at every point"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if row["cells"] is None:
            cells = [f"no exponent fitted ({row['bounded']} optima bounded)"] + [""] * len(NORMS)
        else:
            name, lo, hi = row["axis"]
            cells = [f"{name} {lo:g}–{hi:g}{_fitted_count(row['fitted'])}"]
            cells += [_cell(row["cells"].get(n), n in row["bootstrap_changed"]).replace("-", "−") for n in NORMS]
        lines.append("| " + " | ".join([row["experiment"], row["setting"], *cells, row["near"]]) + " |")
    return "\n".join(lines) + "\n"


def predictions_tex(predictions: dict[str, pd.DataFrame]) -> str:
    """Each published law an experiment tests, its predicted exponent beside the measured one; the
    experiment's name heads its rows."""
    lines = []
    for name, table in predictions.items():
        if len(table):
            lines.append(_heading(name, 5))
        lines += [f"\\quad {_law_tex(r['source'])} & {AXIS_HEADERS.get(r['axis'], _tex(r['axis']))} & "
                  f"{_minus(format(r['predicted'], 'g'))} & "
                  f"{_fixed(r['exponent'], 3)} [{_fixed(r['lo'], 3)}, {_fixed(r['hi'], 3)}] & "
                  f"{ {True: 'yes', False: 'no'}.get(r['consistent'], 'not fitted')}" for _, r in table.iterrows()]
    return _table("llrll", r"prediction & axis & predicted & measured [95\%] & inside", lines)


def _within_page(table: str) -> str:
    """A table shrunk to the text width if it is wider (a point named by two axes is)."""
    return f"\\adjustbox{{max width=\\linewidth}}{{{table}}}\n"


AXIS_HEADERS = {"width": "width", "n_train": r"$N_\mathrm{train}$", "batch_size": "$B$"}


def coef_star_tex(stars: pd.DataFrame) -> str:
    """A point per row, named by every axis that varies in the setting."""
    axes = [a for a in AXES if stars[a].nunique() > 1] or ["width"]
    lines, lams = [], []
    for _, s in stars.sort_values(axes).iterrows():
        point = " & ".join(f"{s[a]}" for a in axes)
        lines.append(f"{point} & {s['n_decayed']:,} & {s['n_seeds']} & "
                     f"{_interval(s['coef_star'], s['coef_lo'], s['coef_hi'])} & "
                     f"{_sci(s['coef_near_lo'])}--{_sci(s['coef_near_hi'])} & "
                     f"{_interval(s['gain'], s['gain_lo'], s['gain_hi'], _fixed)} & {_tex(s['status'])}")
        lams.append(f"{point} & " + " & ".join(
            _interval(s[f"lam_star_{n}"], s[f"lam_lo_{n}"], s[f"lam_hi_{n}"]) for n in NORMS))
    header = " & ".join(AXIS_HEADERS[a] for a in axes)
    return (_within_page(_table("r" * len(axes) + "rrlllr", header + r" & $N_\mathrm{decayed}$ & seeds & "
                                r"coef$^*$ [95\%] & near-optimal coef & gain over $\lambda=0$ [95\%] & status",
                                lines)) + "\n\\medskip\n"
            + _within_page(_table("r" * len(axes) + "lll", header + r" & $\lambda^*_\mathrm{sum}$ [95\%] & "
                         r"$\lambda^*_\mathrm{mean}$ [95\%] & $\lambda^*_\text{per-step}$ [95\%]", lams)))


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
    lines = [f"{_tex(r['quantity'])} & {r['intervals']} & {r['withheld']} & "
             f"{r['coverage']:.3f} [{r['coverage_lo']:.3f}, {r['coverage_hi']:.3f}] & {r['median_width']:.2f}"
             for _, r in table.iterrows()]
    return _table("lrrlr", r"nominal 95\% interval of & intervals & withheld & coverage [95\%] & median width", lines)


def global_numbers(calibration: pd.DataFrame, replicates: int) -> dict[str, str]:
    """The numbers of the method (margin, calibration) the text quotes, as \\newcommand names."""
    macros = {"Margin": f"{MARGIN:g}", "CalibrationReplicates": f"{replicates}", "GoalLo": f"{GOAL[0]:.2f}",
              "GoalHi": f"{GOAL[1]:.2f}", "BootstrapMinKept": f"{MIN_KEPT}",
              "BootstrapReplicates": f"{REPLICATES}", "SeedSlopeMax": f"{SEED_SLOPE[1]:g}"}
    for _, r in calibration.iterrows():
        name = {"log10 coef* per width": "CoverageCoef", "exponent against width": "CoverageExponent",
                "gain over λ = 0": "CoverageGain", "joint optimum: lr*": "CoverageJointLr",
                "joint optimum: coef*": "CoverageJointCoef",
                "joint optimum: exponent against width": "CoverageJointExponent"}[r["quantity"]]
        macros[name] = f"{r['coverage']:.3f}"
    return macros


BOOTSTRAP_CALIBRATION = {"exponent, seeds independent: meta-regression": "BootCalIndependentMeta",
                         "exponent, seeds independent: bootstrap check": "BootCalIndependentCheck",
                         "exponent, seeds shared across widths: meta-regression": "BootCalSharedMeta",
                         "exponent, seeds shared across widths: bootstrap check": "BootCalSharedCheck"}


def bootstrap_calibration_numbers(table: pd.DataFrame) -> dict[str, str]:
    """The bootstrap check's measured coverage (``calibrate --bootstrap``), its Wilson interval and the median
    SD ratio, per kind of seed and interval, as \\newcommand names."""
    macros = {}
    for _, r in table.iterrows():
        name = BOOTSTRAP_CALIBRATION[r["quantity"]]
        macros[name] = f"{r['coverage']:.3f} [{r['coverage_lo']:.3f}, {r['coverage_hi']:.3f}]"
        macros[name + "Ratio"] = f"{r['median_sd_ratio']:.2f}"
        macros[name + "Sweeps"] = f"{r['intervals'] + r['withheld']}"
    return macros


def network_numbers(fits: dict[str, dict], equilibrium: dict[str, str] | None) -> dict[str, str]:
    """The scale of the kept networks (every model but ridge's linear one), for the limitations: their
    training lengths and their largest parameter count."""
    runs = pd.concat([f["runs"] for f in fits.values()]) if fits else pd.DataFrame(columns=COLUMNS)
    nets = runs[runs["model"] != "linear"]
    epochs = {int(e) for e in nets["epochs"].dropna()} | ({int(equilibrium["epochs"])} if equilibrium else set())
    if nets.empty or not epochs:
        return {}
    return {"NetworkEpochs": f"{min(epochs)}" if len(epochs) == 1 else f"{min(epochs)}--{max(epochs)}",
            "NetworkParamsMax": f"{nets['n_params'].max() / 1e6:.1f} million"}


def experiment_numbers(fit: dict) -> dict[str, str]:
    """An experiment's numbers the text may quote, by key (``\\result{experiment:key}`` in the text):
    counts, grid, and per setting, normalisation and axis the exponent and verdict."""
    runs, stars, exponents, truth = fit["runs"], fit["coef_star"], fit["exponents"], fit["closed_form"]
    seeds = stars["n_seeds"]
    numbers = {"runs": f"{len(runs):,}", "completed": f"{(runs['status'] == 'completed').sum():,}",
               "diverged": f"{(runs['status'] == 'diverged').sum():,}", "failed": f"{(runs['status'] == 'failed').sum():,}",
               "settings": f"{stars['setting'].nunique()}", "points": f"{len(stars)}",
               "bounded": f"{(stars['status'] == 'ok').sum()}",
               "seeds": f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}--{seeds.max()}",
               "coefs": f"{runs.loc[runs['coef'] > 0, 'coef'].round(12).nunique()}"}
    for axis in AXES:
        numbers[f"{axis}s"] = ", ".join(str(v) for v in sorted(stars[axis].unique()))
        numbers[f"{axis}:range"] = f"{stars[axis].max() / stars[axis].min():g}"  # as in "widened 16×"
    numbers["lrs"] = ", ".join(f"{v:g}" for v in sorted(runs["lr"].dropna().unique()))
    for column in (c for c in runs.columns if c.startswith(CONFIG)):  # what every run shares, quoted as set
        values = runs[column].dropna().unique()
        if len(values) == 1:
            value = values[0]
            numbers[f"config:{column[len(CONFIG):]}"] = f"{value:g}" if isinstance(value, float) else f"{value}"
    for setting, s in stars.groupby("setting"):
        numbers[f"bounded:{setting}"] = f"{(s['status'] == 'ok').sum()} of {len(s)}"
    joint = fit["joint_lr"]
    if len(joint) and joint["width"].is_unique:  # the joint optimum's lr along width (the only axis)
        joint = joint.sort_values("width")
        numbers["lr_stars"] = ", ".join(f"{v:g}" for v in joint["lr_star"])
        numbers["joint_bounded"] = f"{np.isfinite(joint['coef_lo']).sum()} of {len(joint)}"
    for _, e in exponents.iterrows():
        if np.isfinite(e["exponent"]):
            key = f"{e['setting']}:{e['norm']}:{e['axis']}"
            numbers[f"e:{key}"] = f"{e['exponent']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"
            numbers[f"verdict:{key}"] = e["verdict"]
            numbers[f"span:{e['setting']}:{e['axis']}"] = f"{e['axis_min']:g}–{e['axis_max']:g}"  # what it speaks for
            numbers[f"margin:{e['setting']}:{e['axis']}"] = f"{e['margin']:.3f}"
    if len(truth):
        bounded = truth[truth["status"] == "ok"]
        numbers["truth:held"], numbers["truth:bounded"] = f"{int(bounded['holds_truth'].sum())}", f"{len(bounded)}"
    return numbers


def bootstrap_numbers(boot: pd.DataFrame) -> dict[str, str]:
    """The seed bootstrap's numbers (``analysis.bootstrap``), keyed like the exponents they check."""
    numbers = {}
    for _, b in boot.iterrows():
        key = f"{b['setting']}:{b['norm']}:{b['axis']}"
        numbers[f"boot:{key}"] = f"{b['boot_sd']:.3f}"
        numbers[f"boot95:{key}"] = f"[{b['boot_lo']:.3f}, {b['boot_hi']:.3f}]"
        numbers[f"bootkept:{key}"] = f"{b['kept']} of {b['replicates']}"
        numbers[f"bootratio:{key}"] = f"{b['boot_sd'] / meta_sd(b):.2f}"
        numbers[f"robust:{key}"] = f"[{b['robust_lo90']:.3f}, {b['robust_hi90']:.3f}]"
        numbers[f"robustverdict:{key}"] = b["robust_verdict"] or "no verdict"
    return numbers


def bootstrap_counts(boots: dict[str, pd.DataFrame]) -> dict[str, str]:
    """How many verdicts (in sum, mean, per-step) the seed bootstrap's check could test, and how many it changed."""
    rows = pd.concat(boots.values()) if boots else pd.DataFrame(columns=["norm", "verdict", "robust_verdict"])
    in_norms = rows["norm"].isin(NORMS)
    return {"BootstrapVerdictsChecked": f"{(in_norms & (rows['robust_verdict'] != '')).sum()}",
            "BootstrapVerdictsChanged": f"{(in_norms & changed_by_check(rows)).sum()}"}


def bootstrap_tex(boots: dict[str, pd.DataFrame]) -> str:
    """Per bootstrapped experiment, setting and axis: replicates kept, the bootstrap's SD of the exponent over
    the meta-regression's, and in each normalisation the 90% interval and verdict with the larger of the two
    SDs, marked where the verdict differs from the answer table's."""
    lines = []
    for name, boot in boots.items():
        lines.append(_heading(name, 4 + len(NORMS)))
        for (setting, axis), rows in boot.groupby(["setting", "axis"], sort=True):
            by_norm = rows.set_index("norm")
            coef = by_norm.loc["coef"]
            cells = []
            for norm in NORMS:
                b = by_norm.loc[norm]
                if not b["robust_verdict"]:
                    cells.append("--")
                    continue
                mark = r"$^\dagger$" if changed_by_check(b) else ""
                cells.append(f"[{_fixed(b['robust_lo90'])}, {_fixed(b['robust_hi90'])}] {b['robust_verdict']}{mark}")
            ratio = _fixed(coef["boot_sd"] / meta_sd(coef))
            lines.append(f"\\quad {_tex(setting)} & {AXIS_HEADERS.get(axis, _tex(axis))} & {coef['kept']} & {ratio} & "
                         + " & ".join(cells))
    return _table("llrr" + "l" * len(NORMS), "setting & axis & kept & SD ratio & " + " & ".join(
        f"$\\lambda^*_\\text{{{n.replace('_', '-')}}}$: 90\\% interval, verdict" for n in NORMS), lines)


def _signed(x: float) -> str:
    """A predicted exponent as written: +0.5, -0.5, 0."""
    return f"{x:+g}" if x else "0"


def equilibrium_tex(ratios: pd.DataFrame, exponents: pd.DataFrame) -> str:
    """Measured/predicted per coef (95% over seeds), then each quantity's exponents against coef and C."""
    by = ratios.set_index(["coef", "quantity"])
    lines = [f"{_sci(coef)} & " + " & ".join(
        f"{by.loc[(coef, q), 'ratio']:.2f} [{by.loc[(coef, q), 'lo']:.2f}, {by.loc[(coef, q), 'hi']:.2f}]"
        for q in ("norm", "angle")) for coef in sorted(ratios["coef"].unique())]
    e = exponents.set_index(["quantity", "variable"])
    for i, (variable, label) in enumerate((("coef", "coef"), ("elements", "size $C$"))):
        lines.append((r"\midrule " if i == 0 else "") + f"exponent in {label}: measured & " + " & ".join(
            f"{_fixed(e.loc[(q, variable), 'exponent'])} [{_fixed(e.loc[(q, variable), 'lo'])}, "
            f"{_fixed(e.loc[(q, variable), 'hi'])}]" for q in ("norm", "angle")))
        lines.append(f"\\phantom{{exponent in {label}:}} predicted & " + " & ".join(
            _minus(_signed(e.loc[(q, variable), "predicted"])) for q in ("norm", "angle")))
    return _table("lll", r"coef & norm [95\%] & angular update [95\%]", lines)


def equilibrium_numbers(tensors: pd.DataFrame, ratios: pd.DataFrame, exponents: pd.DataFrame) -> dict[str, str]:
    """The equilibrium check's numbers (``\\result{equilibrium:key}``): what was run, each quantity's range
    of ratios over the coefs, its exponents against coef and C, and the sizes of the tensors."""
    numbers = {"runs": f"{tensors.groupby(['coef', 'seed']).ngroups}", "seeds": f"{tensors['seed'].nunique()}",
               "coefs": f"{tensors['coef'].nunique()}", "tensors": f"{tensors['tensor'].nunique()}",
               "elements": f"{tensors['elements'].min():,}--{tensors['elements'].max():,}"}
    for field in ("width", "lr", "epochs", "averaged_epochs"):  # one value each (checked on reading)
        numbers[field] = f"{tensors[field].iloc[0]:g}"
    for q, rows in ratios.groupby("quantity"):
        numbers[f"ratios:{q}"] = f"{rows['ratio'].min():.2f}--{rows['ratio'].max():.2f}"
    for _, e in exponents.iterrows():
        key = f"{e['quantity']}:{e['variable']}"
        numbers[f"e:{key}"] = f"{e['exponent']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]"
        numbers[f"predicted:{key}"] = _signed(e["predicted"])
    return numbers


def numbers_tex(macros: dict[str, str], experiments: dict[str, dict[str, str]]) -> str:
    """\\newcommand for the method's numbers; ``\\result{experiment:key}`` for an experiment's, which stops
    the build on a key the kept results do not have (a number is never left as "??")."""
    for name, numbers in experiments.items():
        for key in numbers:
            if not set(f"{name}:{key}") <= KEY_CHARACTERS:
                bad = "".join(sorted(set(f"{name}:{key}") - KEY_CHARACTERS))
                raise AnalysisError(f"number key {name}:{key!r}: {bad!r} cannot be in a LaTeX name; experiment "
                                    "names and setting labels may use letters, digits, space and _.,=:+-/()")
    lines = [f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in macros.items()]
    lines.append(r"\newcommand{\result}[1]{\ifcsname result:#1\endcsname\csname result:#1\endcsname"
                 r"\else\errmessage{no number result:#1 in paper/results}\fi}")
    lines += [f"\\expandafter\\def\\csname result:{name}:{key}\\endcsname{{{_minus(_tex(value))}}}"
              for name, numbers in experiments.items() for key, value in numbers.items()]
    return "\n".join(lines) + "\n"


def readme_with_answer(readme: str, answer: str, name: str = "README.md") -> str:
    """The README with the answer table between its markers replaced by ``answer`` (Markdown)."""
    start, end = README_ANSWER
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise AnalysisError(f"{name}: needs one answer-table block, {start.strip()} ... {end.strip()}")
    head, rest = readme.split(start)
    return head + start + answer + end + rest.split(end)[1]


def readme_for(results: Path, metric: str = "val_loss") -> Path | None:
    """The README whose answer table a build rewrites: the README's answer is the paper's, so only a build
    from the kept results, on the paper's metric, rewrites it (None otherwise)."""
    kept = Path(results).resolve() == (PAPER / "results").resolve() and metric == "val_loss"
    return README if kept else None


def kept_tables(results: Path) -> dict[str, Path]:
    """The results table of each experiment kept for the paper: results/NAME.csv(.gz)."""
    tables = {}
    for path in sorted(results.iterdir()) if results.is_dir() else []:
        suffix = next((s for s in (".csv.gz", ".csv", ".parquet") if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        name = path.name[:-len(suffix)]
        if name in tables:
            raise AnalysisError(f"{results}: two tables for experiment {name} ({tables[name].name}, {path.name}); "
                                "keep one")
        tables[name] = path
    if not tables:
        raise AnalysisError(f"{results}: no results tables (NAME.csv.gz from `python -m analysis collect`)")
    return tables


def experiment_tex(name: str, fit: dict, figures: list[str]) -> str:
    """An experiment's appendix: what was run (every config field of its runs), coef* and λ* per
    point, and the evidence for each fit (the metric against coef)."""
    stars = fit["coef_star"]
    parts = [f"\\subsection{{Experiment \\texttt{{{_tex(name)}}}}}\\label{{app:{name}}}",
             "\\begin{center}\\small", setup_tex(fit["runs"]), "\\end{center}", "\\begin{center}\\scriptsize",
             "\\setlength{\\tabcolsep}{4pt}"]
    for setting, s in stars.groupby("setting", sort=True):
        if stars["setting"].nunique() > 1:
            # a caption line, not \paragraph: LaTeX refuses that inside center
            parts.append(f"\\par\\medskip\\textit{{Setting {_tex(setting)}}}\\par\\smallskip")
        parts.append(coef_star_tex(s))
    parts.append("\\end{center}")
    parts += [f"\\begin{{figure}}[tbp]\\centering\\includegraphics{{{path}}}\\caption{{Experiment "
              f"\\texttt{{{_tex(name)}}}: {EVIDENCE_CAPTION}}}\\end{{figure}}" for path in figures]
    return "\n".join(parts) + "\n\\clearpage\n"


def build_paper(results: Path = PAPER / "results", out: Path = PAPER, metric: str = "val_loss",
                replicates: int = CALIBRATION_REPLICATES, readme: Path | None = None) -> list[Path]:
    """Every table, number and figure of the paper from the kept results tables (one per
    experiment); an experiment's own under tables/NAME/ and figures/NAME/; and, given ``readme``, the
    answer table in that README."""
    if readme is not None:  # its answer block is checked before the long work, rewritten after it
        readme_with_answer(readme.read_text(), "", str(readme))
    calibration = coverage(replicates)
    tables = out / "tables"
    texts = {"calibration.tex": calibration_tex(calibration)}
    numbers, fits, predictions, boots, appendix, written = {}, {}, {}, {}, [], []
    for name, table in kept_tables(results).items():
        fit = analyse(str(table), metric)
        numbers[name], fits[name], predictions[name] = experiment_numbers(fit), fit, fit["predictions"]
        boot = kept_bootstrap(name, table)
        if boot is not None:
            numbers[name].update(bootstrap_numbers(boot))
            boots[name] = boot
        figures = out / "figures" / name
        shutil.rmtree(figures, ignore_errors=True)  # an experiment's figures are exactly this build's
        paths = all_figures(fit, metric, figures, kinds=("lambda_star_vs_width", "loss_vs_lambda"))
        written += paths
        evidence = [p.relative_to(out).as_posix() for p in paths
                    if p.suffix == ".pdf" and p.stem.startswith("loss_vs_lambda")]
        texts[f"{name}/appendix.tex"] = experiment_tex(name, fit, evidence)
        appendix.append(f"\\input{{tables/{name}/appendix.tex}}")
        for part in ("coef_star", "exponents", "predictions", "closed_form"):
            path = tables / name / f"{part}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            fit[part].to_csv(path, index=False)
            written.append(path)
    kept_equilibrium = results / "equilibrium" / "tensors.csv"
    if kept_equilibrium.exists():  # not a λ sweep: its own table, figure and numbers
        if "equilibrium" in numbers:
            raise AnalysisError(f"{results}: a results table named equilibrium beside {kept_equilibrium}; keep one")
        tensors = read_tensors(kept_equilibrium)
        ratios, slopes = equilibrium_ratios(tensors), equilibrium_exponents(tensors)
        texts["equilibrium.tex"] = equilibrium_tex(ratios, slopes)
        numbers["equilibrium"] = equilibrium_numbers(tensors, ratios, slopes)
        written += equilibrium_figure(tensors, out / "figures" / "equilibrium.pdf")
    kept_boot_calibration = results / "bootstrap" / "calibration.csv"
    if kept_boot_calibration.exists():  # drawn by `calibrate --bootstrap`, too slow to redraw at every build
        boot_calibration = pd.read_csv(kept_boot_calibration)
        texts["bootstrap_calibration.tex"] = calibration_tex(boot_calibration)
        numbers_boot_calibration = bootstrap_calibration_numbers(boot_calibration)
    else:
        numbers_boot_calibration = {}
    answer = answer_rows(fits, boots)
    texts["answer.tex"], texts["answer.md"] = answer_tex(answer), answer_md(answer)
    texts["predictions.tex"] = predictions_tex(predictions)
    texts["bootstrap.tex"] = bootstrap_tex(boots)
    texts["appendix.tex"] = "\n".join(appendix) + "\n"
    macros = (global_numbers(calibration, replicates) | network_numbers(fits, numbers.get("equilibrium"))
              | bootstrap_counts(boots) | numbers_boot_calibration)
    experiment_files = sorted(path.stem for path in (PAPER.parent / "conf" / "experiment").glob("*.yaml"))
    macros["KeptExperiments"] = ", ".join(f"\\texttt{{{_tex(n)}}}" for n in numbers)
    macros["UnkeptExperiments"] = ", ".join(f"\\texttt{{{_tex(n)}}}" for n in experiment_files if n not in numbers)
    texts["numbers.tex"] = numbers_tex(macros, numbers)
    for name, text in texts.items():
        (tables / name).parent.mkdir(parents=True, exist_ok=True)
        (tables / name).write_text(text)
        written.append(tables / name)
    calibration.to_csv(tables / "calibration.csv", index=False)
    written.append(tables / "calibration.csv")
    if readme is not None:
        readme.write_text(readme_with_answer(readme.read_text(), texts["answer.md"], str(readme)))
        written.append(readme)
    return written
