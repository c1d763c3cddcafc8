"""Exponents and verdicts (analysis/scaling.py): the meta-regression against the classic formulas, the margin
and the TOST verdict by hand."""

import numpy as np
import pytest
from scipy import stats

from analysis.scaling import MARGIN, margin, meta_regression, verdict
from analysis.table import AnalysisError


def test_margin_and_verdict_by_hand():
    assert margin([4, 128]) == pytest.approx(np.log10(MARGIN) / np.log10(32))
    assert verdict(-0.05, 0.05, 0.1) == "still" and verdict(-0.05, 0.05, 0.1, span=3.9) == "too short"
    assert verdict(0.2, 0.4, 0.1) == "moves" and verdict(-0.4, -0.2, 0.1) == "moves"
    assert verdict(0.05, 0.3, 0.1) == "undecided" and verdict(-0.3, 0.3, 0.1) == "undecided"


def test_meta_regression_is_weighted_least_squares_without_scatter():
    x = np.log10([4, 8, 16, 32, 64])
    design = np.column_stack([np.ones(5), x])
    y = -1.0 + 0.5 * x + np.array([0.01, -0.02, 0.015, -0.01, 0.005])
    fit = meta_regression(design, y, np.full(5, 0.05))
    assert fit.tau == 0.0 and fit.estimate[1] == pytest.approx(np.polyfit(x, y, 1)[0])
    lo, hi = fit.interval()
    assert lo[1] < 0.5 < hi[1] and fit.dof == 3


def test_intercept_only_meta_regression_is_dersimonian_laird_with_knapp_hartung():
    y, se = np.array([0.1, 0.5, -0.2, 0.3, 0.9]), np.array([0.1, 0.2, 0.1, 0.15, 0.3])
    fit = meta_regression(np.ones((5, 1)), y, se)
    w = 1 / se**2  # the classic formulas, written out for one mean
    q = np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2)
    tau2 = (q - 4) / (np.sum(w) - np.sum(w**2) / np.sum(w))
    w_star = 1 / (se**2 + tau2)
    mean = np.sum(w_star * y) / np.sum(w_star)
    variance = np.sum(w_star * (y - mean) ** 2) / (4 * np.sum(w_star))
    assert tau2 > 0 and fit.tau == pytest.approx(np.sqrt(tau2)) and fit.estimate[0] == pytest.approx(mean)
    assert fit.cov[0, 0] == pytest.approx(variance) and fit.dof == 4
    lo, hi = fit.interval(0.9)
    assert hi[0] - mean == pytest.approx(stats.t.ppf(0.95, 4) * np.sqrt(variance)) and mean - lo[0] == pytest.approx(
        hi[0] - mean
    )
    assert meta_regression(np.ones((3, 1)), np.zeros(3), np.ones(3)).tau == 0.0  # Q < k − p: τ = 0
    with pytest.raises(AnalysisError, match=r"more points \(2\) than parameters \(2\)"):
        meta_regression(np.column_stack([np.ones(2), [1.0, 2.0]]), np.zeros(2), np.ones(2))
    with pytest.raises(AnalysisError, match="distinct axis values"):
        meta_regression(np.column_stack([np.ones(4), np.ones(4)]), np.zeros(4), np.ones(4))


def test_verdict_bounds_are_strict():
    assert verdict(-0.1, 0.05, 0.1) == "undecided" and verdict(-0.05, 0.1, 0.1) == "undecided"  # on the margin
    assert verdict(0.1, 0.3, 0.1) == "undecided" and verdict(-0.3, -0.1, 0.1) == "undecided"
    assert margin([8, 4, 64, 16]) == pytest.approx(np.log10(1.5) / np.log10(16))


def test_meta_regression_tau_is_the_method_of_moments_through_the_projection_matrix():
    x = np.log10([4, 8, 16, 32, 64, 128])
    design = np.column_stack([np.ones(6), x])
    y = -2 + 0.3 * x + np.array([0.2, -0.25, 0.15, -0.1, 0.3, -0.2])  # scatter well beyond the se
    se = np.array([0.05, 0.08, 0.05, 0.1, 0.06, 0.07])
    fit = meta_regression(design, y, se)
    w = np.diag(1 / se**2)  # P = W − W X (XᵀWX)⁻¹ XᵀW; τ² = (yᵀPy − (k − p)) / tr(P)
    projection = w - w @ design @ np.linalg.inv(design.T @ w @ design) @ design.T @ w
    tau2 = (y @ projection @ y - 4) / np.trace(projection)
    assert tau2 > 0 and fit.tau == pytest.approx(np.sqrt(tau2))
    w_star = np.diag(1 / (se**2 + tau2))
    estimate = np.linalg.solve(design.T @ w_star @ design, design.T @ w_star @ y)
    assert fit.estimate == pytest.approx(estimate)
