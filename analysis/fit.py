"""``fit``: one coef* per setting and width from all of its runs, λ* in every normalisation,
exponents against the study's axes with equivalence verdicts, and the joint (η, λ) optimum.

A *setting* is every ``config.*`` field that varies in the table but the study's axes, λ, the
normalisation and the seed: docs/analysis.md#settings-are-derived-never-assumed. Diverged runs count as
+inf, failed and running runs are left out, λ = 0 runs are the baseline:
docs/analysis.md#one-coef-per-setting-and-width-from-all-of-its-runs."""

from __future__ import annotations

import json
from typing import Iterator, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from analysis.optimum import Optimum, fit_optimum
from analysis.scaling import margin, meta_regression, verdict
from analysis.table import CONFIG, AnalysisError
from wdbench.config import STUDY_AXES
from wdbench.normalisation import NORMS, norm_factor

METRICS = ("val_loss", "best_val_loss", "val_err")  # the final loss, the best epoch's loss, the final error rate
# how each metric's intervals are widened (optimum.fit_optimum), as its calibration needed: docs/analysis.md#three-metrics
INTERVALS = {"val_loss": {}, "best_val_loss": {"hull": True, "grid_floor": True}, "val_err": {"hull": True}}
AXES = {axis: CONFIG + field for axis, field in STUDY_AXES.items()}
NOT_SETTING = {CONFIG + f for f in ("penalty.norm", "penalty.lam", "penalty.log10_coef", "seed")} | set(AXES.values())
LR = CONFIG + "optim.lr"
MIN_SEEDS = 3
EXPONENT_COLUMNS = [
    "setting",
    "norm",
    "axis",
    "exponent",
    "lo",
    "hi",
    "lo90",
    "hi90",
    "margin",
    "verdict",
    "axis_min",
    "axis_max",
    "n_points",
    "n_left_out",
    "tau",
    "dof",
    "log10_C",
]
N_DRAWS = 4000  # parametric draws for the joint (η, λ) optimum


class PointKey(NamedTuple):
    """A point fitted on its own: its setting's label and its place on the study's axes."""

    setting: str
    width: int
    n_train: int
    batch_size: int


assert PointKey._fields[1:] == tuple(AXES)  # fitted_groups fills a key from a groupby over the axes in this order


class FittedPoint(NamedTuple):
    """One point's usable runs (its λ = 0 runs among them) and the optimum fitted to them."""

    key: PointKey
    runs: pd.DataFrame
    optimum: Optimum


def metric_values(df: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in METRICS:
        raise AnalysisError(f"--metric {metric}: unknown; allowed: {', '.join(METRICS)}")
    if metric not in df.columns and metric != "val_err":
        raise AnalysisError(f"--metric {metric}: the table has no {metric} column; collect it again with this version")
    values = 1.0 - df["val_acc"] if metric == "val_err" else df[metric]
    values = values.astype(float).where(np.isfinite(values), np.inf)
    return values.where(df["status"] != "diverged", np.inf)


def setting_fields(runs: pd.DataFrame) -> list[str]:
    """The config fields that vary among the table's usable (completed or diverged) runs and define
    settings; a field that varies only among failed runs does not split anything."""
    used = runs[runs["status"].isin(["completed", "diverged"])]
    return sorted(
        c for c in used.columns if c.startswith(CONFIG) and c not in NOT_SETTING and used[c].astype(str).nunique() > 1
    )


def _key(frame: pd.DataFrame, fields: list[str]) -> pd.Series:
    """A readable setting label per row, e.g. 'optim.lr=0.1, model.depth=4' ('all' for one setting)."""
    if not fields:
        return pd.Series("all", index=frame.index)
    return (
        frame[fields]
        .astype(str)
        .apply(lambda r: ", ".join(f"{f[len(CONFIG) :]}={v}" for f, v in zip(fields, r)), axis=1)
    )


def _keyed_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Completed and diverged runs with their metric, setting label and a coef that compares exactly."""
    ok = runs[runs["status"].isin(["completed", "diverged"])].copy()
    empty = [a for a in AXES if ok[a].isna().any()]
    if empty:
        raise AnalysisError(
            f"column {empty[0]}: {int(ok[empty[0]].isna().sum())} usable run(s) have no value; "
            "every run needs width, n_train and batch_size"
        )
    ok["value"] = metric_values(ok, metric)
    ok["setting"] = _key(ok, setting_fields(runs))
    # λ·c computed in two normalisations may differ in the last bit: one coef, compared and fitted alike
    ok["coef"] = ok["coef"].map(lambda c: float(f"{c:.10g}"))
    return ok


RUN_KEY = ["setting", *AXES, "coef", "seed"]  # one experiment, whichever normalisation named it


def usable_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The runs the fit uses: the same (setting, axes, coef, seed) named in several normalisations
    is one experiment and counts once."""
    return _keyed_runs(runs, metric).drop_duplicates(RUN_KEY)


def consistency_table(runs: pd.DataFrame, metric: str = "val_loss", tolerance: float = 1e-6) -> pd.DataFrame:
    """Runs of one setting, axes, coef and seed (named in one normalisation or several) must agree."""
    ok = _keyed_runs(runs, metric)
    rows = []
    for key, g in ok.groupby(RUN_KEY):
        if len(g) < 2:
            continue
        values = g["value"].to_numpy(float)
        spread = 0.0 if np.all(values == values[0]) else float(np.nanmax(values) - np.nanmin(values))
        rows.append(
            {
                **dict(zip(["setting", *AXES, "coef", "seed"], key)),
                "norms": ",".join(sorted(g["norm"])),
                "spread": spread,
                "agree": spread <= tolerance,
            }
        )
    return pd.DataFrame(rows, columns=["setting", *AXES, "coef", "seed", "norms", "spread", "agree"])


def fitted_groups(runs: pd.DataFrame, metric: str) -> Iterator[FittedPoint]:
    """A FittedPoint per (setting, width, N_train, B), in that order."""
    ok = usable_runs(runs, metric)
    if ok.empty:
        raise AnalysisError("no completed or diverged runs in the table")
    for key, group in ok.groupby(["setting", *AXES], sort=True):
        curve, baseline = group[group["coef"] > 0], group[group["coef"] == 0]
        yield FittedPoint(
            PointKey(*key),
            group,
            fit_optimum(
                np.log10(curve["coef"]),
                curve["value"],
                curve["seed"],
                baseline["value"],
                baseline["seed"],
                **INTERVALS[metric],
            ),
        )


def coef_star_table(
    runs: pd.DataFrame, metric: str = "val_loss", fits: list[FittedPoint] | None = None
) -> pd.DataFrame:
    """One row per (setting, width, N_train, B): coef* with its interval, λ* in every normalisation.
    ``fits``: ``fitted_groups(runs, metric)`` when the caller already has them (figures reuse them)."""
    fields = setting_fields(runs)
    rows = []
    for key, group, opt in fits if fits is not None else fitted_groups(runs, metric):
        sizes = {
            "n_decayed": int(group["n_decayed"].median()),
            "batch_size": int(key.batch_size),
            "n_train": int(key.n_train),
        }
        row = {
            **key._asdict(),
            **group.iloc[0][fields].to_dict(),
            "n_decayed": sizes["n_decayed"],
            "n_params": int(group["n_params"].median()),
            "metric": metric,
            **opt.row(),
        }
        for name in ("x", "lo", "hi", "near_lo", "near_hi"):
            row[f"coef_{name}"] = 10.0 ** row.pop(name)
        row["coef_star"] = row.pop("coef_x")
        for norm in NORMS:
            c = norm_factor(norm, **sizes)
            for name in ("star", "lo", "hi", "near_lo", "near_hi"):
                row[f"lam_{name}_{norm}"] = row[f"coef_{name}"] / c
        rows.append(row)
    return pd.DataFrame(rows)


def _design(points: pd.DataFrame, axes: list[str]) -> np.ndarray:
    return np.column_stack([np.ones(len(points))] + [np.log10(points[a].astype(float)) for a in axes])


def varying_axes(points: pd.DataFrame) -> list[str]:
    """The study's axes that vary among ``points``; B drops out when it moves with N_train (a
    full-batch study: B/N_train fixed, so the two exponents cannot be told apart and per-step's c is
    constant), and the exponent is N_train's."""
    axes = [a for a in AXES if points[a].nunique() > 1]
    if {"n_train", "batch_size"} <= set(axes) and (points["batch_size"] / points["n_train"]).nunique() == 1:
        axes.remove("batch_size")
    return axes


def exponent_table(stars: pd.DataFrame) -> pd.DataFrame:
    """Per setting, normalisation and varying axis: the exponent of λ* with 95% and 90% intervals,
    the TOST margin and verdict over the range the bounded (status ok) optima span, the only ones fitted."""
    rows = []
    for setting, series in stars.groupby("setting", sort=True):
        points = series[series["status"] == "ok"]
        axes = varying_axes(points)  # an axis left with one value among the fitted points drops out
        if not axes:
            continue
        base = {"setting": setting, "n_points": len(points), "n_left_out": len(series) - len(points)}
        try:
            design = _design(points, axes)
            for norm in ("coef", *NORMS):
                y = np.log10(points["coef_star" if norm == "coef" else f"lam_star_{norm}"].to_numpy(float))
                fit = meta_regression(design, y, points["se"].to_numpy(float))
                (lo95, hi95), (lo90, hi90) = fit.interval(0.95), fit.interval(0.90)
                for j, axis in enumerate(axes, start=1):
                    # the range the fitted optima span: a verdict over the planned range would extend the
                    # power law past its points and call a movement that was never measured
                    bound = margin(points[axis])
                    rows.append(
                        {
                            **base,
                            "norm": norm,
                            "axis": axis,
                            "exponent": fit.estimate[j],
                            "lo": lo95[j],
                            "hi": hi95[j],
                            "lo90": lo90[j],
                            "hi90": hi90[j],
                            "margin": bound,
                            "verdict": verdict(lo90[j], hi90[j], bound, points[axis].max() / points[axis].min()),
                            "axis_min": points[axis].min(),
                            "axis_max": points[axis].max(),
                            "tau": fit.tau,
                            "dof": fit.dof,
                            "log10_C": fit.estimate[0],
                        }
                    )
        except AnalysisError as err:
            rows.append({**base, "norm": "coef", "axis": ",".join(axes), "verdict": f"not fitted: {err}"})
    return pd.DataFrame(rows, columns=EXPONENT_COLUMNS)


CLOSED_FORM_COLUMNS = ["setting", *AXES, "status", "coef_true", "coef_star", "coef_lo", "coef_hi", "holds_truth"]


def closed_form_table(runs: pd.DataFrame, stars: pd.DataFrame) -> pd.DataFrame:
    """For ridge runs (data=ridge, model=linear): per fitted point, the exact optimum coef* =
    d·σ²/(n·r²) (d = width, n = N_train, σ = data.noise, r = data.signal, read from each point's
    runs) beside the measured one; ``holds_truth``: a bounded interval contains it (None if open)."""
    if CONFIG + "data.name" not in runs or not (runs[CONFIG + "data.name"] == "ridge").any():
        return pd.DataFrame(columns=CLOSED_FORM_COLUMNS)
    keyed = _keyed_runs(runs, "val_loss")  # settings labelled as in ``stars``, over every run of the table
    keyed = keyed[keyed[CONFIG + "data.name"] == "ridge"]
    ratio = (keyed[CONFIG + "data.noise"].astype(float) / keyed[CONFIG + "data.signal"].astype(float)) ** 2
    if ratio.isna().any():
        raise AnalysisError("ridge runs without data.noise and data.signal recorded: no closed form to check")
    truths = ratio.groupby([keyed["setting"], *(keyed[a] for a in AXES)]).agg(["min", "max"])
    rows = []
    for _, star in stars.iterrows():
        key = (star["setting"], *(star[a] for a in AXES))
        if key not in truths.index:
            continue
        lo_ratio, hi_ratio = truths.loc[key]
        if lo_ratio != hi_ratio:
            raise AnalysisError(f"{key}: runs of one point differ in data.noise/data.signal; no single truth")
        truth = star["width"] * lo_ratio / star["n_train"]
        bounded = star["status"] == "ok"
        rows.append(
            {
                **{k: star[k] for k in ("setting", *AXES, "status", "coef_star", "coef_lo", "coef_hi")},
                "coef_true": truth,
                "holds_truth": bool(star["coef_lo"] <= truth <= star["coef_hi"]) if bounded else None,
            }
        )
    return pd.DataFrame(rows, columns=CLOSED_FORM_COLUMNS)


PREDICTION_COLUMNS = ["setting", "source", "norm", "axis", "predicted", "exponent", "lo", "hi", "consistent"]


def prediction_table(runs: pd.DataFrame, exponents: pd.DataFrame) -> pd.DataFrame:
    """Each law an experiment file predicts (its runs' ``predictions``, all of a setting's runs
    together) beside the measured exponent of the same λ* and axis; ``consistent``: the prediction
    lies in the measured 95% interval (None where that exponent was not fitted)."""
    if "predictions" not in runs.columns:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    ok = _keyed_runs(runs, "val_loss")
    rows = []
    for setting, group in ok.groupby("setting", sort=True):
        laws = {
            json.dumps(law, sort_keys=True)
            for text in group["predictions"].dropna().unique()
            for law in json.loads(text)
        }
        for law in sorted(map(json.loads, laws), key=lambda law: (law["axis"], law["norm"], law["source"])):
            measured = exponents[
                (exponents["setting"] == setting)
                & (exponents["norm"] == law["norm"])
                & (exponents["axis"] == law["axis"])
            ]
            e = measured.iloc[0] if len(measured) else pd.Series({"exponent": np.nan, "lo": np.nan, "hi": np.nan})
            fitted = bool(np.isfinite(e["exponent"]))
            rows.append(
                {
                    "setting": setting,
                    "source": law["source"],
                    "norm": law["norm"],
                    "axis": law["axis"],
                    "predicted": law["exponent"],
                    "exponent": e["exponent"],
                    "lo": e["lo"],
                    "hi": e["hi"],
                    "consistent": bool(e["lo"] <= law["exponent"] <= e["hi"]) if fitted else None,
                }
            )
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def _split_normal(rng: np.random.Generator, lo_x_hi: np.ndarray) -> np.ndarray:
    """N_DRAWS draws per row from the two-piece normal whose 2.5% and 97.5% points are the row's
    (calibrated, asymmetric) interval ends; rows without an interval give their point (never used:
    an open lr winning a draw makes the joint coef* interval open)."""
    lo, x, hi = lo_x_hi.T
    lo, hi = np.where(np.isfinite(lo), lo, x), np.where(np.isfinite(hi), hi, x)
    z = rng.standard_normal((N_DRAWS, len(x)))
    return x + z * np.where(z < 0, x - lo, hi - x) / stats.norm.ppf(0.975)


def joint_lr_table(stars: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Where the learning rate varies: per width (and other axes) the (η, coef) with the lowest
    fitted metric. Every lr with a fitted minimum competes, a flat (open) one too; the intervals
    come from parametric draws of every lr's level (normal: value ± value_se) and coef* (a split
    normal that reproduces its own 95% interval): the spread
    of the winning η and of its coef* over the draws. When an open lr wins some draws, coef* has no
    bounded interval."""
    if LR not in stars.columns or stars[LR].nunique() < 2:
        return pd.DataFrame()
    rest = [c for c in stars.columns if c.startswith(CONFIG) and c != LR]
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in stars.groupby([*rest, *AXES], sort=True, dropna=False):
        group = group[group["status"].isin(["ok", "open"]) & np.isfinite(group["value_se"])]
        if group[LR].nunique() < 2:
            continue
        value = rng.normal(group["value"], group["value_se"], (N_DRAWS, len(group)))
        win = np.argmin(value, axis=1)
        best = int(np.argmin(group["value"]))
        log_lr = np.log10(group[LR].to_numpy(float))[win]
        bounded = (group["status"] == "ok").to_numpy()[win].all()
        x = _split_normal(rng, np.log10(group[["coef_lo", "coef_star", "coef_hi"]].to_numpy(float)))
        x_win = x[np.arange(N_DRAWS), win]
        rows.append(
            {
                **dict(zip([*rest, *AXES], key)),
                "lr_star": group[LR].iloc[best],
                "lr_lo": 10 ** np.percentile(log_lr, 2.5),
                "lr_hi": 10 ** np.percentile(log_lr, 97.5),
                "coef_star": group["coef_star"].iloc[best],
                "coef_lo": 10 ** np.percentile(x_win, 2.5) if bounded else np.nan,
                "coef_hi": 10 ** np.percentile(x_win, 97.5) if bounded else np.nan,
                "value": group["value"].iloc[best],
                "n_lrs": group[LR].nunique(),
            }
        )
    return pd.DataFrame(rows)


TUNED = "tuned"  # the learning rate of a joint (η, λ) optimum, in its setting's label


def tuned_lr_stars(stars: pd.DataFrame, joint: pd.DataFrame) -> pd.DataFrame:
    """The joint optimum of each point as a setting of its own (``optim.lr=tuned``, beside any other
    field that varies), in coef_star_table's columns, so that exponent_table fits λ* at the learning
    rate tuned per point like any other setting. Its se is its 95% interval's half log-width / 1.96
    (the interval spans the draws' winning lr and that lr's coef*); open when the interval is."""
    if joint.empty:
        return stars.iloc[:0]
    varying = [c for c in joint.columns if c.startswith(CONFIG) and joint[c].astype(str).nunique() > 1]
    rows = []
    for _, j in joint.iterrows():
        at = stars[(stars[LR] == j["lr_star"]) & np.logical_and.reduce([stars[a] == j[a] for a in AXES])]
        sizes = {
            "n_decayed": int(at["n_decayed"].iloc[0]),
            "batch_size": int(j["batch_size"]),
            "n_train": int(j["n_train"]),
        }
        bounded = bool(np.isfinite(j["coef_lo"]))
        row = {
            "setting": ", ".join([f"{LR[len(CONFIG) :]}={TUNED}", *(f"{c[len(CONFIG) :]}={j[c]}" for c in varying)]),
            **{a: int(j[a]) for a in AXES},
            "n_decayed": sizes["n_decayed"],
            "status": "ok" if bounded else "open",
            "coef_star": j["coef_star"],
            "coef_lo": j["coef_lo"],
            "coef_hi": j["coef_hi"],
            "se": np.log10(j["coef_hi"] / j["coef_lo"]) / (2 * 1.96) if bounded else np.nan,
        }
        for norm in NORMS:
            row[f"lam_star_{norm}"] = j["coef_star"] / norm_factor(norm, **sizes)
        rows.append(row)
    return pd.DataFrame(rows)


def notes(runs: pd.DataFrame, stars: pd.DataFrame) -> list[str]:
    """What a reader must know about this table before trusting its numbers, one line each."""
    out = []
    fields = setting_fields(runs)
    if fields:
        out.append(
            f"{stars['setting'].nunique()} settings, told apart by: {', '.join(f[len(CONFIG) :] for f in fields)}"
        )
    for setting, series in stars.groupby("setting"):
        if series["width"].nunique() < 2 and runs["width"].nunique() > 1:
            out.append(
                f"setting '{setting}' has a single width ({series['width'].iloc[0]}): a field that varies "
                "with the width cannot be a setting; no exponent for it"
            )
    few = stars[stars["n_seeds"] < MIN_SEEDS]
    if len(few):
        out.append(
            f"fewer than {MIN_SEEDS} seeds at {len(few)} point(s) (e.g. width {few['width'].iloc[0]}: "
            f"{few['n_seeds'].iloc[0]}): intervals are wide and rest on the model"
        )
    for status, text in (
        ("edge", "the minimum is at the end of the grid (or next to diverged coefs): widen or refine the grid there"),
        ("open", "the interval reaches the end of the grid (a flat basin): not fitted"),
        ("too_few", "too few runs to fit the curve"),
        ("no_runs", "no finite run at coef > 0 (only λ = 0, or every run diverged)"),
    ):
        hit = stars[stars["status"] == status]
        if len(hit):
            out.append(
                f"{status}: {len(hit)} point(s), e.g. {hit['setting'].iloc[0]} width {hit['width'].iloc[0]}: {text}"
            )
    for setting, series in stars.groupby("setting"):
        if series["width"].nunique() > 1:
            counts = series.drop_duplicates("width")
            kappa = np.polyfit(np.log10(counts["width"]), np.log10(counts["n_decayed"]), 1)[0]
            out.append(
                f"κ = d log N_decayed / d log width = {kappa:.3f} ({setting}): λ*_mean's exponent is coef*'s plus κ"
            )
    far = stars[stars["elsewhere"] > 0]
    if len(far):
        out.append(
            f"{len(far)} point(s) have coefs away from their interval that are also plausible as the minimum "
            f"(e.g. width {far['width'].iloc[0]}: {far['elsewhere'].iloc[0]:.2f} dex; elsewhere column): "
            "usually a barely constrained end of the grid; a denser grid there settles it"
        )
    near = stars[stars["n_diverged_near"] > 0]
    if len(near):
        out.append(
            f"{int(near['n_diverged_near'].sum())} run(s) diverged inside a λ* interval "
            f"(e.g. width {near['width'].iloc[0]})"
        )
    return out
