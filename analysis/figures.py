"""``figures``: the four paper figures, seaborn in one fixed style, PDF and PNG."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis.fit import SERIES, fit_points, metric_values, power_law  # noqa: E402
from analysis.table import AnalysisError  # noqa: E402
from wdbench.penalty import NORMS  # noqa: E402

SETTING = [k for k in SERIES if k != "norm"]  # one figure set per setting; normalisations side by side
METRIC_LABEL = {"val_loss": "final validation loss", "val_err": "final validation error"}


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def lam_label(norm: str, star: bool = False) -> str:
    return f"λ{'*' if star else ''} ({norm.replace('_', '-')} normalisation)"


def _norms(df: pd.DataFrame) -> list[str]:
    return [n for n in NORMS if n in set(df["norm"])]


def _widths_palette(df: pd.DataFrame):
    widths = sorted(df["width"].unique())
    return widths, dict(zip(widths, sns.color_palette("viridis", len(widths))))


def _save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    for path in paths:  # no creation date: regenerating identical figures changes no file
        fig.savefig(path, dpi=200, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def _panels(n: int, height: float = 3.2):
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 0.6, height), squeeze=False, layout="constrained")
    return fig, axes[0]


def _lines_by_width(data: pd.DataFrame, y: str, ylabel: str, yscale: str = "linear"):
    """One panel per normalisation: ``y`` against λ, a line per width (mean, seed range shaded)."""
    widths, palette = _widths_palette(data)
    norms = _norms(data)
    fig, axes = _panels(len(norms))
    for ax, norm in zip(axes, norms):
        sns.lineplot(data=data[data["norm"] == norm], x="lam", y=y, hue="width", palette=palette,
                     hue_order=widths, estimator="mean", errorbar=("pi", 100), marker="o", markersize=4,
                     ax=ax, legend=ax is axes[-1])
        ax.set(xscale="log", yscale=yscale, xlabel=lam_label(norm), ylabel=ylabel if ax is axes[0] else "",
               title=norm.replace("_", "-"))
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), title="width")
    return fig, dict(zip(norms, axes)), palette


def loss_vs_lambda(runs: pd.DataFrame, stars: pd.DataFrame, metric: str, out: Path, name: str):
    positive = runs[runs["lam"] > 0]
    data = positive.assign(value=metric_values(positive, metric).replace(np.inf, np.nan))
    fig, axes, palette = _lines_by_width(data, "value", METRIC_LABEL[metric])
    for norm, ax in axes.items():
        for _, s in stars[(stars["norm"] == norm) & np.isfinite(stars["lam_star"])].iterrows():
            ax.plot(s["lam_star"], s["best_value"], marker="*", markersize=13, color=palette[s["width"]],
                    markeredgecolor="black", markeredgewidth=0.6, linestyle="none", zorder=5)
    fig.suptitle("Validation loss against λ (mean over seeds, band: seed range, ★: λ*)")
    return _save(fig, out, name)


def lambda_star_vs_width(stars: pd.DataFrame, out: Path, name: str):
    norms = _norms(stars)
    fig, axes = _panels(len(norms))
    colours = dict(zip(NORMS, sns.color_palette("deep", 3)))
    for ax, norm in zip(axes, norms):
        s = stars[(stars["norm"] == norm) & np.isfinite(stars["lam_star"])]
        used = fit_points(s)
        edge = s[s["at_edge"]]
        err = np.abs(np.vstack([used["lam_star"] - used["lam_star_lo"], used["lam_star_hi"] - used["lam_star"]]))
        ax.errorbar(used["width"], used["lam_star"], yerr=np.nan_to_num(err), fmt="o", color=colours[norm],
                    capsize=3, label="λ* (95% bootstrap CI)")
        if len(edge):
            ax.plot(edge["width"], edge["lam_star"], "o", mfc="none", color="grey", label="at grid edge (not fitted)")
        try:
            law = power_law(used["width"], used["lam_star"])
            x = np.geomspace(used["width"].min() / 1.15, used["width"].max() * 1.15, 100)
            ax.plot(x, law.predict(x), color=colours[norm],
                    label=f"α = {law.alpha:.2f} [{law.alpha_lo:.2f}, {law.alpha_hi:.2f}]")
            if np.isfinite(law.alpha_lo):
                ax.fill_between(x, *law.band(x), color=colours[norm], alpha=0.15, linewidth=0)
        except AnalysisError:
            pass
        ax.set(xscale="log", yscale="log", xlabel="width", ylabel=lam_label(norm, star=True),
               title=norm.replace("_", "-"))
        ax.set_xticks(sorted(s["width"].unique()), labels=[str(w) for w in sorted(s["width"].unique())])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("λ* against width, with the power-law fit λ* = C·width^α and its 95% band")
    return _save(fig, out, name)


def loss_heatmap(runs: pd.DataFrame, metric: str, out: Path, name: str):
    norms = _norms(runs)
    fig, axes = _panels(len(norms), height=3.0)
    data = runs[runs["lam"] > 0].assign(value=metric_values(runs[runs["lam"] > 0], metric))
    for ax, norm in zip(axes, norms):
        grid = data[data["norm"] == norm].pivot_table(index="width", columns="lam", values="value", aggfunc="mean")
        grid = grid.replace(np.inf, np.nan).sort_index(ascending=False)
        sns.heatmap(grid, ax=ax, cmap="rocket_r", cbar_kws={"label": METRIC_LABEL[metric]},
                    xticklabels=[f"{np.log10(v):.2f}" for v in grid.columns])
        ax.set(xlabel=f"log10 {lam_label(norm)}", ylabel="width", title=norm.replace("_", "-"))
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    fig.suptitle("Validation loss over width × λ (blank: diverged or not run)")
    return _save(fig, out, name)


def norm_vs_lambda(runs: pd.DataFrame, out: Path, name: str):
    data = runs[(runs["lam"] > 0) & np.isfinite(runs["decayed_norm"])]
    fig, _, _ = _lines_by_width(data, "decayed_norm", "‖decayed weights‖₂ at the end", yscale="log")
    fig.suptitle("Norm of the decayed weights against λ")
    return _save(fig, out, name)


def all_figures(runs: pd.DataFrame, stars: pd.DataFrame, metric: str, out: Path) -> list[Path]:
    """The four figures for each setting (model, apply, optimizer, n_train, batch size)."""
    style()
    settings = list(stars.groupby(SETTING, sort=True))
    paths = []
    for key, setting_stars in settings:
        suffix = "" if len(settings) == 1 else "_" + "_".join(str(k) for k in key)
        setting_runs = runs.merge(pd.DataFrame([dict(zip(SETTING, key))]), on=SETTING)
        paths += loss_vs_lambda(setting_runs, setting_stars, metric, out, f"loss_vs_lambda{suffix}")
        paths += lambda_star_vs_width(setting_stars, out, f"lambda_star_vs_width{suffix}")
        paths += loss_heatmap(setting_runs, metric, out, f"loss_heatmap{suffix}")
        paths += norm_vs_lambda(setting_runs, out, f"decayed_norm_vs_lambda{suffix}")
    return paths
