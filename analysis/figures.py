"""``figures``: per setting, the figures of the paper, PDF and PNG, sized for the text width (6.3 in)
with no text under 8 pt: ``lambda_star_vs_width``, ``loss_vs_lambda``, ``loss_heatmap`` and
``decayed_norm_vs_lambda`` per setting and (N_train, B); ``coef_star_vs_axes`` once, and
``lambda_star_vs_n_train`` / ``lambda_star_vs_batch_size`` where that axis varies. What each shows:
docs/analysis.md#figures."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis.scaling import MARGIN  # noqa: E402
from wdbench.normalisation import NORMS  # noqa: E402

TEXT_WIDTH = 6.3  # inches: the paper's \textwidth (A4, 2.5 cm margins)
METRIC_LABEL = {
    "val_loss": "final validation loss",
    "best_val_loss": "best-epoch validation loss",
    "val_err": "final validation error",
}
NORM_STYLE = {"coef": ("black", "o"), "sum": ("C0", "o"), "mean": ("C1", "s"), "per_step": ("C2", "^")}
COEF_LABEL = "coef = λ·c (multiplies Σw²)"
EXCESS_SCALE = {
    "val_loss": 0.25,
    "best_val_loss": 0.25,
    "val_err": 0.1,
}  # heatmap: one scale for all; the cliff saturates, basins show


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid")
    plt.rcParams.update(
        {
            "font.size": 8,
            "axes.titlesize": 9,
            "axes.labelsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "legend.fontsize": 8,
            "legend.title_fontsize": 8,
            "figure.titlesize": 9,
            "figure.dpi": 110,  # saved at exactly figsize: prints 1:1
            # log-axis ticks from 0.001 to 1000 as plain numbers: "6×10⁻²"'s superscript prints
            # below 8 pt, and its height crowded neighbouring minor labels
            "axes.formatter.min_exponent": 4,
        }
    )


def save_figure(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    for path in paths:  # no creation date: regenerating identical figures changes no file
        fig.savefig(path, dpi=200, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def _width_axis(ax, widths) -> None:
    ax.set_xscale("log")
    ax.set_xticks(widths, labels=[str(w) for w in widths])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("width")


def _other_axes(exponents: pd.DataFrame, stars: pd.DataFrame, norm: str) -> float:
    """log10 of the fitted power law's factor from the axes other than width, at this figure's
    N_train and B (0 when only the width varies)."""
    rows = exponents[(exponents["norm"] == norm) & (exponents["axis"] != "width")]
    return float(sum(r["exponent"] * np.log10(stars[r["axis"]].iloc[0]) for _, r in rows.iterrows()))


def lambda_star_vs_width(stars: pd.DataFrame, exponents: pd.DataFrame, metric: str, out: Path, name: str):
    fig, (left, right) = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.9), layout="constrained")
    widths = sorted(stars["width"].unique())
    ok, rest = stars[stars["status"] == "ok"], stars[stars["status"] != "ok"]
    left.errorbar(
        ok["width"],
        ok["coef_star"],
        yerr=[ok["coef_star"] - ok["coef_lo"], ok["coef_hi"] - ok["coef_star"]],
        fmt="o",
        color="black",
        capsize=3,
        label="coef* (95% interval)",
        zorder=3,
    )
    left.vlines(
        stars["width"] * 1.06,
        stars["coef_near_lo"],
        stars["coef_near_hi"],
        color="0.6",
        linewidth=4,
        alpha=0.6,
        label="near-optimal (within 1 run's noise)",
    )
    if len(rest):
        left.plot(rest["width"], rest["coef_star"], "o", mfc="none", color="0.4", label="open or edge (not fitted)")
    by_norm = {r["norm"]: r for _, r in exponents[exponents["axis"] == "width"].iterrows()}
    fitted = ok["width"] if len(ok) else stars["width"]  # the fit and the wedge only where the fit speaks
    x = np.geomspace(fitted.min() / 1.1, fitted.max() * 1.1, 50)
    if "coef" in by_norm:
        e = by_norm["coef"]
        left.plot(
            x,
            10 ** (e["log10_C"] + _other_axes(exponents, stars, "coef") + e["exponent"] * np.log10(x)),
            color="black",
            linewidth=1,
            label=f"fit: e = {e['exponent']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]",
        )
    left.set(yscale="log", ylabel="coef*", title="(a) the measured optimum")
    _width_axis(left, widths)
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower left", frameon=False)

    if len(ok) >= 2:
        reference = float(np.exp(np.mean(np.log(ok["width"]))))  # the fits are most precise here
        for i, norm in enumerate(NORMS):
            if norm not in by_norm:
                continue
            e = by_norm[norm]
            colour, marker = NORM_STYLE[norm]
            scale = 10 ** (e["log10_C"] + _other_axes(exponents, stars, norm) + e["exponent"] * np.log10(reference))
            dodge = 1.0 + 0.04 * (i - 1)
            y = ok[f"lam_star_{norm}"] / scale
            right.errorbar(
                ok["width"] * dodge,
                y,
                yerr=[y - ok[f"lam_lo_{norm}"] / scale, ok[f"lam_hi_{norm}"] / scale - y],
                fmt=marker,
                color=colour,
                capsize=2,
                markersize=4,
                label=f"{norm.replace('_', '-')}: e = {e['exponent']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]: "
                f"{e['verdict']}",
            )
            right.plot(x, (x / reference) ** e["exponent"], color=colour, linewidth=1)
        bound = by_norm[NORMS[0]]["margin"] if NORMS[0] in by_norm else 0
        right.fill_between(
            x,
            (x / reference) ** -bound,
            (x / reference) ** bound,
            color="0.85",
            zorder=0,
            label=f"moves < {MARGIN}× over the fitted widths",
        )
        right.axhline(1, color="0.5", linewidth=0.6)
    right.set(yscale="log", ylabel="λ* / fitted λ* at the middle width", title="(b) λ* in each normalisation")
    _width_axis(right, widths)
    fig.legend(*right.get_legend_handles_labels(), loc="outside lower right", frameon=False)
    fig.suptitle(f"Weight decay minimising the {METRIC_LABEL[metric]}, against width (bars: 95% intervals)")
    return save_figure(fig, out, name)


def loss_vs_lambda(runs: pd.DataFrame, fits: list, metric: str, out: Path, name: str, label: str = ""):
    """A panel per width (``fits``: fit.FittedPoint); ``label`` names the setting and (N_train, B) when the
    experiment has several."""
    fits = [f for f in fits if f.optimum.status != "no_runs"]
    n = len(fits)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(TEXT_WIDTH, 2.0 * rows + 0.4), sharex=True, squeeze=False, layout="constrained"
    )
    for ax, (key, group, opt) in zip(axes.flat, fits):
        curve = group[group["coef"] > 0]
        finite = curve[np.isfinite(curve["value"])]
        offset = finite["seed"].map(opt.offsets or {}).fillna(0.0)
        adjusted = finite["value"] - offset
        ax.plot(finite["coef"], adjusted, ".", color="0.65", markersize=3, label="run (seed offset removed)")
        means = adjusted.groupby(finite["coef"]).mean()
        ax.plot(means.index, means.to_numpy(), "o", color="black", markersize=3, label="mean over seeds")
        if opt.curve is not None:
            ax.plot(10**opt.curve.x, opt.curve.value, color="C0", linewidth=1.2, label="fitted curve")
        if np.isfinite(opt.value):
            ax.plot(
                10**opt.x,
                opt.value,
                "*",
                color="C3",
                markersize=10,
                markeredgecolor="black",
                markeredgewidth=0.5,
                zorder=5,
                label="coef* (95% interval)",
            )
            if opt.status == "ok":
                ax.errorbar(
                    10**opt.x,
                    opt.value,
                    xerr=[[10**opt.x - 10**opt.lo], [10**opt.hi - 10**opt.x]],
                    color="C3",
                    capsize=3,
                    linewidth=1.2,
                    zorder=4,
                )
        baseline = group[(group["coef"] == 0) & np.isfinite(group["value"])]
        if len(baseline):
            level = (baseline["value"] - baseline["seed"].map(opt.offsets or {}).fillna(0.0)).mean()
            ax.axhline(level, color="C1", linestyle="--", linewidth=1, label="λ = 0 (mean)")
        low = adjusted.min()
        top = opt.value + 4 * (np.median(adjusted) - opt.value) if np.isfinite(opt.value) else adjusted.max()
        ax.set_ylim(low - 0.05 * (top - low), min(top, adjusted.max()) + 0.02)
        ax.set(xscale="log", title=f"width {key.width} ({opt.status})")
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(METRIC_LABEL[metric])
    for ax in axes[-1]:
        ax.set_xlabel(COEF_LABEL)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    fig.suptitle(
        f"{METRIC_LABEL[metric].capitalize()} against coef, a panel per width (y zoomed on the basin)"
        + (f"\n{label}" if label else "")
    )
    return save_figure(fig, out, name)


def loss_heatmap(runs: pd.DataFrame, stars: pd.DataFrame, metric: str, out: Path, name: str):
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 2.6), layout="constrained")
    data = runs[(runs["coef"] > 0) & np.isfinite(runs["value"])]
    grid = data.pivot_table(index="width", columns="coef", values="value", aggfunc="mean")
    grid = grid.sub(grid.min(axis=1), axis=0)  # each width's basin on one scale: the excess over its best
    coefs, widths = grid.columns.to_numpy(float), grid.index.to_numpy()
    log_c = np.log10(coefs)
    edges_c = (
        10
        ** np.r_[
            log_c[0] - (log_c[1] - log_c[0]) / 2, (log_c[1:] + log_c[:-1]) / 2, log_c[-1] + (log_c[-1] - log_c[-2]) / 2
        ]
        if len(coefs) > 1
        else np.r_[coefs / 1.2, coefs * 1.2]
    )
    mesh = ax.pcolormesh(
        edges_c,
        np.arange(len(widths) + 1),
        grid.to_numpy(),
        cmap="rocket_r",
        vmin=0.0,
        vmax=EXCESS_SCALE[metric],
        shading="flat",
    )
    fig.colorbar(mesh, ax=ax, label="above the width's best", extend="max", shrink=0.9)
    position = {w: i + 0.5 for i, w in enumerate(widths)}
    ok = stars[stars["status"] == "ok"]
    ax.errorbar(
        ok["coef_star"],
        ok["width"].map(position),
        xerr=[ok["coef_star"] - ok["coef_lo"], ok["coef_hi"] - ok["coef_star"]],
        fmt="*",
        color="white",
        markeredgecolor="black",
        markersize=10,
        capsize=3,
        ecolor="white",
        label="coef* (95% interval)",
    )
    ax.set(
        xscale="log",
        xlabel=COEF_LABEL,
        ylabel="width",
        yticks=list(position.values()),
        yticklabels=[str(w) for w in widths],
        title=f"{METRIC_LABEL[metric].capitalize()} above each width's best (mean over seeds)",
    )
    ax.legend(loc="upper left", frameon=True)
    return save_figure(fig, out, name)


def norm_vs_lambda(runs: pd.DataFrame, out: Path, name: str):
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH * 0.6, 2.6), layout="constrained")
    data = runs[(runs["coef"] > 0) & np.isfinite(runs["decayed_norm"])]
    widths = sorted(data["width"].unique())
    palette = dict(zip(widths, sns.color_palette("viridis", len(widths))))
    for w in widths:
        mean = data[data["width"] == w].groupby("coef")["decayed_norm"].mean()
        ax.plot(mean.index, mean.to_numpy(), "o-", markersize=3, color=palette[w], label=str(w))
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=COEF_LABEL,
        ylabel="‖decayed weights‖₂ at the end",
        title="Norm of the decayed weights (mean over seeds)",
    )
    fig.legend(title="width", loc="outside right center", frameon=False)
    return save_figure(fig, out, name)


AXIS_LABEL = {"width": "width", "n_train": "$N_\\mathrm{train}$", "batch_size": "batch size $B$"}
AXIS_SYMBOL = {"n_train": "$N_\\mathrm{train}$", "batch_size": "$B$"}


def coef_star_vs_axes(stars: pd.DataFrame, exponents: pd.DataFrame, truth: pd.DataFrame, out: Path, name: str):
    """coef* against each axis that varies, a panel per axis on one shared log y-axis (slopes
    compare by eye), a line per setting and value of the other axes: the measured optima with their
    95% intervals (hollow: not bounded, not fitted), the fitted power law, and the closed form when
    known (dotted)."""
    from analysis.fit import varying_axes

    axes_ = varying_axes(stars) or ["width"]
    fig, panels = plt.subplots(
        1,
        len(axes_),
        figsize=(TEXT_WIDTH if len(axes_) > 1 else TEXT_WIDTH * 0.62, 3.2),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    settings = stars["setting"].nunique()
    for ax, axis in zip(panels[0], axes_):
        others = [a for a in axes_ if a != axis]
        groups = list(stars.groupby(["setting", *others], sort=True))
        palette = sns.color_palette("viridis", len(groups))
        for colour, (key, group) in zip(palette, groups):
            setting, *at = key
            values = dict(zip(others, at))
            label = ", ".join(
                ([setting] if settings > 1 else []) + [f"{AXIS_LABEL[a]} = {v}" for a, v in values.items()]
            )
            group = group.sort_values(axis)
            ok = group[group["status"] == "ok"]
            _points(ax, ok[axis], ok["coef_star"], ok["coef_lo"], ok["coef_hi"], colour, label)
            rest = group[group["status"] != "ok"]
            ax.plot(rest[axis], rest["coef_star"], "o", mfc="none", color=colour, markersize=4)
            law = {
                r["axis"]: r
                for _, r in exponents[(exponents["setting"] == setting) & (exponents["norm"] == "coef")].iterrows()
            }
            if axis in law and set(values) <= set(law):
                x = np.geomspace(group[axis].min() / 1.1, group[axis].max() * 1.1, 20)
                log_fit = (
                    law[axis]["log10_C"]
                    + law[axis]["exponent"] * np.log10(x)
                    + sum(law[a]["exponent"] * np.log10(v) for a, v in values.items())
                )
                ax.plot(x, 10**log_fit, color=colour, linewidth=1)
            if len(truth):
                exact = truth.set_index(["setting", *axes_])["coef_true"]
                ax.plot(
                    group[axis],
                    [exact.loc[(setting, *(r[a] for a in axes_))] for _, r in group.iterrows()],
                    ":",
                    color="black",
                    linewidth=1.2,
                )
        ticks = sorted(stars[axis].unique())
        ax.set_xscale("log")
        ax.set_xticks(ticks, labels=[str(v) for v in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set(xlabel=AXIS_LABEL[axis], yscale="log", title=f"against {AXIS_LABEL[axis]}")
        if len(groups) > 1:
            ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, -0.2),
                ncol=2 if len(axes_) > 1 else 3,
                fontsize=8,
                frameon=False,
                handlelength=1,
                columnspacing=1,
            )  # below the panel: never over a point
    panels[0][0].set_ylabel("coef* (95% interval)")
    fig.suptitle("The measured optimum against each axis" + (" and the closed form (dotted)" if len(truth) else ""))
    return save_figure(fig, out, name)


def relative_lambda_star(stars: pd.DataFrame, exponents: pd.DataFrame, axis: str, norm: str) -> pd.DataFrame:
    """λ* in ``norm`` of one setting's bounded optima, each divided by the fitted power law at its own
    values of the other axes and at the geometric middle of ``axis``: the points of every width (say)
    fall on one line, (axis/middle)^e, whose slope is the exponent along ``axis``. Columns: ``axis``,
    the other varying axes, y, lo, hi (the 95% interval, divided alike)."""
    from analysis.fit import varying_axes

    ok = stars[stars["status"] == "ok"]
    law = {r["axis"]: r for _, r in exponents[exponents["norm"] == norm].iterrows()}
    axes_ = [a for a in varying_axes(ok) if a in law]
    middle = float(np.exp(np.log(stars[axis].unique().astype(float)).mean()))  # the figure's x middle
    log_fit = (
        law[axis]["log10_C"]
        + law[axis]["exponent"] * np.log10(middle)
        + sum(law[a]["exponent"] * np.log10(ok[a].astype(float)) for a in axes_ if a != axis)
    )
    scale = 10.0 ** np.asarray(log_fit, float) * np.ones(len(ok))
    return pd.DataFrame(
        {
            **{a: ok[a].to_numpy() for a in axes_},
            "y": ok[f"lam_star_{norm}"].to_numpy() / scale,
            "lo": ok[f"lam_lo_{norm}"].to_numpy() / scale,
            "hi": ok[f"lam_hi_{norm}"].to_numpy() / scale,
        }
    )


def lambda_star_vs_axis(stars: pd.DataFrame, exponents: pd.DataFrame, axis: str, metric: str, out: Path, name: str):
    """One setting's λ* against N_train or B, a panel per normalisation on one shared log y-axis: each
    point relative to the fitted law at its width (so the widths share a line), the fitted slope, and
    the equivalence wedge (moves < 1.5× over the range). Open optima are not fitted and not drawn."""
    panels_norms = [n for n in NORMS if ((exponents["norm"] == n) & (exponents["axis"] == axis)).any()]
    fig, panels = plt.subplots(
        1, len(panels_norms), figsize=(TEXT_WIDTH, 2.9), sharey=True, squeeze=False, layout="constrained"
    )
    values = sorted(stars[axis].unique())
    middle = float(np.exp(np.log(np.asarray(values, float)).mean()))
    x = np.geomspace(min(values) / 1.15, max(values) * 1.15, 50)
    for ax, norm in zip(panels[0], panels_norms):
        e = exponents[(exponents["norm"] == norm) & (exponents["axis"] == axis)].iloc[0]
        points = relative_lambda_star(stars, exponents, axis, norm)
        others = [a for a in points.columns if a not in (axis, "y", "lo", "hi")]
        groups = list(points.groupby(others, sort=True)) if others else [((), points)]
        palette = sns.color_palette("viridis", len(groups))
        for i, (colour, (key, group)) in enumerate(zip(palette, groups)):
            key = key if isinstance(key, tuple) else (key,)
            dodge = 1.0 + 0.05 * (i - (len(groups) - 1) / 2)
            label = ", ".join(f"{AXIS_LABEL[a]} {v}" for a, v in zip(others, key))
            _points(ax, group[axis] * dodge, group["y"], group["lo"], group["hi"], colour, label)
        ax.plot(x, (x / middle) ** e["exponent"], color="black", linewidth=1)
        ax.fill_between(x, (x / middle) ** -e["margin"], (x / middle) ** e["margin"], color="0.85", zorder=0)
        ax.axhline(1, color="0.5", linewidth=0.6)
        ax.set_xscale("log")
        ax.set_xticks(values, labels=[str(v) for v in values])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set(
            xlabel=AXIS_LABEL[axis],
            yscale="log",
            title=f"λ* ({norm.replace('_', '-')}): {e['verdict']}\n"
            f"e = {e['exponent']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]",
        )
    panels[0][0].set_ylabel(f"λ* / fit at the middle {AXIS_SYMBOL.get(axis, axis)}")  # and at its width: caption
    handles, labels = panels[0][0].get_legend_handles_labels()
    if len(handles) > 1:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(handles), frameon=False)
    fig.suptitle(
        f"Weight decay minimising the {METRIC_LABEL[metric]} against {AXIS_LABEL[axis]}\n"
        f"(bars: 95% intervals; grey: moves < {MARGIN}× over the range)"
    )
    return save_figure(fig, out, name)


def slug(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", setting).strip("_")


PER_GROUP = ("lambda_star_vs_width", "loss_vs_lambda", "loss_heatmap", "decayed_norm_vs_lambda")


def all_figures(fit: dict, metric: str, out: Path, kinds=PER_GROUP) -> list[Path]:
    """``coef_star_vs_axes`` for the whole table, then the ``kinds`` of figure for each setting and
    (N_train, B) pair: nothing that differs shares a figure (file suffix: the setting and pair,
    when there are several)."""
    from analysis.fit import usable_runs

    style()
    runs, stars, exponents = usable_runs(fit["runs"], metric), fit["coef_star"], fit["exponents"]
    fits = fit["fits"]
    groups = sorted(stars.groupby(["setting", "n_train", "batch_size"]).groups)
    paths = coef_star_vs_axes(stars, exponents, fit["closed_form"], out, "coef_star_vs_axes")
    for setting, s_stars in stars.groupby("setting", sort=True):  # along N_train and B, where the norms part
        s_exp = exponents[exponents["setting"] == setting]
        suffix = "" if stars["setting"].nunique() == 1 else "_" + slug(setting)
        for axis in ("n_train", "batch_size"):
            if ((s_exp["axis"] == axis) & s_exp["norm"].isin(NORMS)).any():
                paths += lambda_star_vs_axis(s_stars, s_exp, axis, metric, out, f"lambda_star_vs_{axis}{suffix}")
    for setting, n_train, batch in groups:
        label = (
            setting
            + ("" if stars["n_train"].nunique() == 1 else f", n_train={n_train}")
            + ("" if stars["batch_size"].nunique() == 1 else f", batch_size={batch}")
        )
        suffix = "" if len(groups) == 1 else "_" + slug(label)
        title = ", ".join(
            ([] if stars["setting"].nunique() == 1 else [setting])
            + ([] if stars["n_train"].nunique() == 1 else [f"{AXIS_SYMBOL['n_train']} = {n_train}"])
            + ([] if stars["batch_size"].nunique() == 1 else [f"{AXIS_SYMBOL['batch_size']} = {batch}"])
        )
        mine = (runs["setting"] == setting) & (runs["n_train"] == n_train) & (runs["batch_size"] == batch)
        s_runs = runs[mine]
        s_stars = stars[(stars["setting"] == setting) & (stars["n_train"] == n_train) & (stars["batch_size"] == batch)]
        s_exp = exponents[exponents["setting"] == setting] if len(exponents) else exponents
        s_fits = [
            f for f in fits if f.key.setting == setting and f.key.n_train == n_train and f.key.batch_size == batch
        ]
        draw = {
            "lambda_star_vs_width": lambda: lambda_star_vs_width(
                s_stars, s_exp, metric, out, f"lambda_star_vs_width{suffix}"
            ),
            "loss_vs_lambda": lambda: loss_vs_lambda(s_runs, s_fits, metric, out, f"loss_vs_lambda{suffix}", title),
            "loss_heatmap": lambda: loss_heatmap(s_runs, s_stars, metric, out, f"loss_heatmap{suffix}"),
            "decayed_norm_vs_lambda": lambda: norm_vs_lambda(s_runs, out, f"decayed_norm_vs_lambda{suffix}"),
        }
        for kind in kinds:
            if kind == "lambda_star_vs_width" and s_stars["width"].nunique() < 2:
                continue  # one width: nothing to draw against width (adamw_timescale varies N_train and B)
            paths += draw[kind]()
    return paths


def _points(ax, x, y, lo, hi, colour, label: str) -> None:
    """Estimates with their intervals, in every figure's one style."""
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color=colour, capsize=2, markersize=4, label=label or None)
