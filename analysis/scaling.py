"""Exponents of coef* against the study's axes (width, and N_train and B when they vary), λ* in
each normalisation placed on them, and the equivalence verdict.

log10 coef* = log10 C + a·log10 width (+ b·log10 N_train + g·log10 B) is fitted to the points'
estimates as a random-effects meta-regression (DerSimonian–Laird τ², Knapp–Hartung t-intervals on
k − p degrees of freedom, better calibrated than the normal interval with few widths); the verdict is a
TOST against a margin fixed in advance, λ* moving by less than ``MARGIN``× over the range its fitted
optima span. The method and the verdicts' meanings:
docs/analysis.md#exponents-and-verdicts; why the fitted range and "too short":
docs/decisions.md#verdicts-over-the-fitted-range-and-too-short."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.table import AnalysisError

MARGIN = 1.5
MIN_SPAN = 4.0  # the shortest range of an axis, max/min of the fitted optima, that gets a verdict: below it the
# margin is so wide that "still" says little (a slope whose interval excludes 0 could be called still over 2.7×)
VERDICTS = ("still", "moves", "undecided", "too short")


@dataclass
class MetaFit:
    estimate: np.ndarray  # log10 C, then the exponent of each axis in the design's column order
    cov: np.ndarray
    dof: int
    tau: float  # SD of the true optima about the power law, dex

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        half = stats.t.ppf(0.5 + level / 2, self.dof) * np.sqrt(np.diag(self.cov))
        return self.estimate - half, self.estimate + half


def meta_regression(design: np.ndarray, y: np.ndarray, se: np.ndarray) -> MetaFit:
    k, p = design.shape
    if k <= p or np.linalg.matrix_rank(design) < p:
        raise AnalysisError(f"an exponent fit needs more points ({k}) than parameters ({p}) and distinct axis values")
    w = 1 / se**2
    xtwx_inv = np.linalg.inv(design.T @ (w[:, None] * design))
    fixed = xtwx_inv @ design.T @ (w * y)
    q = float(np.sum(w * (y - design @ fixed) ** 2))
    trace = np.sum(w) - np.trace(xtwx_inv @ design.T @ ((w**2)[:, None] * design))
    tau2 = max(0.0, (q - (k - p)) / trace)  # trace = tr(P) > 0 whenever k > p
    w = 1 / (se**2 + tau2)
    xtwx_inv = np.linalg.inv(design.T @ (w[:, None] * design))
    estimate = xtwx_inv @ design.T @ (w * y)
    scale = float(np.sum(w * (y - design @ estimate) ** 2)) / (k - p)  # Knapp-Hartung
    return MetaFit(estimate, scale * xtwx_inv, k - p, float(np.sqrt(tau2)))


def margin(axis_values) -> float:
    """|exponent| below which λ* moves by less than MARGIN× over the axis's range."""
    ratio = np.max(axis_values) / np.min(axis_values)
    return np.log10(MARGIN) / np.log10(ratio)


def verdict(lo90: float, hi90: float, bound: float, span: float = MIN_SPAN) -> str:
    """The TOST verdict at the margin ±bound, for optima spanning ``span``× of the axis."""
    if span < MIN_SPAN:
        return "too short"
    if -bound < lo90 and hi90 < bound:
        return "still"
    if hi90 < -bound or lo90 > bound:
        return "moves"
    return "undecided"
