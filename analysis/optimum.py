"""coef* of one (setting, width) from all of its runs, whatever normalisation each was run in.

The model, fitted by least squares to the metric y against x = log10 coef over the whole grid:

    y_{s,j} = a_s + f(x_j) + ε_{s,j},   ε ~ N(0, σ²) independent,

a_s one offset per seed, f a cubic regression spline with knots at quantiles of the grid (``knots_for``),
ε the noise along the curve; the collapsed cliff is cut off first (``cliff_cut``). coef* is the minimum
of f; its 95% interval is the stretch of coefs around it that a t-test does not reject as the minimum
(``_plausible``), ``open`` where that reaches an end of the grid. The method and its statuses:
docs/analysis.md#the-estimator; why a spline over the whole grid, measured by the calibration:
docs/decisions.md#the-estimator-a-spline-over-the-whole-grid."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats
from scipy.interpolate import BSpline

KNOT_SPACING = 0.5  # dex between the spline's interior knots (fewer when the grid has few points)
REFINE_SPREAD = KNOT_SPACING / 2  # the adaptive search's fits: its coefs closer than this count once for knots
CLIFF = 0.25  # cut the curve where it has risen this fraction of the way from its minimum to its top
LEVEL = 0.95
SCAN = 601  # points at which the fitted curve and the slope test are evaluated

# ok: interior minimum with a bounded interval; edge: the fitted minimum is at the grid's end (widen
# the grid, or refine it next to diverged coefs); open: the interval reaches the grid's end;
# too_few: fewer runs than the model has parameters; no_runs: none with a finite metric.
STATUSES = ("ok", "edge", "open", "too_few", "no_runs")


class Curve(NamedTuple):
    """The fitted curve over the fitted range, for figures."""

    x: np.ndarray  # log10 coef
    value: np.ndarray  # the fitted metric, averaged over the seeds


@dataclass(frozen=True)
class Optimum:
    status: str
    x: float = np.nan  # log10 coef*
    lo: float = np.nan  # 95% interval of log10 coef* (status ok only)
    hi: float = np.nan
    se: float = np.nan  # of log10 coef*, implied by the interval ((hi − lo)/2t): the weight in the exponent fits
    value: float = np.nan  # fitted metric at coef*, averaged over the seeds
    value_se: float = np.nan  # of the level a new seed would reach: the fit's error plus the seeds' spread / √S
    near_lo: float = np.nan  # log10 coef where the fitted curve is within one run's noise σ of its minimum
    near_hi: float = np.nan
    sigma: float = np.nan  # residual SD: the noise of a single run
    offsets: dict | None = None  # seed -> a_s − mean(a): what the seed adds to its whole curve
    curve: Curve | None = None
    n_runs: int = 0
    n_seeds: int = 0
    n_coefs: int = 0
    n_fitted: int = 0  # runs left after cutting off the collapsed cliff
    n_diverged: int = 0
    n_diverged_near: int = 0  # diverged runs at a coef inside the 95% interval: worth a look
    elsewhere: float = 0.0  # dex of grid, away from the interval, also plausible as the minimum (see module doc)
    gain: float = np.nan  # the λ = 0 runs' level minus the fitted minimum, with its 95% interval
    gain_lo: float = np.nan
    gain_hi: float = np.nan
    n_baseline: int = 0
    unbounded: str = ""  # edge or open: where coef* may lie beyond the grid ("low", "high" or "both")
    shift_sd: float = np.nan  # ``shifts`` fits: SD of a seed's own shift of the curve along x, dex (τ)
    bend: float = np.nan  # ``shifts`` fits: f'' at coef*, per dex²

    def row(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("offsets", "curve", "shift_sd", "bend")}


def _component(mask: np.ndarray, at: int) -> tuple[int, int]:
    """First and last index of the run of True in ``mask`` that contains index ``at``."""
    lo = at
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    hi = at
    while hi < len(mask) - 1 and mask[hi + 1]:
        hi += 1
    return lo, hi


def _zero_crossing(scan: np.ndarray, slope: np.ndarray, at: int) -> float:
    """Where the fitted slope crosses zero next to the scan's best point (linear interpolation)."""
    for i in (at - 1, at):
        if 0 <= i < len(scan) - 1 and slope[i] <= 0 <= slope[i + 1] and slope[i + 1] > slope[i]:
            return float(scan[i] - slope[i] * (scan[i + 1] - scan[i]) / (slope[i + 1] - slope[i]))
    return float(scan[at])


def _seed_adjusted_means(x, y, seed) -> tuple[np.ndarray, np.ndarray]:
    """(grid, mean at each grid point) of y − (seed's mean offset), by alternating means."""
    grid, xi = np.unique(x, return_inverse=True)
    _, si = np.unique(seed, return_inverse=True)
    offset = np.zeros(si.max() + 1)
    for _ in range(20):
        mean = np.bincount(xi, y - offset[si]) / np.bincount(xi)
        offset = np.bincount(si, y - mean[xi]) / np.bincount(si)
        offset -= offset.mean()
    return grid, mean


def cliff_cut(x, y, seed) -> float:
    """The largest x the curve is fitted to: the first grid point right of the minimum from which every
    mean has risen ``CLIFF`` of the way to the top (inf when the curve never does). Every, not one: a coef
    run by one or two seeds (the adaptive search's) has a noisy mean, and one high one inside the basin
    would cut the basin off."""
    grid, mean = _seed_adjusted_means(x, y, seed)
    best = int(np.argmin(mean))
    risen = mean > mean[best] + CLIFF * (mean.max() - mean[best])
    stays = np.logical_and.accumulate(risen[::-1])[::-1]  # risen here and at every larger coef
    cut = np.nonzero(stays & (np.arange(len(grid)) > best))[0]
    return float(grid[cut[0]]) if len(cut) else np.inf


def spline_basis(x: np.ndarray, knots: np.ndarray, derivative: int = 0) -> np.ndarray:
    """Cubic B-spline basis (or its derivative) at x, without the first function: with one offset
    per seed the basis's partition of unity would make the intercept twice."""
    n = len(knots) - 4
    columns = []
    for i in range(1, n):
        spline = BSpline(knots, np.eye(n)[i], 3, extrapolate=False)
        columns.append((spline.derivative(derivative) if derivative else spline)(x))
    return np.nan_to_num(np.column_stack(columns))


def knots_for(grid: np.ndarray, spread: float = 0.0) -> np.ndarray:
    """As many interior knots as one every ``KNOT_SPACING`` dex, fewer when the grid has few distinct
    points (the spline keeps at least one degree of freedom per grid point for the noise), placed at
    quantiles of the grid points: on an even grid that is every KNOT_SPACING dex; where a grid is
    coarser at one end, evenly spaced knots leave a piece with a grid point at each end only, and
    the spline rang there (swings of twice the basin's depth between flat seed means, joint_lr's
    coarse low end); quantile knots give every piece points to follow. Points closer than ``spread``
    dex count once: the adaptive search's (REFINE_SPREAD), whose runs bunch around coef* and would pull
    the knots there otherwise (a spline most flexible where its slope is read)."""
    points = _thinned(grid, spread)
    n_inner = int(np.clip(round((grid[-1] - grid[0]) / KNOT_SPACING) - 1, 0, max(len(points) - 5, 0)))
    inner = np.quantile(points, np.linspace(0, 1, n_inner + 2)[1:-1])
    return np.r_[[grid[0]] * 4, inner, [grid[-1]] * 4]


def _thinned(grid: np.ndarray, spread: float) -> np.ndarray:
    """The sorted grid thinned from its low end to points at least ``spread`` apart."""
    kept = [grid[0]]
    for point in grid[1:]:
        if point - kept[-1] >= spread - 1e-9:
            kept.append(point)
    return np.array(kept)


def fit_optimum(
    x,
    y,
    seed,
    baseline_y=(),
    baseline_seed=(),
    hull: bool = False,
    grid_floor: bool = False,
    spread: float = 0.0,
    shifts: bool = False,
) -> Optimum:
    """coef* from runs at log10 coef ``x`` with metric ``y`` (+inf: diverged) and ``seed``; λ = 0
    runs (``baseline_*``), when given, enter the same fit as one more level sharing the seed
    offsets, so that the gain over λ = 0 is a contrast of the fit with its exact covariance.

    Wider intervals, for the metrics whose calibration needs them (docs/analysis.md#three-metrics): ``hull``,
    the interval is the hull of every plausible coef, not only the stretch around coef* (basins flat for
    their noise); ``grid_floor``, it reaches at least the grid coefs either side of coef* (where the spline
    alone would place the minimum between them: shapes a spline on a coarse grid follows less well); ``spread``,
    the knots treat coefs closer than this as one (``knots_for``); ``shifts``, each seed may shift its curve
    along x by its own amount, and the interval carries the spread of those shifts (``_seed_shifts``)."""
    x, y, seed = np.asarray(x, float), np.asarray(y, float), np.asarray(seed)
    baseline_y, baseline_seed = np.asarray(baseline_y, float), np.asarray(baseline_seed)
    diverged_at = x[np.isposinf(y)]
    ok = np.isfinite(y) & np.isfinite(x)
    counts = {"n_runs": int(ok.sum()), "n_diverged": len(diverged_at)}
    if not ok.any():
        return Optimum("no_runs", **counts)
    x, y, seed = x[ok], y[ok], seed[ok]
    keep = x <= cliff_cut(x, y, seed) + 1e-12
    x, y, seed = x[keep], y[keep], seed[keep]
    grid, seeds = np.unique(x), np.unique(seed)
    counts.update(n_seeds=len(seeds), n_coefs=len(grid), n_fitted=len(y))
    if len(grid) < 4:
        return Optimum("too_few", **counts)
    knots = knots_for(grid, spread)
    paired = np.isfinite(baseline_y) & np.isin(baseline_seed, seeds)  # a λ = 0 run needs its seed's offset
    counts["n_baseline"] = int(paired.sum())
    fit = _least_squares(
        _design(x, seed, seeds, knots, baseline_seed[paired]), np.r_[y, baseline_y[paired]], len(seeds), len(knots) - 5
    )
    if fit is None:
        return Optimum("too_few", **counts)

    scan = _scan(grid, knots, fit)
    common = dict(
        x=_zero_crossing(scan.x, scan.slope, scan.at),
        **_level(fit, scan),
        sigma=fit.sigma,
        offsets=dict(zip(seeds.tolist(), (fit.offsets - fit.offsets.mean()).tolist())),
        curve=Curve(scan.x, scan.curve + fit.offsets.mean()),
        **counts,
    )
    if paired.any():
        common.update(_gain(fit, scan))
    if scan.at in (0, SCAN - 1):
        return Optimum("edge", unbounded="low" if scan.at == 0 else "high", **common)
    near_lo, near_hi = _component(scan.curve - scan.curve[scan.at] <= fit.sigma, scan.at)
    common.update(near_lo=float(scan.x[near_lo]), near_hi=float(scan.x[near_hi]))
    shift = _seed_shifts(fit, scan, x, y, seed, seeds, knots) if shifts else _Shift.none(fit.dof)
    if shifts:
        common.update(shift_sd=float(np.sqrt(shift.tau2)), bend=scan.curvature)
    t = stats.t.ppf(0.5 + LEVEL / 2, shift.dof)
    plausible = _plausible(fit, scan, t, shift)
    lo, hi = _component(plausible, scan.at)
    common["elsewhere"] = float((plausible.sum() - (hi - lo + 1)) * (scan.x[1] - scan.x[0]))
    if hull:  # the stretches away from coef* are inside the interval, not elsewhere
        lo, hi = np.nonzero(plausible)[0][[0, -1]]
        common["elsewhere"] = 0.0
    if grid_floor:
        at_grid = np.rint((grid - grid[0]) / (grid[-1] - grid[0]) * (SCAN - 1)).astype(int)
        left, right = at_grid[grid < common["x"]], at_grid[grid > common["x"]]
        lo, hi = min(lo, left.max()) if len(left) else lo, max(hi, right.min()) if len(right) else hi
    if lo == 0 or hi == SCAN - 1 or scan.curvature <= 0:
        sides = [side for side, reached in (("low", lo == 0), ("high", hi == SCAN - 1)) if reached]
        return Optimum("open", unbounded=sides[0] if len(sides) == 1 else "both", **common)
    lo_x, hi_x = float(scan.x[lo - 1]), float(scan.x[hi + 1])  # resolved to the scan's step, outwards
    return Optimum(
        "ok",
        lo=lo_x,
        hi=hi_x,
        se=(hi_x - lo_x) / (2 * t),
        n_diverged_near=int(np.sum((diverged_at >= lo_x) & (diverged_at <= hi_x))),
        **common,
    )


def _design(x, seed, seeds, knots, baseline_seed) -> np.ndarray:
    """The model's design: a column per seed's offset, the spline's basis, and where λ = 0 runs are
    given (``baseline_seed``: their seeds) one more column for their level, their rows below."""
    design = np.hstack([(seed[:, None] == seeds[None, :]).astype(float), spline_basis(x, knots)])
    n_base = len(baseline_seed)
    if n_base:  # a λ = 0 run keeps its seed's offset and sits on no point of the curve
        base_rows = np.hstack(
            [(baseline_seed[:, None] == seeds[None, :]).astype(float), np.zeros((n_base, design.shape[1] - len(seeds)))]
        )
        design = np.vstack([np.hstack([design, np.zeros((len(x), 1))]), np.hstack([base_rows, np.ones((n_base, 1))])])
    return design


class _Fit(NamedTuple):
    """The least-squares fit of the design: coefficients in its column order, their covariance."""

    coef: np.ndarray  # seed offsets, spline coefficients, then the λ = 0 level where fitted
    cov: np.ndarray
    dof: int
    sigma: float  # residual SD: the noise of a single run
    n_seeds: int
    n_spline: int

    @property
    def offsets(self) -> np.ndarray:  # a_s, each seed's level
        return self.coef[: self.n_seeds]

    @property
    def beta(self) -> np.ndarray:  # the spline's coefficients
        return self.coef[self.n_seeds : self.n_seeds + self.n_spline]

    @property
    def beta_cov(self) -> np.ndarray:
        spline = slice(self.n_seeds, self.n_seeds + self.n_spline)
        return self.cov[spline, spline]


def _least_squares(design: np.ndarray, y: np.ndarray, n_seeds: int, n_spline: int) -> _Fit | None:
    """The fit, or None where the design is rank-deficient or leaves no degree of freedom for the noise."""
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(y) - rank
    if rank < design.shape[1] or dof < 1:
        return None
    residual = y - design @ coef
    sigma = float(np.sqrt(residual @ residual / dof))
    return _Fit(coef, sigma**2 * np.linalg.inv(design.T @ design), dof, sigma, n_seeds, n_spline)


class _Scan(NamedTuple):
    """The fitted curve f (seed offsets aside) and its slope on SCAN points spanning the grid."""

    x: np.ndarray
    basis: np.ndarray  # the spline's basis at each point
    curve: np.ndarray
    slope: np.ndarray
    slope_se: np.ndarray
    at: int  # the lowest point
    curvature: float  # f'' there


def _scan(grid: np.ndarray, knots: np.ndarray, fit: _Fit) -> _Scan:
    x = np.linspace(grid[0], grid[-1], SCAN)
    basis, slope_basis, curvature_basis = (spline_basis(x, knots, d) for d in (0, 1, 2))
    curve = basis @ fit.beta
    at = int(np.argmin(curve))
    return _Scan(
        x,
        basis,
        curve,
        slope_basis @ fit.beta,
        np.sqrt(np.einsum("ij,jk,ik->i", slope_basis, fit.beta_cov, slope_basis)),
        at,
        float(curvature_basis[at] @ fit.beta),
    )


def _level(fit: _Fit, scan: _Scan) -> dict:
    """The fitted metric at the scan's minimum averaged over the seeds, and the SE of the level a new seed
    would reach there: the fit's error plus the seeds' spread / √S."""
    ns = fit.n_seeds
    value_basis = np.r_[np.full(ns, 1 / ns), scan.basis[scan.at], np.zeros(len(fit.coef) - ns - fit.n_spline)]
    between_seeds = float(np.var(fit.offsets, ddof=1)) / ns if ns > 1 else 0.0
    return dict(
        value=float(value_basis @ fit.coef),
        value_se=float(np.sqrt(value_basis @ fit.cov @ value_basis + between_seeds)),
    )


def _gain(fit: _Fit, scan: _Scan) -> dict:
    """The λ = 0 level minus the curve's minimum, both relative to the same seed offsets, with its 95%
    t-interval: a contrast of the one fit."""
    contrast = np.r_[np.zeros(fit.n_seeds), -scan.basis[scan.at], 1.0]
    gain = float(contrast @ fit.coef)
    half = float(stats.t.ppf(0.975, fit.dof) * np.sqrt(contrast @ fit.cov @ contrast))
    return dict(gain=gain, gain_lo=gain - half, gain_hi=gain + half)


class _Shift(NamedTuple):
    """What the seeds' own shifts of the curve add to the variances the interval's tests use."""

    tau2: float  # variance of a seed's shift along x, dex² (NaN: not estimable)
    slope_var: np.ndarray | float  # added to Var f'(x) at each scan point
    excess_var: np.ndarray | float  # added to Var (f(x) − f(x*))
    dof: float  # of the t the tests use

    @classmethod
    def none(cls, dof: float) -> _Shift:  # nothing estimated, nothing added
        return cls(np.nan, 0.0, 0.0, dof)


def _seed_shifts(fit: _Fit, scan: _Scan, x, y, seed, seeds, knots) -> _Shift:
    """A seed whose optimum sits δ_s from the others' has y ≈ a_s + f(x) − δ_s·f'(x): its residuals regressed
    on f' (centred within the seed, whose offset absorbs the mean) estimate δ_s, with variance σ²/Σ(f' − f̄')²
    over its runs, σ² with those slopes taken out of the residuals. τ² is their random-effects
    (DerSimonian–Laird) variance. The fitted curve's location has the model's variance 1/Σw; the seeds say
    it has the larger of the random-effects variance and their own weighted scatter (Hartung–Knapp, robust
    with few seeds), which only S − 1 degrees of freedom estimate. The excess over 1/Σw is added to the
    slope's variance times f''(x)² and to the rise's times f'(x)², and the t takes the Satterthwaite
    degrees of freedom of the slope's variance at the minimum with the location's part at S − 1. τ² is
    NaN, and nothing is added, where fewer than two seeds say anything."""
    index, n = np.searchsorted(seeds, seed), len(seeds)
    slope = spline_basis(x, knots, 1) @ fit.beta
    centred = slope - (np.bincount(index, slope, n) / np.bincount(index, minlength=n))[index]
    residual = y - spline_basis(x, knots) @ fit.beta - fit.offsets[index]
    info, lean = np.bincount(index, centred**2, n), -np.bincount(index, residual * centred, n)
    used = info > 1e-12 * max(info.max(), 1e-300)
    k = int(used.sum())
    noise = (fit.sigma**2 * fit.dof - lean[used] ** 2 @ (1 / info[used])) / (fit.dof - (k - 1)) if k >= 2 else 0.0
    if k < 2 or fit.dof <= k - 1 or not noise > 0:
        return _Shift.none(fit.dof)
    w, d = info[used] / noise, lean[used] / info[used]  # 1/Var δ̂_s, δ̂_s
    q = float(w @ (d - (w @ d) / w.sum()) ** 2)
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w @ w) / w.sum()))
    # the curve's location: the model's variance 1/Σw against the seeds' own scatter (Hartung-Knapp, no
    # smaller than the random-effects variance), which only k - 1 degrees of freedom estimate
    star = 1 / (1 / w + tau2)
    mean = (star @ d) / star.sum()
    location = max(1 / star.sum(), float(star @ (d - mean) ** 2) / ((k - 1) * star.sum()))
    extra = max(0.0, location - 1 / w.sum())
    bend = spline_basis(scan.x, knots, 2) @ fit.beta
    model = scan.slope_se[scan.at] ** 2
    seeds_part = min(location * bend[scan.at] ** 2, model + extra * bend[scan.at] ** 2)
    rest = model + extra * bend[scan.at] ** 2 - seeds_part
    total = rest + seeds_part
    dof = total**2 / (rest**2 / fit.dof + seeds_part**2 / (k - 1)) if total > 0 else fit.dof
    return _Shift(tau2, extra * bend**2, extra * scan.slope**2, dof)


def _plausible(fit: _Fit, scan: _Scan, t: float, shift: _Shift) -> np.ndarray:
    """Per scan point: neither "the slope is zero" nor "f is no higher than at the minimum" is rejected
    (a t-test at ``t`` each), so it is plausible as the minimum; the minimum itself always is."""
    excess_basis = scan.basis - scan.basis[scan.at]
    excess_var = np.einsum("ij,jk,ik->i", excess_basis, fit.beta_cov, excess_basis) + shift.excess_var
    slope_se = np.sqrt(scan.slope_se**2 + shift.slope_var)
    plausible = (np.abs(scan.slope) <= t * slope_se) & (scan.curve - scan.curve[scan.at] <= t * np.sqrt(excess_var))
    plausible[scan.at] = True
    return plausible
