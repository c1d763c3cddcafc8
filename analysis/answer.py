"""The answer table, every kept experiment at once: per setting and axis, the exponent of λ* in each
normalisation with its interval and verdict, and the λ_sum near-optimal at every point; as LaTeX for the
paper and as Markdown for the README (docs/analysis.md#the-paper)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.bootstrap import changed_by_check
from analysis.fit import AXES, FittedPoint
from analysis.flat import rests_on_flat
from analysis.metrics import LABELS, UNCALIBRATED
from analysis.tex import AXIS_HEADERS, heading, minus, tabular, tex
from wdbench.normalisation import NORMS


def metrics_note(extra: list[str]) -> str:
    """What the other metrics' columns hold, in a line under the Markdown table."""
    return (
        f"{', '.join(LABELS[m] for m in extra).capitalize()}: the exponent of λ*_sum fitted on that metric "
        "(λ*_mean's and λ*_per_step's differ from it by the same fixed shifts as in the first columns); in brackets "
        f"the range it was fitted over where that differs, and the optima fitted; {UNCALIBRATED}: that metric's "
        "coverage not measured within the goal; – (no COLUMN): the table has no such values. †: the verdict "
        "changes under the seed bootstrap's check; ‡: it changes, or cannot be given, without the setting's flat "
        "cells (points whose gain over λ = 0 is not shown)."
    )


def _grid_ends(fits: list[FittedPoint]) -> dict[tuple, tuple[float, float]]:
    """Per fitted point (setting, *axes): the smallest and largest coef > 0 it ran."""
    ends = {}
    for point in fits:
        coefs = point.runs.loc[point.runs["coef"] > 0, "coef"]
        ends[tuple(point.key)] = (coefs.min(), coefs.max()) if len(coefs) else (np.nan, np.nan)
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
    return {
        (True, True): "whole grid",
        (True, False): f"≤{hi:.2g}",
        (False, True): f"≥{lo:.2g}",
        (False, False): f"{lo:.2g}–{hi:.2g}",
    }[(open_lo, open_hi)]


def answer_rows(fits: dict[str, dict], boots: dict[str, pd.DataFrame] | None = None) -> list[dict]:
    """The answer, every experiment at once: per setting and axis (with its range), the exponent of λ*
    in each normalisation with its 95% interval and verdict, and the λ_sum near-optimal at every point
    of the setting; a setting with no fitted exponent (the tuned lr's too) says how many of its optima
    were bounded. A verdict that the seed bootstrap's check (``boots``, by experiment) changes is marked, and
    one that changes without the setting's flat cells (``analysis.flat``)."""
    rows = []
    for name, fit in fits.items():
        boot = (boots or {}).get(name)
        changed = (
            set()
            if boot is None
            else set(map(tuple, boot.loc[changed_by_check(boot), ["setting", "norm", "axis"]].to_numpy().tolist()))
        )
        flat = fit["flat"][rests_on_flat(fit["flat"])]
        on_flat = set(map(tuple, flat[["setting", "norm", "axis"]].to_numpy().tolist()))
        e, stars, tuned = fit["exponents"], fit["coef_star"], fit["tuned"]
        e = e[e["norm"].isin(NORMS) & np.isfinite(pd.to_numeric(e["exponent"]))]
        ends = _grid_ends(fit["fits"])
        for setting in sorted(set(stars["setting"]) | set(tuned["setting"]) | set(e["setting"])):
            points, mine = stars[stars["setting"] == setting], e[e["setting"] == setting]
            optima = points if len(points) else tuned[tuned["setting"] == setting]
            common = {"experiment": name, "setting": setting, "near": near_everywhere(points, ends)}
            if mine.empty:
                rows.append(
                    {
                        **common,
                        "axis": None,
                        "cells": None,
                        "bounded": f"{(optima['status'] == 'ok').sum()} of {len(optima)}",
                    }
                )
            for axis, by_axis in mine.groupby("axis", sort=True):
                by_norm = by_axis.set_index("norm")
                first = by_axis.iloc[0]
                rows.append(
                    {
                        **common,
                        "axis": (axis, first["axis_min"], first["axis_max"]),
                        "fitted": (int(first["n_points"]), int(first["n_points"] + first["n_left_out"])),
                        "cells": {n: by_norm.loc[n] for n in NORMS if n in by_norm.index},
                        "bootstrap_changed": {n for n in NORMS if (setting, n, axis) in changed},
                        "on_flat": {n for n in NORMS if (setting, n, axis) in on_flat},
                    }
                )
    return rows


def _fitted_count(fitted: tuple[int, int], unit: str = " optima") -> str:
    """ " (k of n optima)" where some of a setting's n optima were left out of its exponent (open, edge)."""
    k, n = fitted
    return f" ({k} of {n}{unit})" if k < n else ""


def _cell(c: pd.Series | None, changed: bool = False, on_flat: bool = False) -> str:
    """An exponent, its interval and verdict; † where the seed bootstrap's check changes the verdict, ‡ where
    the verdict rests on a flat cell."""
    if c is None:
        return "–"
    return f"{c['exponent']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}] {c['verdict']}{'†' * changed}{'‡' * on_flat}"


def _marked(row: dict, norm: str) -> tuple:
    return row["cells"].get(norm), norm in row["bootstrap_changed"], norm in row["on_flat"]


def _metrics(rows: list[dict]) -> list[str]:
    """The other metrics whose columns the rows carry (``metrics.metric_cells``), in order; none without."""
    return list(rows[0].get("metrics", {})) if rows else []


def answer_tex(rows: list[dict]) -> str:
    lines, last, extra = [], None, _metrics(rows)
    for row in rows:
        if row["experiment"] != last:  # the experiment's name heads its rows (a column of it would not fit)
            lines.append(heading(row["experiment"], 3 + len(NORMS) + len(extra)))
            last = row["experiment"]
        if row["cells"] is None:
            cells = [f"\\multicolumn{{{1 + len(NORMS)}}}{{l}}{{no exponent fitted: {row['bounded']} optima bounded}}"]
        else:
            name, lo, hi = row["axis"]
            cells = [f"{AXIS_HEADERS[name]} {lo:g}--{hi:g}{_fitted_count(row['fitted'], unit='')}"]
            cells += [minus(tex(_cell(*_marked(row, n)))) for n in NORMS]
        cells += [minus(tex(row["metrics"][m])) for m in extra]
        lines.append(f"\\quad {tex(row['setting'])} & " + " & ".join(cells) + f" & {minus(tex(row['near']))}")
    return tabular(
        "ll" + "l" * len(NORMS) + "l" * len(extra) + "l",
        "setting & axis & "
        + " & ".join(f"$\\lambda^*_\\text{{{n.replace('_', '-')}}}$: $e$ [95\\%], verdict" for n in NORMS)
        + "".join(f" & $\\lambda^*_\\text{{sum}}$, {LABELS[m]}" for m in extra)
        + r" & near-optimal $\lambda_\mathrm{sum}$, every point",
        lines,
    )


def answer_md(rows: list[dict]) -> str:
    """The answer table in Markdown, for the README (which must hold it verbatim)."""
    extra = _metrics(rows)
    head = [
        "experiment",
        "setting",
        "axis",
        *(f"λ*_{n}: e [95%], verdict" for n in NORMS),
        *(f"λ*_sum, {LABELS[m]}" for m in extra),
        "λ_sum near-optimal at every point",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if row["cells"] is None:
            cells = [f"no exponent fitted ({row['bounded']} optima bounded)"] + [""] * len(NORMS)
        else:
            name, lo, hi = row["axis"]
            cells = [f"{name} {lo:g}–{hi:g}{_fitted_count(row['fitted'])}"]
            cells += [_cell(*_marked(row, n)).replace("-", "−") for n in NORMS]
        cells += [row["metrics"][m].replace("-", "−") for m in extra]
        lines.append("| " + " | ".join([row["experiment"], row["setting"], *cells, row["near"]]) + " |")
    if extra:  # what the other metrics' columns hold, under the table
        lines += ["", metrics_note(extra)]
    return "\n".join(lines) + "\n"
