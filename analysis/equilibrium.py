"""Rotational equilibrium (Kosson et al., "Rotational Equilibrium: How Weight Decay Balances Learning
Across Neural Networks", ICML 2024) measured against its predictions, from the per-tensor table kept in
paper/results/equilibrium/tensors.csv (``scripts/equilibrium.py`` writes it from a diagnostics sweep).

For a scale-invariant tensor of C elements trained by AdamW at learning rate η with torch's weight
decay λ_t = 2·coef, the equilibrium norm is sqrt(η·C/(2·λ_t)) and the angular update per step
sqrt(2·η·λ_t·(1 − β₁)/(1 + β₁)). Each run (a seed at a coef) gives one measured/predicted ratio, the
geometric mean over its tensors; per coef the ratio's 95% interval is the t-interval over seeds (the
seeds are the independent replicates; coefs are never pooled). The exponent of each quantity against
coef (predicted −1/2 for the norm, +1/2 for the angle) and against the tensor's size C (+1/2, 0) is a
slope fitted within each seed, its interval the t-interval over the seeds' slopes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.table import AnalysisError

QUANTITIES = ("norm", "angle")
# The predicted exponent of each measured quantity against each variable: norm ∝ sqrt(C/coef),
# angle ∝ sqrt(coef), whatever the tensor's size C.
PREDICTED = {("norm", "coef"): -0.5, ("angle", "coef"): 0.5, ("norm", "elements"): 0.5, ("angle", "elements"): 0.0}
# a row per (run, tensor); the run's width, lr, epochs and the epochs averaged at its end say what was run
COLUMNS = [
    "seed",
    "coef",
    "width",
    "lr",
    "epochs",
    "averaged_epochs",
    "tensor",
    "elements",
    "norm_predicted",
    "norm",
    "angle_predicted",
    "angle",
]
ONE_VALUE = ("width", "lr", "epochs", "averaged_epochs")  # one experiment: these may not vary


def checked(tensors: pd.DataFrame, source: str) -> pd.DataFrame:
    """The per-tensor table, refused (one line naming what is wrong) unless it is one experiment's with
    every (seed, coef, tensor) once and at least 3 seeds."""
    missing = [c for c in COLUMNS if c not in tensors.columns]
    if missing:
        raise AnalysisError(f"{source}: no column(s) {', '.join(missing)}; write it with scripts/equilibrium.py")
    varying = [c for c in ONE_VALUE if tensors[c].nunique() > 1]
    if varying:
        raise AnalysisError(f"{source}: {', '.join(varying)} vary; the table must hold one experiment's runs")
    twice = tensors.duplicated(["seed", "coef", "tensor"])
    if twice.any():
        r = tensors[twice].iloc[0]
        raise AnalysisError(
            f"{source}: seed {r['seed']}, coef {r['coef']:g}, tensor {r['tensor']} appears more than "
            "once (two sweeps in one directory?)"
        )
    if tensors["seed"].nunique() < 3:
        raise AnalysisError(f"{source}: {tensors['seed'].nunique()} seed(s); the intervals need at least 3")
    return tensors


def read_tensors(path: str | Path) -> pd.DataFrame:
    return checked(pd.read_csv(path), str(path))


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    mean, half = values.mean(), stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def ratios(tensors: pd.DataFrame) -> pd.DataFrame:
    """Per coef and quantity: measured/predicted (geometric mean over a run's tensors, then over seeds)
    with its 95% interval over seeds."""
    log_ratios = pd.DataFrame({q: np.log10(tensors[q] / tensors[f"{q}_predicted"]) for q in QUANTITIES})
    per_run = log_ratios.groupby([tensors["coef"], tensors["seed"]]).mean().reset_index()
    rows = []
    for (coef, quantity), values in per_run.melt(["coef", "seed"], var_name="quantity").groupby(["coef", "quantity"]):
        mean, lo, hi = _t_interval(values["value"].to_numpy())
        rows.append(
            {"coef": coef, "quantity": quantity, "seeds": len(values), "ratio": 10**mean, "lo": 10**lo, "hi": 10**hi}
        )
    return pd.DataFrame(rows)


def exponents(tensors: pd.DataFrame) -> pd.DataFrame:
    """Per quantity and variable (coef, or the tensor's size C): the slope of log10 measured on log10
    variable within each seed, with a level per value of the other (per tensor when the slope is in coef,
    per coef when it is in C); the mean over seeds with its 95% t-interval, beside the prediction. The
    slope in C compares tensors of different sizes, which also differ in depth: it is a slope across
    this network's layers."""
    rows = []
    for (quantity, variable), predicted in PREDICTED.items():
        level = "tensor" if variable == "coef" else "coef"
        slopes = []
        for _, seed in tensors.groupby("seed"):
            x, y = np.log10(seed[variable]), np.log10(seed[quantity])
            x, y = x - x.groupby(seed[level]).transform("mean"), y - y.groupby(seed[level]).transform("mean")
            slopes.append(float((x * y).sum() / (x * x).sum()))
        mean, lo, hi = _t_interval(np.array(slopes))
        rows.append(
            {
                "quantity": quantity,
                "variable": variable,
                "predicted": predicted,
                "exponent": mean,
                "lo": lo,
                "hi": hi,
                "seeds": len(slopes),
                "consistent": bool(lo <= predicted <= hi),
            }
        )
    return pd.DataFrame(rows)


def figure(tensors: pd.DataFrame, out: Path) -> list[Path]:
    """Measured against predicted, a point per (run, tensor), coloured by coef, on log axes with y = x."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    from analysis.figures import TEXT_WIDTH, save_figure, style

    style()
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH * 0.95, 2.8))
    coefs = sorted(tensors["coef"].unique())
    colours = plt.cm.viridis(np.linspace(0, 1, len(coefs)))
    for ax, key, label in ((axes[0], "norm", "tensor norm"), (axes[1], "angle", "angular update per step (rad)")):
        for coef, colour in zip(coefs, colours):
            mine = tensors[tensors["coef"] == coef]
            ax.scatter(mine[f"{key}_predicted"], mine[key], s=6, color=colour, label=f"coef {coef:.2g}")
        both = pd.concat([tensors[key], tensors[f"{key}_predicted"]])
        lo, hi = both.min() / 1.5, both.max() * 1.5
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.set(
            xscale="log",
            yscale="log",
            xlim=(lo, hi),
            ylim=(lo, hi),
            xlabel=f"predicted {label}",
            ylabel=f"measured {label}",
        )
        for axis in (ax.xaxis, ax.yaxis):  # 1-2-5 ticks, plainly labelled: the angles span one decade
            axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(NullFormatter())
    axes[1].legend(frameon=False, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, out.parent, out.stem)
