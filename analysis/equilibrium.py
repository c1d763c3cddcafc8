"""Rotational equilibrium (Kosson et al., "Rotational Equilibrium: How Weight Decay Balances Learning
Across Neural Networks", ICML 2024) measured against its predictions, from the per-tensor table kept in
paper/results/equilibrium/tensors.csv (``scripts/equilibrium.py`` writes it from a diagnostics sweep).

For a scale-invariant tensor of C elements trained by AdamW at learning rate η with torch's weight
decay λ_t = 2·coef, the equilibrium norm is sqrt(η·C/(2·λ_t)) and the angular update per step
sqrt(2·η·λ_t·(1 − β₁)/(1 + β₁)). Each run (a seed at a coef) gives one measured/predicted ratio, the
geometric mean over its tensors; per coef the ratio's 95% interval is the t-interval over seeds (the
seeds are the independent replicates; coefs are never pooled). The exponent of each quantity against
coef (predicted −1/2 for the norm, +1/2 for the angle) is the slope of log measured on log coef with
a level per tensor, fitted within each seed, its interval the t-interval over the seeds' slopes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.table import AnalysisError

QUANTITIES = {"norm": -0.5, "angle": 0.5}  # measured quantity: its predicted exponent against coef
# a row per (run, tensor); the run's width, lr, epochs and the epochs averaged at its end say what was run
COLUMNS = ["seed", "coef", "width", "lr", "epochs", "averaged_epochs", "tensor", "elements", "norm_predicted", "norm",
           "angle_predicted", "angle"]


def read_tensors(path: str | Path) -> pd.DataFrame:
    tensors = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in tensors.columns]
    if missing:
        raise AnalysisError(f"{path}: no column(s) {', '.join(missing)}; write it with scripts/equilibrium.py")
    if tensors["seed"].nunique() < 3:
        raise AnalysisError(f"{path}: {tensors['seed'].nunique()} seed(s); the intervals need at least 3")
    return tensors


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    mean, half = values.mean(), stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def ratios(tensors: pd.DataFrame) -> pd.DataFrame:
    """Per coef and quantity: measured/predicted (geometric mean over a run's tensors, then over seeds)
    with its 95% interval over seeds."""
    logs = tensors.assign(**{q: np.log10(tensors[q] / tensors[f"{q}_predicted"]) for q in QUANTITIES})
    per_run = logs.groupby(["coef", "seed"])[list(QUANTITIES)].mean().reset_index()
    rows = []
    for (coef, quantity), values in per_run.melt(["coef", "seed"], var_name="quantity").groupby(["coef", "quantity"]):
        mean, lo, hi = _t_interval(values["value"].to_numpy())
        rows.append({"coef": coef, "quantity": quantity, "seeds": len(values), "ratio": 10 ** mean,
                     "lo": 10 ** lo, "hi": 10 ** hi})
    return pd.DataFrame(rows)


def exponents(tensors: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: the slope of log10 measured on log10 coef, a level per tensor, within each seed;
    the mean over seeds with its 95% t-interval, beside the prediction."""
    rows = []
    for quantity, predicted in QUANTITIES.items():
        slopes = []
        for _, seed in tensors.groupby("seed"):
            x = np.log10(seed["coef"]) - np.log10(seed["coef"]).groupby(seed["tensor"]).transform("mean")
            y = np.log10(seed[quantity]) - np.log10(seed[quantity]).groupby(seed["tensor"]).transform("mean")
            slopes.append(float((x * y).sum() / (x * x).sum()))
        mean, lo, hi = _t_interval(np.array(slopes))
        rows.append({"quantity": quantity, "predicted": predicted, "exponent": mean, "lo": lo, "hi": hi,
                     "seeds": len(slopes), "consistent": bool(lo <= predicted <= hi)})
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
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=f"predicted {label}",
               ylabel=f"measured {label}")
        for axis in (ax.xaxis, ax.yaxis):  # 1-2-5 ticks, plainly labelled: the angles span one decade
            axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(NullFormatter())
    axes[1].legend(frameon=False, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, out.parent, out.stem)
