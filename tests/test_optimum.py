"""coef* of one point (analysis/optimum.py): the spline fit, its interval and its statuses, against closed forms and
fits written out independently."""

import numpy as np
import pytest
from scipy import stats
from scipy.interpolate import BSpline

from analysis.optimum import (
    REFINE_SPREAD,
    _component,
    _design,
    _least_squares,
    _scan,
    _seed_adjusted_means,
    _seed_shifts,
    _zero_crossing,
    cliff_cut,
    fit_optimum,
    knots_for,
    spline_basis,
)


def _two_seeds(x, y, noise=1e-6):
    e = np.random.default_rng(0).normal(0, noise, len(x))
    return fit_optimum(np.r_[x, x], np.r_[y, y + 0.05] + np.r_[e, -e], np.r_[[0] * len(x), [1] * len(x)])


def test_exact_minimum_of_a_curve_the_model_represents_and_close_on_an_asymmetric_one():
    x = np.round(np.arange(-3.0, -0.49, 0.25), 6)
    u = x + 1.6  # minimum at -1.6, between grid points
    cubic = _two_seeds(x, 0.3 + 0.1 * u**2 * (1 + 0.2 * u))
    assert cubic.status == "ok" and cubic.x == pytest.approx(-1.6, abs=1e-4) and cubic.lo < -1.6 < cubic.hi
    assert cubic.hi - cubic.lo < 0.02 and cubic.offsets[1] - cubic.offsets[0] == pytest.approx(0.05, abs=1e-4)
    asymmetric = _two_seeds(x, 0.3 + 0.5 * (np.expm1(3 * u) - 3 * u) / 9)  # flat left, cliff right
    assert asymmetric.status == "ok" and asymmetric.x == pytest.approx(-1.6, abs=0.01)


def test_flat_basin_is_open_and_grid_end_is_edge():
    rng = np.random.default_rng(1)
    x = np.tile(np.arange(-3, -0.9, 0.25), 3)
    seed = np.repeat([0, 1, 2], len(x) // 3)
    assert fit_optimum(x, 0.3 + rng.normal(0, 0.02, len(x)), seed).status in ("open", "edge")
    assert fit_optimum(x, 0.3 + 0.1 * (x + 3.5) ** 2 + rng.normal(0, 0.001, len(x)), seed).status == "edge"


def test_component_zero_crossing_and_seed_adjusted_means():
    mask = np.array([False, True, True, False, True, True, True])
    assert _component(mask, 1) == (1, 2) and _component(mask, 5) == (4, 6)
    assert _component(np.ones(4, bool), 2) == (0, 3)
    scan, slope = np.array([0.0, 1.0, 2.0, 3.0]), np.array([-3.0, -1.0, 1.0, 3.0])
    assert _zero_crossing(scan, slope, 1) == pytest.approx(1.5) and _zero_crossing(scan, slope, 2) == pytest.approx(1.5)
    assert _zero_crossing(scan, np.array([1.0, 2.0, 3.0, 4.0]), 0) == 0.0  # no crossing: the scan point itself
    assert _zero_crossing(scan, np.array([-1.0, 3.0, 5.0, 7.0]), 0) == pytest.approx(0.25)  # at the first point
    assert _zero_crossing(scan, np.array([-5.0, -3.0, -1.0, 1.0]), 3) == pytest.approx(2.5)  # at the last
    assert _zero_crossing(scan, np.array([0.0, 2.0, 3.0, 4.0]), 1) == 0.0  # a slope of exactly 0 is the crossing
    x = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 1.0])  # seed 1 has a repeat at x = 1: unbalanced
    seed = np.array([0, 0, 0, 1, 1, 1, 1])
    level, offset = np.array([5.0, 3.0, 4.0]), {0: -0.25, 1: 0.25}
    y = level[x.astype(int)] + np.array([offset[s] for s in seed])
    grid, mean = _seed_adjusted_means(x, y, seed)
    assert grid.tolist() == [0.0, 1.0, 2.0] and mean == pytest.approx(level, abs=1e-6)


def test_the_cliff_is_cut_where_the_curve_has_risen_a_quarter_of_its_range_and_stays_risen():
    grid = np.arange(6.0)

    def cut(means):
        return cliff_cut(grid, np.array(means), np.zeros(6))

    assert cut([1.0, 0.5, 0.4, 0.6, 0.9, 2.0]) == 4.0  # 0.4 + 0.25·1.6 = 0.8: first above it right of the min
    assert cut([1.0, 0.5, 0.4, 0.8, 0.8, 2.0]) == 5.0  # exactly at the quarter is not above it
    assert cut([2.0, 1.0, 0.9, 0.8, 0.7, 0.6]) == np.inf  # never rises
    assert cut([0.4, 2.0, 0.5, 0.5, 0.5, 0.5]) == np.inf  # one high mean the curve comes back from: no cliff
    assert cut([0.4, 2.0, 0.5, 2.1, 2.2, 2.3]) == 3.0  # the cliff starts where the rise lasts


def test_knots_every_half_dex_but_never_more_than_the_grid_supports():
    grid = np.arange(-3.0, -0.99, 0.25)  # 9 points over 2 dex: 3 interior knots
    assert knots_for(grid).tolist() == [-3.0] * 4 + [-2.5, -2.0, -1.5] + [-1.0] * 4
    assert knots_for(np.linspace(-3, -0.5, 6)).tolist() == [-3.0] * 4 + [-1.75] + [-0.5] * 4  # 6 points: 1 knot
    assert knots_for(np.linspace(-3, 0, 4)).tolist() == [-3.0] * 4 + [0.0] * 4  # 4 points: a plain cubic
    coarse_end = np.r_[-3.5, -3.0, np.arange(-2.5, -0.49, 0.25)]  # 11 points over 3 dex: 5 knots, at quantiles
    assert np.allclose(knots_for(coarse_end)[4:-4], [-8 / 3, -13 / 6, -1.75, -4 / 3, -11 / 12])
    far_last = np.r_[np.arange(-3.0, -0.99, 0.25), 0.0]  # 10 points over 3 dex: the range counts to the last one
    assert len(knots_for(far_last)) - 8 == 5
    # the adaptive search's runs bunched at 1/16 dex around coef*: its knots stay where the grid's are
    bunched = np.unique(np.r_[grid, np.arange(-2.25, -1.74, 0.0625)])
    assert knots_for(bunched, REFINE_SPREAD).tolist() == knots_for(grid).tolist()
    assert knots_for(bunched).tolist() != knots_for(grid).tolist()  # a grid's fit counts every point
    one_close = np.sort(np.r_[np.linspace(-3, -0.5, 6), -1.625])  # 0.125 dex from -1.5: 6 points, 1 knot (not 2)
    assert knots_for(one_close, 0.25).tolist() == [-3.0] * 4 + [-1.8125] + [-0.5] * 4
    assert len(knots_for(one_close)) - 8 == 2


def test_spline_basis_is_the_b_spline_basis_without_its_first_function():
    knots = knots_for(np.arange(-3.0, -0.99, 0.25))
    x = np.linspace(-3, -1, 13)
    full = BSpline.design_matrix(x, knots, 3).toarray()
    assert np.allclose(spline_basis(x, knots), full[:, 1:])
    h = 1e-6
    numeric = (spline_basis(x[1:-1] + h, knots) - spline_basis(x[1:-1] - h, knots)) / (2 * h)
    assert np.allclose(spline_basis(x[1:-1], knots, 1), numeric, atol=1e-4)
    numeric2 = (spline_basis(x[1:-1] + h, knots, 1) - spline_basis(x[1:-1] - h, knots, 1)) / (2 * h)
    assert np.allclose(spline_basis(x[1:-1], knots, 2), numeric2, atol=1e-3)
    assert (spline_basis(np.array([-4.0, 0.0]), knots) == 0).all()  # outside the knots: 0, not NaN or extrapolated


def test_fit_optimum_equals_a_least_squares_fit_written_out_independently():
    """Seed offsets + B-spline (scipy's design matrix, first function dropped) + a λ = 0 level, by
    plain least squares: every number fit_optimum reports follows from that fit by its definition."""
    rng = np.random.default_rng(5)
    grid = np.round(np.arange(-3.0, -0.99, 0.25), 6)
    seeds = np.arange(4)
    x, seed = np.tile(grid, 4), np.repeat(seeds, len(grid))
    a = np.array([0.0, 0.03, -0.02, 0.05])
    y = a[seed] + 0.3 + 0.08 * (x + 1.6) ** 2 + rng.normal(0, 0.01, len(x))  # not cut: no cliff
    base_seed = np.array([0, 1, 2, 3, 9])  # seed 9 has no curve: it cannot share an offset, so it is left out
    base_y = np.r_[a + 0.45, 0.0] + rng.normal(0, 0.01, 5)
    opt = fit_optimum(x, y, seed, base_y, base_seed)

    knots = knots_for(grid)
    dummies = (seed[:, None] == seeds).astype(float)
    design = np.vstack(
        [
            np.column_stack([dummies, BSpline.design_matrix(x, knots, 3).toarray()[:, 1:], np.zeros(len(x))]),
            np.column_stack([np.eye(4), np.zeros((4, len(knots) - 5)), np.ones(4)]),
        ]
    )
    target = np.r_[y, base_y[:4]]
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    dof = len(target) - design.shape[1]
    sigma = np.sqrt(np.sum((target - design @ coef) ** 2) / dof)
    cov = sigma**2 * np.linalg.inv(design.T @ design)
    beta, beta_cov = coef[4:-1], cov[4:-1, 4:-1]
    scan = np.linspace(-3, -1, 601)
    basis = BSpline.design_matrix(scan, knots, 3).toarray()[:, 1:]
    curve = basis @ beta
    at = int(np.argmin(curve))
    t = stats.t.ppf(0.975, dof)
    value_vector = np.r_[np.full(4, 0.25), basis[at], 0.0]
    gain_vector = np.r_[np.zeros(4), -basis[at], 1.0]

    assert (opt.status, opt.n_runs, opt.n_seeds, opt.n_coefs, opt.n_fitted, opt.n_baseline) == ("ok", 36, 4, 9, 36, 4)
    assert opt.sigma == pytest.approx(sigma, rel=1e-9)
    assert opt.value == pytest.approx(value_vector @ coef, rel=1e-9)
    assert opt.value_se == pytest.approx(
        np.sqrt(value_vector @ cov @ value_vector + np.var(coef[:4], ddof=1) / 4), rel=1e-6
    )
    assert [opt.offsets[s] for s in seeds] == pytest.approx(coef[:4] - coef[:4].mean(), abs=1e-12)
    assert opt.curve.value == pytest.approx(curve + coef[:4].mean(), abs=1e-9)
    half = t * np.sqrt(gain_vector @ cov @ gain_vector)
    assert (opt.gain, opt.gain_lo, opt.gain_hi) == pytest.approx(
        (gain_vector @ coef, gain_vector @ coef - half, gain_vector @ coef + half), rel=1e-9
    )
    near = np.nonzero(curve - curve[at] <= sigma)[0]
    assert (opt.near_lo, opt.near_hi) == pytest.approx((scan[near.min()], scan[near.max()]))  # one stretch here
    excess = basis - basis[at]
    excess_se = np.sqrt(np.einsum("ij,jk,ik->i", excess, beta_cov, excess))
    plausible = curve - curve[at] <= t * excess_se  # the level test alone; the slope test can only trim it
    lo, hi = at, at
    while plausible[lo - 1]:
        lo -= 1
    while plausible[hi + 1]:
        hi += 1
    assert scan[lo - 1] <= opt.lo < opt.x < opt.hi <= scan[hi + 1] and opt.hi - opt.lo > 0.5 * (scan[hi] - scan[lo])
    assert abs(opt.x - scan[at]) <= scan[1] - scan[0]  # where the slope crosses zero, next to the scan's best
    assert opt.se == pytest.approx((opt.hi - opt.lo) / (2 * t))
    assert opt.elsewhere == 0.0 and opt.n_diverged == 0 and opt.n_diverged_near == 0


def test_an_optimum_row_is_its_scalars_and_runs_at_coef_0_are_not_on_the_curve():
    x = np.round(np.arange(-3.0, -0.49, 0.25), 6)
    opt = _two_seeds(x, 0.3 + 0.1 * (x + 1.6) ** 2)
    row = opt.row()
    assert "offsets" not in row and "curve" not in row and row["status"] == "ok" and row["n_runs"] == 2 * len(x)
    with_zero = fit_optimum(np.r_[x, -np.inf], np.r_[0.3 + 0.1 * (x + 1.6) ** 2, 0.9], np.r_[[0] * len(x), 0])
    assert with_zero.n_runs == len(x) and with_zero.x == pytest.approx(-1.6, abs=1e-3)


def test_fit_optimum_says_when_it_has_nothing_or_too_little_to_fit():
    grid = np.array([-3.0, -2.5, -2.0, -1.5])
    nothing = fit_optimum(np.r_[grid, grid], np.full(8, np.inf), np.repeat([0, 1], 4))
    assert (nothing.status, nothing.n_runs, nothing.n_diverged) == ("no_runs", 0, 8)
    three = fit_optimum(
        np.tile(grid[:3], 3), np.tile([0.5, 0.4, 0.45], 3) + np.repeat([0, 0.01, 0.02], 3), np.repeat([0, 1, 2], 3)
    )
    assert (three.status, three.n_runs, three.n_seeds, three.n_coefs, three.n_fitted) == ("too_few", 9, 3, 3, 9)
    one_seed = fit_optimum(grid, [0.5, 0.4, 0.42, 0.47], [0, 0, 0, 0])  # 4 parameters, 4 runs: no noise left
    assert (one_seed.status, one_seed.n_coefs) == ("too_few", 4)
    four = fit_optimum(
        np.tile(grid, 3),
        np.tile([0.5, 0.4, 0.42, 0.47], 3)
        + np.repeat([0, 0.01, 0.02], 4)
        + np.random.default_rng(0).normal(0, 0.005, 12),
        np.repeat([0, 1, 2], 4),
    )
    assert four.status != "too_few" and four.n_coefs == 4  # four coefs are enough for a cubic


def test_the_cliff_point_itself_stays_in_the_fit():
    x = np.round(np.arange(-3.0, -0.99, 0.25), 6)  # 9 points; the curve collapses after -1.5
    curve = np.where(x <= -1.5, 0.3 + 0.1 * (x + 2) ** 2, 2.3)
    opt = _two_seeds(x, curve)
    assert opt.n_coefs == 8 and opt.n_fitted == 16  # up to and including -1.25, the first point that rose


def test_one_degree_of_freedom_fits_and_the_seeds_spread_enters_the_level_s_error():
    grid = np.array([-3.0, -2.5, -2.0, -1.5, -1.0])
    single = fit_optimum(grid, 0.3 + 0.1 * (grid + 1.6) ** 2 + [0.001, -0.002, 0.001, 0.0005, -0.001], np.zeros(5))
    assert single.status != "too_few" and single.n_seeds == 1  # 5 runs, 4 parameters: one degree of freedom
    assert np.isfinite(single.value_se) and single.value_se < 0.05  # one seed: no spread between seeds to add
    x = np.round(np.arange(-3.0, -0.49, 0.25), 6)
    two = _two_seeds(x, 0.3 + 0.1 * (x + 1.6) ** 2)  # noise-free but for 1e-6; offsets 0.05 apart
    assert two.value_se == pytest.approx(np.sqrt(np.var([0.0, 0.05], ddof=1) / 2), rel=1e-3)


def test_the_curvature_test_reads_the_second_derivative_not_the_third():
    x = np.round(np.arange(-3.0, -0.49, 0.25), 6)
    u = x + 1.6
    opt = _two_seeds(x, 0.3 + 0.1 * (u**2 - 0.5 * u**3))  # convex at its minimum, third derivative < 0
    assert opt.status == "ok" and opt.x == pytest.approx(-1.6, abs=1e-3)


def _reference_interval(x, y, seed):
    """The 95% interval and the plausible set by the definitions, from a fit written out with scipy's
    B-spline design matrix and slopes by central differences of it: (lo, hi, elsewhere) in log10 coef."""
    keep = x <= cliff_cut(x, y, seed)  # the curve is fitted up to where it collapses (tested on its own)
    x, y, seed = x[keep], y[keep], seed[keep]
    grid, seeds = np.unique(x), np.unique(seed)
    knots = knots_for(grid)

    def basis(points):
        return BSpline.design_matrix(points, knots, 3, extrapolate=True).toarray()[:, 1:]

    design = np.column_stack([(seed[:, None] == seeds).astype(float), basis(x)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    dof = len(y) - design.shape[1]
    cov = np.sum((y - design @ coef) ** 2) / dof * np.linalg.inv(design.T @ design)
    beta, beta_cov = coef[len(seeds) :], cov[len(seeds) :, len(seeds) :]
    scan = np.linspace(grid[0], grid[-1], 601)
    at_scan, h = basis(scan), 1e-5
    slope_basis = (basis(scan + h) - basis(scan - h)) / (2 * h)
    curve, slope = at_scan @ beta, slope_basis @ beta
    at = int(np.argmin(curve))
    t = stats.t.ppf(0.975, dof)

    def se(rows):
        return np.sqrt(np.einsum("ij,jk,ik->i", rows, beta_cov, rows))

    plausible = (np.abs(slope) <= t * se(slope_basis)) & (curve - curve[at] <= t * se(at_scan - at_scan[at]))
    plausible[at] = True
    lo, hi = at, at
    while plausible[lo - 1]:
        lo -= 1
    while plausible[hi + 1]:
        hi += 1
    return scan[lo - 1], scan[hi + 1], (plausible.sum() - (hi - lo + 1)) * (scan[1] - scan[0])


@pytest.mark.parametrize("shape", ["U", "W"])
def test_the_interval_and_the_plausible_elsewhere_follow_their_definitions(shape):
    rng = np.random.default_rng(7)
    grid = np.round(np.arange(-4.0, -0.99, 0.25), 6)
    x, seed = np.tile(grid, 4), np.repeat(np.arange(4), len(grid))
    u = x + 2.5
    # W: two shallow wells 1.8 dex apart behind a steep wall on the left, so nothing is cut as a cliff
    curve = 0.3 + 0.05 * u**2 if shape == "U" else 0.3 + 0.02 * (u**2 - 0.8) ** 2 + 0.3 * np.exp(-6 * (u + 1.5))
    y = curve + 0.02 * seed + rng.normal(0, 0.01, len(x))
    lo, hi, elsewhere = _reference_interval(x, y, seed)
    inside, outside = grid[(grid > lo) & (grid < hi)][0], grid[grid > hi][0]
    opt = fit_optimum(np.r_[x, inside, outside], np.r_[y, np.inf, np.inf], np.r_[seed, 0, 1])  # two diverged
    assert (opt.n_diverged, opt.n_diverged_near) == (2, 1)
    assert opt.status == "ok" and (opt.lo, opt.hi) == pytest.approx((lo, hi), abs=1e-9)
    assert opt.elsewhere == pytest.approx(elsewhere, abs=1e-9) and (opt.elsewhere > 0) == (shape == "W")


def test_a_minimum_at_either_end_of_the_grid_is_an_edge_and_a_flat_basin_is_open():
    x = np.round(np.arange(-3.0, -0.99, 0.25), 6)
    falling = _two_seeds(x, 0.3 + 0.1 * (x + 0.5) ** 2)  # still falling at the grid's right end
    rising = _two_seeds(x, 0.3 + 0.1 * (x + 3.5) ** 2)
    for opt, end in ((falling, -1.0), (rising, -3.0)):
        assert opt.status == "edge" and opt.x == pytest.approx(end) and opt.n_runs == 2 * len(x)
    rng = np.random.default_rng(1)
    flat = fit_optimum(
        np.tile(x, 3), 0.3 + 0.001 * np.tile(x, 3) + rng.normal(0, 0.02, 3 * len(x)), np.repeat([0, 1, 2], len(x))
    )
    assert flat.status == "open" and flat.n_runs == 3 * len(x) and flat.near_lo < flat.near_hi


def _double_well(seed):
    """Three seeds on two equally deep wells (at x = -1.5 ± 0.56), one bump between them."""
    x = np.round(np.arange(-3.0, 0.01, 0.25), 6)
    u = x + 1.5
    y = 0.3 + 0.08 * u**4 - 0.05 * u**2
    noise = np.random.default_rng(seed).normal(0, 0.004, 3 * len(x))
    return np.r_[x, x, x], np.r_[y, y + 0.02, y - 0.01] + noise, np.repeat([0, 1, 2], len(x))


@pytest.mark.parametrize("seed", [0, 3])
def test_the_hull_interval_holds_every_plausible_coef_where_the_default_notes_the_rest_elsewhere(seed):
    x, y, s = _double_well(seed)
    default, hull = fit_optimum(x, y, s), fit_optimum(x, y, s, hull=True)
    assert default.status == hull.status == "ok" and default.x == hull.x and default.elsewhere > 0.05
    assert hull.elsewhere == 0 and hull.lo < -1.9 and hull.hi > -1.1  # both wells, whichever holds coef*
    assert hull.lo <= default.lo and hull.hi >= default.hi and hull.se > default.se
    assert (default.value, default.sigma, default.gain) == (hull.value, hull.sigma, hull.gain)


def test_the_grid_floor_reaches_the_grid_coefs_either_side_of_coef_and_is_open_at_the_grids_first_step():
    x, y, s = _double_well(0)
    default, floored = fit_optimum(x, y, s), fit_optimum(x, y, s, grid_floor=True)
    assert default.lo > -2.25 and default.hi < -2.0  # narrower than the grid step holding coef*
    assert floored.lo <= -2.25 and floored.hi >= -2.0 and floored.lo >= -2.27 and floored.x == default.x
    first = x > -2.3  # coef* now in the grid's first step: the floor reaches the grid's end
    assert fit_optimum(x[first], y[first], s[first], grid_floor=True).status == "open"


SHIFT_GRID = np.round(np.arange(-3.0, 0.01, 0.125), 6)


def _shifted_seeds(rng, tau, seeds=40, noise=0.002, grid=SHIFT_GRID):
    """Runs of seeds whose curves 0.3 + 0.2·(x + 1.5 − δ_s)² shift by δ_s ~ N(0, tau²): coef* −1.5."""
    x = np.tile(grid, seeds)
    seed = np.repeat(np.arange(seeds), len(x) // seeds)
    shift = rng.normal(0, tau, seeds)[seed]
    return x, 0.3 + 0.2 * (x + 1.5 - shift) ** 2 + rng.normal(0, noise, len(x)), seed


def test_seed_shifts_recover_the_spread_of_each_seeds_optimum_and_add_nothing_without_one():
    rng = np.random.default_rng(3)
    shifted = fit_optimum(*_shifted_seeds(rng, 0.1), shifts=True)
    assert shifted.shift_sd == pytest.approx(0.1, abs=0.03) and shifted.bend == pytest.approx(0.4, abs=0.02)
    # the curve's location is the mean of 40 shifts: its interval at least ±1.96·τ/√40 wide
    assert (shifted.hi - shifted.lo) / 2 >= 1.9 * 0.1 / np.sqrt(40) and shifted.lo < -1.5 < shifted.hi
    x, y, seed = _shifted_seeds(rng, 0.0)
    still, plain = fit_optimum(x, y, seed, shifts=True), fit_optimum(x, y, seed)
    assert still.shift_sd < 0.01 and still.hi - still.lo == pytest.approx(plain.hi - plain.lo, abs=0.01)
    assert np.isnan(plain.shift_sd) and "shift_sd" not in plain.row()


def test_seed_shifts_restore_the_coverage_the_independent_noise_model_loses_near_coef_star():
    """Runs bunched within ±0.5 dex of coef* (as the search places them) hardly see a shift in their residuals,
    so the independent-noise interval is too narrow there; a full grid's residuals carry it (and σ with them)."""
    rng, covered, intervals = np.random.default_rng(5), {False: 0, True: 0}, {False: 0, True: 0}
    near = np.round(np.arange(-2.0, -0.99, 0.0625), 6)
    for _ in range(100):
        x, y, seed = _shifted_seeds(rng, 0.1, seeds=6, grid=near)
        for shifts in covered:
            fit = fit_optimum(x, y, seed, shifts=shifts)
            intervals[shifts] += fit.status == "ok"
            covered[shifts] += fit.status == "ok" and fit.lo <= -1.5 <= fit.hi
    assert covered[True] / intervals[True] >= 0.9 and covered[False] / intervals[False] <= 0.87


def test_seed_shifts_follow_dersimonian_laird_and_hartung_knapp_written_out_seed_by_seed():
    """Each seed's shift from its residuals on its own centred slope, σ² without those slopes, the textbook
    DerSimonian-Laird τ², the Hartung-Knapp location variance and the Satterthwaite t: written out per seed."""
    x, y, seed = _shifted_seeds(np.random.default_rng(11), 0.08, seeds=5, noise=0.003)
    x, y, seed = x[seed != 4][3:], y[seed != 4][3:], seed[seed != 4][3:]  # unbalanced: seed 0 lacks 3 runs
    grid, seeds = np.unique(x), np.unique(seed)
    knots = knots_for(grid)
    fit = _least_squares(_design(x, seed, seeds, knots, np.array([])), y, len(seeds), len(knots) - 5)
    scan = _scan(grid, knots, fit)
    shift = _seed_shifts(fit, scan, x, y, seed, seeds, knots)

    f1, f2 = (BSpline(knots, np.r_[0.0, fit.beta], 3).derivative(n) for n in (1, 2))
    curve = BSpline(knots, np.r_[0.0, fit.beta], 3)
    d, info, explained = [], [], 0.0
    for s, offset in zip(seeds, fit.offsets):
        own = seed == s
        slope = f1(x[own]) - f1(x[own]).mean()
        residual = y[own] - curve(x[own]) - offset
        d.append(-(residual @ slope) / (slope @ slope))
        info.append(slope @ slope)
        explained += (residual @ slope) ** 2 / (slope @ slope)
    k, d, info = len(seeds), np.array(d), np.array(info)
    noise = (fit.sigma**2 * fit.dof - explained) / (fit.dof - k + 1)
    w = info / noise
    mean_w = np.sum(w * d) / np.sum(w)
    tau2 = max(0.0, (np.sum(w * (d - mean_w) ** 2) - (k - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    star = 1 / (1 / w + tau2)
    mean_star = np.sum(star * d) / np.sum(star)
    location = max(1 / np.sum(star), np.sum(star * (d - mean_star) ** 2) / ((k - 1) * np.sum(star)))
    extra = location - 1 / np.sum(w)
    assert tau2 > 0 and extra > 0 and shift.tau2 == pytest.approx(tau2, rel=1e-6)
    assert shift.slope_var == pytest.approx(extra * f2(scan.x) ** 2, rel=1e-6, abs=1e-12)
    assert shift.excess_var == pytest.approx(extra * scan.slope**2, rel=1e-6, abs=1e-12)
    model, at_min = scan.slope_se[scan.at] ** 2, f2(scan.x[scan.at]) ** 2
    seeds_part = min(location * at_min, model + extra * at_min)
    rest = model + extra * at_min - seeds_part
    dof = (rest + seeds_part) ** 2 / (rest**2 / fit.dof + seeds_part**2 / (k - 1))
    assert k - 1 <= shift.dof < fit.dof and shift.dof == pytest.approx(dof, rel=1e-6)


def test_seed_shifts_need_two_seeds_that_say_something():
    """A seed run at one coef only fits its offset, so nothing about its shift: with one seed left that
    says something, τ is not estimable (NaN) and the interval is the plain fit's."""
    rng = np.random.default_rng(2)
    x = np.r_[SHIFT_GRID, -1.5, -1.5, -1.0, -1.0]
    seed = np.r_[np.zeros(len(SHIFT_GRID), int), 1, 1, 2, 2]
    y = 0.3 + 0.2 * (x + 1.5) ** 2 + rng.normal(0, 0.002, len(x))
    shifted, plain = fit_optimum(x, y, seed, shifts=True), fit_optimum(x, y, seed)
    assert np.isnan(shifted.shift_sd) and (shifted.lo, shifted.hi) == (plain.lo, plain.hi)
    assert shifted.status == "ok"
