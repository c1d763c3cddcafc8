"""``fit``: λ* per width (seed-averaged, refined below grid resolution, bootstrapped over seeds) and
power laws λ* = C·x^α against width and n_params, with the normalisation identities.

Conventions: diverged runs count as infinite loss (a λ that diverges is a bad λ, not a missing one);
failed and still-running runs are missing; λ = 0 runs are baselines and have no place on a log grid.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.table import AnalysisError
from wdbench.penalty import NORMS, norm_factor

SERIES = ["model", "norm", "apply", "optimizer", "n_train", "batch_size"]
METRICS = ("val_loss", "val_err")
N_BOOTSTRAP = 1000


def metric_values(df: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in METRICS:
        raise AnalysisError(f"--metric {metric}: unknown; allowed: {', '.join(METRICS)}")
    values = df["val_loss"] if metric == "val_loss" else 1.0 - df["val_acc"]
    values = values.astype(float).where(np.isfinite(values), np.inf)
    return values.where(df["status"] != "diverged", np.inf)


def loss_matrix(runs: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(log10 λ grid, metric matrix [λ, seed]); inf = diverged, nan = no run there."""
    usable = runs[runs["status"].isin(["completed", "diverged"]) & (runs["lam"] > 0)]
    table = usable.assign(value=metric_values(usable, metric)).pivot_table(
        index="lam", columns="seed", values="value", aggfunc="mean")
    table = table.dropna(how="all")
    return np.log10(table.index.to_numpy(dtype=float)), table.to_numpy(dtype=float)


def refined_argmin(log_lam: np.ndarray, loss: np.ndarray) -> tuple[float, int]:
    """Grid argmin, moved to the vertex of the parabola (in log λ) through it and its neighbours."""
    if not np.isfinite(loss).any():
        return np.nan, -1
    i = int(np.argmin(np.where(np.isfinite(loss), loss, np.inf)))
    if 0 < i < len(loss) - 1 and np.isfinite(loss[i - 1:i + 2]).all():
        a, b, _ = np.polyfit(log_lam[i - 1:i + 2], loss[i - 1:i + 2], 2)
        if a > 0:
            return float(np.clip(-b / (2 * a), log_lam[i - 1], log_lam[i + 1])), i
    return float(log_lam[i]), i


def _seed_mean(matrix: np.ndarray) -> np.ndarray:
    """Mean over seeds: a diverged seed (inf) makes it inf, a missing one (nan) is left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bootstrap draw may miss every run at a λ
        return np.nanmean(matrix, axis=1)


def lambda_star(runs: pd.DataFrame, metric: str = "val_loss", n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """λ* of one (series, width) group, with a bootstrap-over-seeds 95% interval."""
    log_lam, matrix = loss_matrix(runs, metric)
    mean = _seed_mean(matrix)
    x_star, i = refined_argmin(log_lam, mean)
    n_seeds = matrix.shape[1]
    lo = hi = np.nan
    if n_seeds >= 2 and i >= 0 and n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = [refined_argmin(log_lam, _seed_mean(matrix[:, rng.integers(0, n_seeds, n_seeds)]))[0]
                 for _ in range(n_bootstrap)]
        lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return {"log10_lam_star": x_star, "lam_star": 10.0 ** x_star, "lam_star_lo": 10.0 ** lo,
            "lam_star_hi": 10.0 ** hi, "best_value": mean[i] if i >= 0 else np.nan,
            "at_edge": bool(i in (0, len(mean) - 1)) if i >= 0 else False, "all_diverged": i < 0,
            "n_seeds": n_seeds, "n_lams": len(log_lam)}


def lambda_star_table(df: pd.DataFrame, metric: str = "val_loss", n_bootstrap: int = N_BOOTSTRAP) -> pd.DataFrame:
    if df["width"].nunique() < 2:
        raise AnalysisError(f"the table has a single width ({df['width'].iloc[0]}); "
                            "λ*(width) needs at least 2")
    rows = []
    for key, runs in df.groupby(SERIES + ["width"], sort=True):
        star = lambda_star(runs, metric, n_bootstrap)
        sizes = {"n_decayed": int(runs["n_decayed"].median()), "batch_size": int(key[5]), "n_train": int(key[4])}
        coef = star["lam_star"] * norm_factor(key[1], **sizes)
        converted = {f"lam_star_{n}": coef / norm_factor(n, **sizes) for n in NORMS}
        rows.append({**dict(zip(SERIES + ["width"], key)), "n_params": int(runs["n_params"].median()),
                     "n_decayed": sizes["n_decayed"], "metric": metric, **star, "coef_star": coef, **converted})
    return pd.DataFrame(rows)


@dataclass
class PowerLaw:
    """log10 y = log10 C + α·log10 x by least squares, with t-based 95% intervals."""
    alpha: float
    log10_c: float
    alpha_lo: float
    alpha_hi: float
    r2: float
    n: int
    _mean_lx: float
    _sxx: float
    _s: float
    _t: float

    def predict(self, x) -> np.ndarray:
        return 10.0 ** (self.log10_c + self.alpha * np.log10(x))

    def band(self, x) -> tuple[np.ndarray, np.ndarray]:
        """95% confidence band of the fitted line."""
        lx = np.log10(x)
        half = self._t * self._s * np.sqrt(1 / self.n + (lx - self._mean_lx) ** 2 / self._sxx)
        centre = self.log10_c + self.alpha * lx
        return 10.0 ** (centre - half), 10.0 ** (centre + half)


def power_law(x, y) -> PowerLaw:
    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    n = len(lx)
    if n < 2 or np.ptp(lx) == 0:
        raise AnalysisError("a power-law fit needs at least 2 distinct widths with an interior λ*")
    fit = stats.linregress(lx, ly)
    dof = n - 2
    t = stats.t.ppf(0.975, dof) if dof > 0 else np.nan
    s = np.sqrt(np.sum((ly - fit.intercept - fit.slope * lx) ** 2) / dof) if dof > 0 else np.nan
    return PowerLaw(alpha=fit.slope, log10_c=fit.intercept, alpha_lo=fit.slope - t * fit.stderr,
                    alpha_hi=fit.slope + t * fit.stderr, r2=fit.rvalue ** 2, n=n, _mean_lx=lx.mean(),
                    _sxx=np.sum((lx - lx.mean()) ** 2), _s=s, _t=t)


def fit_points(stars: pd.DataFrame, include_edge: bool = False) -> pd.DataFrame:
    ok = np.isfinite(stars["lam_star"]) & ~stars["all_diverged"]
    return stars[ok & (include_edge | ~stars["at_edge"])]


def scaling_table(stars: pd.DataFrame, include_edge: bool = False) -> pd.DataFrame:
    rows = []
    for key, series in stars.groupby(SERIES, sort=True):
        points = fit_points(series, include_edge)
        for x in ("width", "n_params"):
            row = {**dict(zip(SERIES, key)), "x": x, "n_widths": len(points),
                   "n_excluded": len(series) - len(points)}
            try:
                law = power_law(points[x], points["lam_star"])
                row.update(alpha=law.alpha, alpha_lo=law.alpha_lo, alpha_hi=law.alpha_hi,
                           C=10.0 ** law.log10_c, r2=law.r2)
            except AnalysisError:
                row.update(alpha=np.nan, alpha_lo=np.nan, alpha_hi=np.nan, C=np.nan, r2=np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def identity_table(stars: pd.DataFrame, scaling: pd.DataFrame) -> pd.DataFrame:
    """α_mean − α_sum = κ (κ = d log N_decayed / d log width) and α_per_step − α_sum = 0."""
    by_width = scaling[scaling["x"] == "width"]
    rest = [k for k in SERIES if k != "norm"]
    rows = []
    for key, group in by_width.groupby(rest, sort=True):
        alpha = dict(zip(group["norm"], group["alpha"]))
        counts = stars.merge(pd.DataFrame([dict(zip(rest, key))]), on=rest)
        counts = counts.drop_duplicates("width")
        kappa = stats.linregress(np.log10(counts["width"]), np.log10(counts["n_decayed"])).slope
        for norm, expected, label in (("mean", kappa, "kappa"), ("per_step", 0.0, "0")):
            if norm in alpha and "sum" in alpha:
                observed = alpha[norm] - alpha["sum"]
                rows.append({**dict(zip(rest, key)), "identity": f"alpha_{norm} - alpha_sum = {label}",
                             "observed": observed, "expected": expected, "difference": observed - expected})
    return pd.DataFrame(rows, columns=rest + ["identity", "observed", "expected", "difference"])
