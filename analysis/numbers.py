"""The numbers the paper's text quotes, written to tables/numbers.tex: the method's as ``\\newcommand``
macros, each experiment's as ``\\result{NAME:key}``, which stops the LaTeX build on a key the kept
results lack (docs/analysis.md#the-paper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.bootstrap import REPLICATES, changed_by_check, meta_sd
from analysis.calibrate import GOAL, SEED_SLOPE
from analysis.fit import AXES
from analysis.scaling import MARGIN
from analysis.table import COLUMNS, CONFIG, AnalysisError
from analysis.tex import minus, signed, tex
from wdbench.normalisation import NORMS

KEY_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,=:+-/() μλη")


def numbers_tex(macros: dict[str, str], experiments: dict[str, dict[str, str]]) -> str:
    """\\newcommand for the method's numbers; ``\\result{experiment:key}`` for an experiment's, which stops
    the build on a key the kept results do not have (a number is never left as "??")."""
    for name, numbers in experiments.items():
        for key in numbers:
            if not set(f"{name}:{key}") <= KEY_CHARACTERS:
                bad = "".join(sorted(set(f"{name}:{key}") - KEY_CHARACTERS))
                raise AnalysisError(
                    f"number key {name}:{key!r}: {bad!r} cannot be in a LaTeX name; experiment "
                    "names and setting labels may use letters, digits, space and _.,=:+-/()"
                )
    lines = [f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in macros.items()]
    lines.append(
        r"\newcommand{\result}[1]{\ifcsname result:#1\endcsname\csname result:#1\endcsname"
        r"\else\errmessage{no number result:#1 in paper/results}\fi}"
    )
    lines += [
        f"\\expandafter\\def\\csname result:{name}:{key}\\endcsname{{{minus(tex(value))}}}"
        for name, numbers in experiments.items()
        for key, value in numbers.items()
    ]
    return "\n".join(lines) + "\n"


def global_numbers(calibration: pd.DataFrame, replicates: int) -> dict[str, str]:
    """The numbers of the method (margin, calibration) the text quotes, as \\newcommand names."""
    macros = {
        "Margin": f"{MARGIN:g}",
        "CalibrationReplicates": f"{replicates}",
        "GoalLo": f"{GOAL[0]:.2f}",
        "GoalHi": f"{GOAL[1]:.2f}",
        "BootstrapReplicates": f"{REPLICATES}",
        "SeedSlopeMax": f"{SEED_SLOPE[1]:g}",
    }
    for _, r in calibration.iterrows():
        name = {
            "log10 coef* per width": "CoverageCoef",
            "exponent against width": "CoverageExponent",
            "gain over λ = 0": "CoverageGain",
            "joint optimum: lr*": "CoverageJointLr",
            "joint optimum: coef*": "CoverageJointCoef",
            "joint optimum: exponent against width": "CoverageJointExponent",
        }[r["quantity"]]
        macros[name] = f"{r['coverage']:.3f}"
    return macros


BOOTSTRAP_CALIBRATION = {
    "exponent, seeds independent: meta-regression": "BootCalIndependentMeta",
    "exponent, seeds independent: bootstrap check": "BootCalIndependentCheck",
    "exponent, seeds shared across widths: meta-regression": "BootCalSharedMeta",
    "exponent, seeds shared across widths: bootstrap check": "BootCalSharedCheck",
}


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
    return {
        "NetworkEpochs": f"{min(epochs)}" if len(epochs) == 1 else f"{min(epochs)}--{max(epochs)}",
        "NetworkParamsMax": f"{nets['n_params'].max() / 1e6:.1f} million",
    }


def experiment_numbers(fit: dict) -> dict[str, str]:
    """An experiment's numbers the text may quote, by key (``\\result{experiment:key}`` in the text):
    counts, grid, and per setting, normalisation and axis the exponent and verdict."""
    runs, stars, exponents, truth = fit["runs"], fit["coef_star"], fit["exponents"], fit["closed_form"]
    seeds = stars["n_seeds"]
    numbers = {
        "runs": f"{len(runs):,}",
        "completed": f"{(runs['status'] == 'completed').sum():,}",
        "diverged": f"{(runs['status'] == 'diverged').sum():,}",
        "failed": f"{(runs['status'] == 'failed').sum():,}",
        "settings": f"{stars['setting'].nunique()}",
        "points": f"{len(stars)}",
        "bounded": f"{(stars['status'] == 'ok').sum()}",
        "seeds": f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}--{seeds.max()}",
        "coefs": f"{runs.loc[runs['coef'] > 0, 'coef'].round(12).nunique()}",
    }
    for axis in AXES:
        numbers[f"{axis}s"] = ", ".join(str(v) for v in sorted(stars[axis].unique()))
        numbers[f"{axis}:range"] = f"{stars[axis].max() / stars[axis].min():g}"  # as in "widened 16×"
    numbers["lrs"] = ", ".join(f"{v:g}" for v in sorted(runs["lr"].dropna().unique()))
    for column in (c for c in runs.columns if c.startswith(CONFIG)):  # what every run shares, quoted as set
        values = runs[column].dropna().unique()
        if len(values) == 1:
            value = values[0]
            numbers[f"config:{column[len(CONFIG) :]}"] = f"{value:g}" if isinstance(value, float) else f"{value}"
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
    for _, f in fit["flat"].iterrows():
        key = f"{f['setting']}:{f['norm']}:{f['axis']}"
        numbers[f"flat:{key}"] = f["flat"]
        numbers[f"withoutflat:{key}"] = f["verdict_without"]
    for setting, points in stars.groupby("setting"):  # a point's gain over λ = 0, in one run's noise σ
        if points["width"].is_unique:
            ratios = points["gain"] / points["sigma"]
            for width, ratio in zip(points["width"], ratios):
                numbers[f"gainsigma:{setting}:{width:g}"] = f"{ratio:.2f}"
            numbers[f"gainsigmas:{setting}"] = f"{ratios.min():.2f} to {ratios.max():.2f}"  # over every width
            numbers[f"gainupper:{setting}"] = f"{points['gain_hi'].max():.2f}"  # no width gains more (95%)
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
        numbers[f"boot95:{key}"] = f"[{_end(b['boot_lo'])}, {_end(b['boot_hi'])}]"
        numbers[f"bootkept:{key}"] = f"{b['kept']} of {b['replicates']}"
        numbers[f"bootlost:{key}"] = _lost(b)
        numbers[f"bootratio:{key}"] = f"{b['boot_sd'] / meta_sd(b):.2f}"
        numbers[f"robust:{key}"] = f"[{_end(b['robust_lo90'])}, {_end(b['robust_hi90'])}]"
        numbers[f"robustverdict:{key}"] = b["robust_verdict"]
    return numbers


def _end(x: float) -> str:
    """An interval's end to 3 decimals, or ±∞."""
    return ("∞" if x > 0 else "−∞") if np.isinf(x) else f"{x:.3f}"


def _lost(b: pd.Series) -> str:
    """Which fitted points replicates lost (went open or to an edge) and how often; "none" where none."""
    return b["lost_points"] if isinstance(b["lost_points"], str) and b["lost_points"] else "none"


def bootstrap_counts(boots: dict[str, pd.DataFrame]) -> dict[str, str]:
    """How many verdicts (in sum, mean, per-step) the seed bootstrap's check could test, and how many it changed."""
    rows = pd.concat(boots.values()) if boots else pd.DataFrame(columns=["norm", "verdict", "robust_verdict"])
    in_norms = rows["norm"].isin(NORMS)
    return {
        "BootstrapVerdictsChecked": f"{in_norms.sum()}",
        "BootstrapVerdictsChanged": f"{(in_norms & changed_by_check(rows)).sum()}",
    }


def equilibrium_numbers(tensors: pd.DataFrame, ratios: pd.DataFrame, exponents: pd.DataFrame) -> dict[str, str]:
    """The equilibrium check's numbers (``\\result{equilibrium:key}``): what was run, each quantity's range
    of ratios over the coefs, its exponents against coef and C, and the sizes of the tensors."""
    numbers = {
        "runs": f"{tensors.groupby(['coef', 'seed']).ngroups}",
        "seeds": f"{tensors['seed'].nunique()}",
        "coefs": f"{tensors['coef'].nunique()}",
        "tensors": f"{tensors['tensor'].nunique()}",
        "elements": f"{tensors['elements'].min():,}--{tensors['elements'].max():,}",
    }
    for field in ("width", "lr", "epochs", "averaged_epochs"):  # one value each (checked on reading)
        numbers[field] = f"{tensors[field].iloc[0]:g}"
    for q, rows in ratios.groupby("quantity"):
        numbers[f"ratios:{q}"] = f"{rows['ratio'].min():.2f}--{rows['ratio'].max():.2f}"
    for _, e in exponents.iterrows():
        key = f"{e['quantity']}:{e['variable']}"
        numbers[f"e:{key}"] = f"{e['exponent']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]"
        numbers[f"predicted:{key}"] = signed(e["predicted"])
    return numbers


def kept_experiments(kept, experiment_files: Path) -> dict[str, str]:
    """Which experiments the paper quotes (``kept``, in order) and which of conf/experiment/ it does not."""
    every = sorted(path.stem for path in experiment_files.glob("*.yaml"))
    return {
        "KeptExperiments": ", ".join(f"\\texttt{{{tex(n)}}}" for n in kept),
        "UnkeptExperiments": ", ".join(f"\\texttt{{{tex(n)}}}" for n in every if n not in kept),
    }


def curvature_numbers(curvature: pd.DataFrame) -> dict[str, str]:
    """The curvature test's numbers (``analysis.curvature``), keyed by setting and axis: q, the end slopes with
    their 95% intervals, the slope's change with its 90% interval and margin, and the verdict (or why none)."""
    numbers = {}
    for _, c in curvature.iterrows():
        key = f"{c['setting']}:{c['axis']}"
        numbers[f"curvature:{key}"] = c["verdict"]
        if np.isfinite(c["q"]):
            numbers[f"q:{key}"] = f"{c['q']:.3f} [{c['q_lo']:.3f}, {c['q_hi']:.3f}]"
            for end in ("low", "high"):
                s = c[[f"slope_{end}", f"slope_{end}_lo", f"slope_{end}_hi"]].to_numpy(float)
                numbers[f"slope{end}:{key}"] = f"{s[0]:.2f} [{s[1]:.2f}, {s[2]:.2f}]"
            numbers[f"change:{key}"] = f"{c['change']:.2f} [{c['change_lo90']:.2f}, {c['change_hi90']:.2f}]"
            numbers[f"changemargin:{key}"] = f"{c['margin']:.3f}"
    return numbers


CURVATURE_WHAT = {"q": "Q", "end slopes": "Slopes", "'bends' said": "SaidBends", "'straight' said": "SaidStraight"}


def curvature_calibration_numbers(table: pd.DataFrame) -> dict[str, str]:
    """``calibrate --curvature``'s coverages and rates with their Wilson intervals, as \\newcommand names:
    Curv + Q|Slopes|SaidBends|SaidStraight + Straight|Bent + Realistic|Quiet (e.g. \\CurvQBentQuiet), and the
    sweeps of each kind (\\CurvSweeps)."""
    macros = {}
    for _, r in table.iterrows():
        what, law, sweeps = r["quantity"].split(", ")
        name = "Curv" + CURVATURE_WHAT[what] + law.split()[0].capitalize() + sweeps.split()[0].capitalize()
        macros[name] = f"{r['coverage']:.3f} [{max(r['coverage_lo'], 0.0):.3f}, {r['coverage_hi']:.3f}]"
        if what == "q":
            macros["CurvSweeps"] = f"{r['intervals'] + r['withheld']}"
    return macros
