"""Results tables with a planted answer and realistic noise, for calibration and tests.

The metric against x = log10 coef at one width is modelled on the digits sweeps (paper/): a basin
that is flat towards small coef and a cliff towards large coef,

    f(u) = base + A·(exp(k·u) − 1 − k·u)/k²,   u = x − x*   (A = f''(x*); k = 0 is a parabola),

capped at ln 10 (chance for 10 classes). Each seed shifts its curve by an offset and its optimum by
a small jitter (optionally with a slope in width that the seed's widths share); each run adds noise along
the curve that grows on the cliff; a few runs diverge or are missing. The true coef* of a width is the
minimum of the seed-averaged curve: with a jitter d ~ N(0, τ²), E f(u − d) is minimal at u = −k·τ²/2
(exactly, below the cap).

Asked for (``planted(..., metrics=True)``), each run also gets a best-epoch loss and an error rate
(``best_val_loss``, ``val_acc``), drawn from a generator of their own so that the final losses are the
same draws either way (``Point``, ``MetricScenario``; docs/analysis.md#three-metrics): the best-epoch loss
is the lowest of several late epochs', the final among them, the others from a curve with the overfitting
of small decay taken out; the error rate is a count over a finite validation set. Their truths are the
minima of their seed-averaged expected curves, found numerically (``Point.optimum``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize_scalar
from scipy.special import ndtr

from analysis.fit import METRICS
from wdbench.normalisation import NORMS, norm_factor

CHANCE = np.log(10)
BATCH, N_TRAIN = 128, 1437


def n_decayed(width: int) -> int:
    return 1200 * width**2  # about a ResNet's decayed count: κ = 2


@dataclass
class Scenario:
    """Everything that shapes one planted sweep."""

    alpha: float = 0.0  # planted exponent of coef* against width (its local slope at the centre with a bend)
    log10_c0: float = -1.5  # log10 coef* at width 1
    widths: tuple = (4, 8, 16, 32, 64, 128)
    seeds: int = 5
    step: float = 0.25  # grid spacing, dex
    below: tuple = (1.0, 1.75)  # the grid reaches this many dex below x* (uniform between the two)...
    above: tuple = (1.0, 1.75)  # ...and above it: the optimum sits off-centre
    jitter: float = 0.0  # grid points moved by up to this fraction of a step (uneven grids)
    missing: float = 0.0  # fraction of runs never made
    curvature: tuple = (0.2, 0.6)  # A, log-uniform between the two
    asymmetry: tuple = (2.0, 5.0)  # k, uniform
    sigma: float = 0.02  # along-curve noise of one run (at the minimum)
    seed_sd: float = 0.03  # seed offset
    seed_jitter: float = 0.03  # dex: each seed's own optimum
    seed_slope: float = 0.0  # dex per decade of width: SD of each seed's own slope of its optimum, shared by
    # its widths (what a real seed draws that every width sees); the points' optima are then dependent
    misfit: float = 0.03  # dex: the true coef* scatters about the power law
    bend: float = 0.0  # q: log10 coef* gains q·(log10 width − centre)², centre the mean log10 width (a power law
    # whose local slope alpha + 2q·(log10 width − centre) changes along the widths)
    diverge: float = 0.01  # probability that a run diverges
    baseline: bool = True  # λ = 0 runs too
    lrs: tuple = (0.05,)  # a learning rate per value; λ* moves by lr_shift dex per decade of lr
    lr_shift: float = 0.0
    lr_best: float = 0.05  # the learning rate with the lowest loss level...
    lr_cost: float = 0.0  # ...which rises by this much per squared decade away from it
    norms: tuple = NORMS  # each run is named in one of these, at random


def random_scenario(rng: np.random.Generator) -> Scenario:
    """The mix the calibration draws from: 2-5 seeds, coarse to fine and uneven grids, flat to sharp
    basins, quiet to noisy runs, 4-6 widths over 8-32x."""
    n_widths = int(rng.integers(4, 7))
    first = int(rng.choice([2, 4, 8]))
    return Scenario(
        alpha=float(rng.uniform(-1, 2)),
        log10_c0=float(rng.uniform(-4, -1)),
        widths=tuple(first * 2 ** np.arange(n_widths)),
        seeds=int(rng.integers(2, 6)),
        step=float(rng.choice([0.2, 0.25, 1 / 3, 0.5])),
        jitter=float(rng.choice([0.0, 0.3])),
        missing=float(rng.choice([0.0, 0.1])),
        curvature=(0.1, 1.0),
        asymmetry=(0.0, 5.0),
        sigma=float(rng.uniform(0.01, 0.05)),
        seed_sd=float(rng.uniform(0.0, 0.06)),
        seed_jitter=float(rng.uniform(0.0, 0.05)),
        misfit=float(rng.uniform(0.0, 0.05)),
        diverge=float(rng.choice([0.0, 0.02])),
    )


BEND_16X = (0.3, 0.5)  # the change of the local slope over 16× of width in the bends a reviewer saw (teacher_width's
# slope to ~0.7 over widths 12-32, adamw_timescale's B slope from ~1.0 to 0.5-0.65 over B 32-256)
CURVATURE_SPANS = (8, 16, 32)  # max/min width of a curvature scenario


def random_curvature_scenario(rng: np.random.Generator, bent: bool, quiet: bool = False) -> Scenario:
    """``random_scenario``'s noise with 4-7 widths spread evenly in log over 8-32× (rounded to integers, as the
    kept sweeps' 2, 4, 6, 8, 12, 16, 32) and, if ``bent``, a bend whose slope changes by 0.3-0.5 over 16×
    (``BEND_16X``), either sign; ``quiet``: the kept teacher sweeps' precision instead (5 seeds, runs' noise
    σ 0.005-0.015, a 0.2 dex grid)."""
    s = random_scenario(rng)
    n, span, first = int(rng.integers(4, 8)), float(rng.choice(CURVATURE_SPANS)), int(rng.choice([2, 4, 8]))
    widths = tuple(sorted({int(round(first * span ** (i / (n - 1)))) for i in range(n)}))
    change = rng.uniform(*BEND_16X) * rng.choice([-1.0, 1.0])  # drawn for either kind: one stream
    s = replace(s, widths=widths, bend=float(change / (2 * np.log10(16))) if bent else 0.0)
    return replace(s, seeds=5, sigma=float(rng.uniform(0.005, 0.015)), step=0.2, jitter=0.0) if quiet else s


def random_joint_scenario(rng: np.random.Generator) -> Scenario:
    """A joint (η, λ) sweep: three learning rates half a decade apart, λ* moving with the lr, and a
    loss level that prefers one lr (anywhere between, so that the best grid lr is sometimes clear
    and sometimes nearly tied)."""
    lrs = (0.01, 0.0316, 0.1)
    return replace(
        random_scenario(rng),
        lrs=lrs,
        lr_shift=float(rng.uniform(-1, 1)),
        lr_best=float(10 ** rng.uniform(-2, -1)),
        lr_cost=float(rng.uniform(0.02, 0.3)),
    )


def rise(u, curvature, k):
    """The basin's rise above its minimum at u dex from it (uncapped)."""
    u = np.asarray(u, float)
    return curvature * u**2 / 2 if k < 1e-6 else curvature * (np.expm1(k * u) - k * u) / k**2


def curve(u, base, curvature, k):
    return np.minimum(base + rise(u, curvature, k), CHANCE)


def planted(s: Scenario, rng: np.random.Generator, metrics: bool | MetricScenario = False) -> tuple[pd.DataFrame, dict]:
    """(results table, truth): truth['x'][(lr, width)] = true log10 coef*, truth['alpha'], truth['gain'],
    truth['level'][(lr, width)] = the minimum of the seed-averaged curve (the joint optimum's criterion); truth['bend'] and truth['centre']: the local slope at log10 width u is alpha + 2·bend·(u − centre)..
    With ``metrics`` (True: a ``random_metric_scenario``), also each run's best-epoch loss and error rate, and
    truth['metrics'][METRIC] = the same four for each of METRICS; the final losses are the draws they are
    without (the rest is drawn from a generator seeded by one more draw of ``rng``, after all of them)."""
    points, runs = {}, []  # what the other metrics' draws need: each (lr, width)'s curve, each run's draws
    widths = np.asarray(s.widths)
    centre = np.log10(widths).mean()
    rows, truth = [], {"alpha": s.alpha, "bend": s.bend, "centre": centre, "x": {}, "gain": {}, "level": {}}
    # drawn only when asked for, so that a scenario without it draws the stream it always drew
    slopes = rng.normal(0, s.seed_slope, s.seeds) if s.seed_slope else np.zeros(s.seeds)
    for lr in s.lrs:
        shift = s.lr_shift * np.log10(lr / s.lrs[0])
        for w in widths:
            k = rng.uniform(*s.asymmetry)
            a = np.exp(rng.uniform(*np.log(s.curvature)))
            base = 0.15 + 1.0 / w + s.lr_cost * np.log10(lr / s.lr_best) ** 2
            x_star = s.log10_c0 + shift + s.alpha * np.log10(w) + rng.normal(0, s.misfit)
            if s.bend:  # nothing drawn for it: a straight scenario's stream and tables are as they were
                x_star += s.bend * (np.log10(w) - centre) ** 2
            spread = s.seed_jitter**2 + (s.seed_slope * (np.log10(w) - centre)) ** 2  # of a seed's optimum
            truth["x"][(lr, int(w))] = x_star - k * spread / 2
            lo, hi = x_star - rng.uniform(*s.below), x_star + rng.uniform(*s.above)
            grid = np.arange(lo, hi + 1e-9, s.step)
            grid = grid + rng.uniform(-s.jitter, s.jitter, len(grid)) * s.step
            # λ = 0 behaves like the flat end of the basin, a little beyond the grid; the truth is
            # its loss minus the minimum of the seed-averaged curve, base + A·τ²/2.
            baseline = float(curve(-max(s.below) - 0.5, base, a, k))
            truth["level"][(lr, int(w))] = base + a * spread / 2
            truth["gain"][(lr, int(w))] = baseline - truth["level"][(lr, int(w))]
            points[(lr, int(w))] = dict(
                x_star=x_star,
                a=a,
                k=k,
                base=base,
                sigma=s.sigma,
                seed_sd=s.seed_sd,
                spread=spread,
                x0=x_star - max(s.below) - 0.5,
            )
            for seed in range(s.seeds):
                offset, jitter = rng.normal(0, s.seed_sd), rng.normal(0, s.seed_jitter)
                jitter += slopes[seed] * (np.log10(w) - centre)
                for x in [*grid, *([None] if s.baseline else [])]:
                    if rng.random() < s.missing:
                        continue
                    mean = baseline if x is None else float(curve(x - x_star - jitter, base, a, k))
                    value = mean + offset + rng.normal(0, s.sigma * (1 + (mean - base)))
                    diverged = rng.random() < s.diverge
                    rows.append(_row(s, lr, int(w), x, seed, value, diverged, rng))
                    runs.append(((lr, int(w)), x, jitter, offset, value - mean - offset, value, diverged))
    table = pd.DataFrame(rows)
    if metrics is not False:
        aux = np.random.default_rng(int(rng.integers(2**63)))
        scenario = random_metric_scenario(aux) if metrics is True else metrics
        _other_metrics(table, truth, s, scenario, points, runs, aux)
    return table, truth


# --- The best-epoch loss and the error rate ---------------------------------------------------------------------

ERR_CHANCE = 0.9  # the error rate of guessing among 10 classes
N_VAL = (360, 4096)  # validation images: digits' (20% of 1797), the teacher task's (conf/data/teacher.yaml)
NODES = 16  # Gauss-Hermite nodes over a seed's optimum jitter
HERMITE = (lambda z, w: (z, w / w.sum()))(*np.polynomial.hermite_e.hermegauss(NODES))  # N(0, 1) nodes, weights
LEVELS = 81  # Simpson points over the lowest of the epochs' losses (61 agree with quad to 1e-9)


@dataclass
class MetricScenario:
    """How a planted sweep's best-epoch loss and error rate depart from its final loss."""

    best_shift: float = -0.2  # dex: the best-epoch loss's optimum (of its expected curve for an unjittered seed)
    best_slope: float = 0.0  # from the final loss's at the middle width, and its change per decade of width
    overfit_reach: tuple = (0.5, 1.5)  # the overfitting fades this many |shift| (+0.1 dex) right of that minimum...
    overfit_sharpness: tuple = (2.5, 4.0)  # ...over reach / this
    epochs: int = 4  # late epochs whose lowest loss is the best (the final one among them)
    err_shift: float = 0.0  # dex: the error rate's optimum (of its mean curve) from the final loss's at the middle
    err_slope: float = 0.0  # width, and its change per decade of width
    err_scale: float = 0.3  # error per unit loss: of its level, its basin's depth and its noise
    err_flat: tuple = (0.5, 1.5)  # the error basin's curvature, relative to the loss's (after err_scale)
    err_corr: float = 0.7  # correlation of a run's error noise with its loss noise
    n_val: int = 360  # validation images the error is counted over


def random_metric_scenario(rng: np.random.Generator) -> MetricScenario:
    """The mix the calibration draws from: the best-epoch optimum 0.1-0.4 dex left of the final loss's at the
    middle width, moving with width by up to 0.3 dex per decade (staying left of it, 0.05 dex at least, over 1.5
    decades); the error rate's optimum within 0.3 dex of the loss's either way, moving by up to 0.4 per decade;
    3-6 late epochs; the digits' or the teacher task's validation set."""
    shift = float(rng.uniform(-0.4, -0.1))
    return MetricScenario(
        best_shift=shift,
        best_slope=float(rng.uniform(-1, 1) * min(0.3, (-shift - 0.05) / 0.75)),
        epochs=int(rng.integers(3, 7)),
        err_shift=float(rng.uniform(-0.3, 0.3)),
        err_slope=float(rng.uniform(-0.4, 0.4)),
        err_scale=float(rng.uniform(0.25, 0.4)),
        err_corr=float(rng.uniform(0.3, 0.9)),
        n_val=int(rng.choice(N_VAL)),
    )


@dataclass(frozen=True)
class Point:
    """One (lr, width) of a planted sweep: each metric's mean curve against x = log10 coef (the seed's jitter
    aside) and its noise; ``expected`` averages a metric over the seeds and the noise, ``optimum`` finds its
    minimum.

    final loss: f(x) = base + rise(x − x*) capped at ln 10, noise N(0, (σ·(1 + f − base))²) (``planted``);
    best-epoch loss: the lowest of the final loss and ``epochs`` − 1 earlier late epochs', each b(x) plus its
        own noise N(0, (σ·(1 + b − base))²), with b = f − o the final curve less the overfitting
        o(x) = ω·s·softplus((x_o − x)/s) that small decay lets in (o ≥ 0, falling with coef: b is flatter
        than f where decay is small and its minimum sits left of x*); ω is set so that b is minimal at
        x_best, placed so that the best-epoch loss's expected curve (for an unjittered seed) is minimal on
        its planted power law (``_point``);
    error rate: a count over n_val images, Binomial(n_val, p) / n_val with p = e(x) + the seed's offset
        (``scale`` × its loss offset) + noise N(0, (scale·σ·(1 + (e − e_base)/scale))²) (correlated with
        the loss's), clipped to [0, 1]; e(x) = e_base + scale·rise_e(x − x_err) capped at 0.9, e_base =
        scale·base.

    Every curve of a seed is moved by the same jitter d ~ N(0, spread); λ = 0 runs sit at x0 without it."""

    x_star: float
    a: float
    k: float
    base: float
    sigma: float
    seed_sd: float
    spread: float  # variance of a seed's optimum jitter, dex²
    x0: float  # where λ = 0 runs sit on the curves
    x_best: float = np.nan
    over: float = 0.0  # ω
    over_at: float = 0.0  # x_o
    over_soft: float = 1.0  # s
    epochs: int = 1
    x_err: float = np.nan
    a_err: float = np.nan
    k_err: float = 0.0
    scale: float = 0.3
    corr: float = 0.0
    n_val: int = 360

    def final(self, x):
        return curve(np.asarray(x, float) - self.x_star, self.base, self.a, self.k)

    def overfit(self, x):
        return self.over * self.over_soft * np.logaddexp(0.0, (self.over_at - np.asarray(x, float)) / self.over_soft)

    def early(self, x):
        """The earlier late epochs' mean loss: the final curve without its overfitting (capped as it is)."""
        x = np.asarray(x, float)
        return np.minimum(self.base + rise(x - self.x_star, self.a, self.k) - self.overfit(x), CHANCE)

    def error(self, x):
        e = self.scale * self.base + self.scale * rise(np.asarray(x, float) - self.x_err, self.a_err, self.k_err)
        return np.minimum(e, ERR_CHANCE)

    def loss_sd(self, mean):
        return self.sigma * (1 + (mean - self.base))

    def error_sd(self, mean):
        return self.scale * self.sigma * (1 + (mean - self.scale * self.base) / self.scale)

    def at_jitter(self, metric: str, x):
        """E[metric] at x for a seed whose optimum moved by 0 (the seed's offset averaged out)."""
        x = np.asarray(x, float)
        if metric == "val_loss":
            return self.final(x)
        if metric == "best_val_loss":
            f, b = self.final(x), self.early(x)
            return expected_lowest(f, self.loss_sd(f), b, self.loss_sd(b), self.epochs - 1)
        if metric == "val_err":
            e = self.error(x)
            return clipped_mean(e, np.hypot(self.error_sd(e), self.scale * self.seed_sd))
        raise ValueError(f"metric {metric}: one of {METRICS}")

    def expected(self, metric: str, x):
        """The seed-averaged expected curve at x: over the seeds' jitter (Gauss-Hermite), offsets and noise."""
        x = np.asarray(x, float)
        if self.spread <= 0:
            return self.at_jitter(metric, x)
        d = np.sqrt(self.spread) * HERMITE[0]
        return self.at_jitter(metric, x[..., None] - d) @ HERMITE[1]

    def baseline(self, metric: str) -> float:
        """E[metric] of a λ = 0 run (no jitter: it sits at x0 for every seed)."""
        return float(self.at_jitter(metric, np.array(self.x0)))

    def optimum(
        self, metric: str, jitter: bool = True, step: float = 0.01, bracket: float = 0.1
    ) -> tuple[float, float]:
        """(x, level): the minimum of ``expected``, found by Brent's method (to 1e-7 dex) within ``bracket`` dex
        of the lowest point of a scan every ``step`` dex over x* ± 3 of the curve for an unjittered seed (the
        jitter, 0.05 dex at most, moves the minimum by far less than the bracket; a minimum at the bracket's
        end is searched again over the whole scan). ``jitter=False``: of the curve for an unjittered seed."""
        curve = self.expected if jitter else self.at_jitter
        scan = self.x_star + np.arange(-3, 3 + step / 2, step)
        at = scan[int(np.argmin(self.at_jitter(metric, scan)))]
        for lo, hi in ((at - bracket, at + bracket), (scan[0], scan[-1])):
            best = minimize_scalar(
                lambda x: float(curve(metric, np.array(x))),
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-7},
            )
            if lo + 1e-4 < best.x < hi - 1e-4:
                break
        return float(best.x), float(best.fun)


def expected_lowest(mu0, sd0, mu1, sd1, n1: int):
    """E[min(Y0, Y1, ..., Yn1)] for independent Y0 ~ N(mu0, sd0²) and n1 draws Yi ~ N(mu1, sd1²):
    lo + ∫_lo^hi P(min > t) dt by Simpson's rule over ±10 SD (beyond which P is below 1e-23)."""
    mu0, sd0, mu1, sd1 = np.broadcast_arrays(*(np.asarray(v, float) for v in (mu0, sd0, mu1, sd1)))
    if n1 < 1:
        return mu0.copy()
    spread = np.maximum(sd0, sd1)
    lo = np.minimum(mu0, mu1) - 10 * spread
    hi = np.minimum(mu0, mu1) + 10 * spread
    u = np.linspace(0, 1, LEVELS)
    t = lo[..., None] + (hi - lo)[..., None] * u
    above = (1 - ndtr((t - mu0[..., None]) / sd0[..., None])) * (1 - ndtr((t - mu1[..., None]) / sd1[..., None])) ** n1
    simpson = np.r_[1, np.tile([4, 2], (LEVELS - 3) // 2), 4, 1] / (3 * (LEVELS - 1))
    return lo + (hi - lo) * (above @ simpson)


def clipped_mean(mu, sd):
    """E[clip(Y, 0, 1)] for Y ~ N(mu, sd²), exactly."""
    mu, sd = np.asarray(mu, float), np.asarray(sd, float)

    def above(c):  # E[max(Y − c, 0)]
        z = (mu - c) / sd
        return (mu - c) * ndtr(z) + sd * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)

    return above(0.0) - above(1.0)


def _overfitting(params: dict, target: float, reach: float, sharpness: float) -> dict | None:
    """Point's overfitting fields that make the earlier epochs' curve b = f − o minimal at ``target`` dex from x*
    (ω from b'(target) = 0), fading ``reach`` (+0.1) × |target| dex right of it over reach / ``sharpness``;
    None where b would have another minimum (or target is not left of x*, where f still falls)."""
    a, k = params["a"], params["k"]
    if target > -0.005:
        return None
    slope = a * target if k < 1e-6 else a * np.expm1(k * target) / k  # f'(target) < 0
    # b falls towards small coef as long as ω < −f'(−∞) = A/k, i.e. σ(sharpness) > 1 − exp(k·target): a sharper
    # fade where the cliff is steep (large k, a flat slope far left) and the target far left
    falls = -np.expm1(k * target)
    sharpness = max(sharpness, np.log(falls / (1 - falls)) + 1.0) if falls < 1 - 1e-9 else np.inf
    if not np.isfinite(sharpness):
        return None
    fade = -target * reach + 0.1
    soft = fade / sharpness
    fields = dict(over=-slope * (1 + np.exp(-sharpness)), over_at=params["x_star"] + target + fade, over_soft=soft)
    u = np.linspace(-3, 3, 6001)
    b = rise(u, a, k) - Point(**params, **fields).overfit(params["x_star"] + u)
    if np.all(np.diff(b[u < target]) < 0) and np.all(np.diff(b[u > target]) > 0):
        return fields
    return None


def _point(params: dict, width: int, centre: float, m: MetricScenario, rng: np.random.Generator) -> Point:
    """A (lr, width)'s curves for every metric: the final loss's ``params`` (from ``planted``) and the other
    metrics' shapes drawn from ``rng``, placed on their planted power laws. The best-epoch loss: where its
    expected curve for an unjittered seed is minimal is x* + best_shift + best_slope·(log10 width − centre),
    to 1e-6 dex (as x* is the final loss's; the jitter moves the truth off the line as it moves x*): the minimum
    of b that puts it there is found by Brent's root finding (b's minimum sits left of it: the final epoch,
    close to b right of its minimum, makes the lowest of the epochs lower there). The overfitting's shape is
    redrawn where b would have two minima or no place of b's minimum works."""
    offset = np.log10(width) - centre
    line = m.best_shift + m.best_slope * offset
    if line > -0.01:
        raise ValueError(f"best-epoch optimum {line:+.3f} dex from the final loss's: must be left of it")
    point = None
    for attempt in range(100):  # a flat, noisy basin needs the overfitting to reach further right: widen as we go
        reach, sharpness = rng.uniform(*m.overfit_reach) * (1 + attempt / 10), rng.uniform(*m.overfit_sharpness)

        def placed(target):
            fields = _overfitting(params, target, reach, sharpness)
            return (
                None if fields is None else Point(**params, x_best=params["x_star"] + target, epochs=m.epochs, **fields)
            )

        def miss(target):
            p = placed(target)
            if p is None:
                raise _Unplaceable
            return p.optimum("best_val_loss", jitter=False)[0] - p.x_star - line

        try:
            hi = min(line + 0.05, -0.005)
            if miss(hi) <= 0:
                continue
            lo = next((lo for lo in (line - 0.15, line - 0.3, line - 0.6) if miss(lo) < 0), None)
            if lo is not None:
                point = placed(brentq(miss, lo, hi, xtol=1e-7))
                break
        except _Unplaceable:
            continue
    if point is None:
        raise ValueError(f"no overfitting puts the best-epoch optimum at {line:+.3f} dex with one minimum")
    return replace(
        point,
        x_err=params["x_star"] + m.err_shift + m.err_slope * offset,
        a_err=params["a"] * rng.uniform(*m.err_flat),
        k_err=float(rng.uniform(0.0, 5.0)),
        scale=m.err_scale,
        corr=m.err_corr,
        n_val=m.n_val,
    )


class _Unplaceable(Exception):
    """The earlier epochs' curve would have two minima."""


def _other_metrics(table, truth, s: Scenario, m: MetricScenario, points: dict, runs: list, rng) -> None:
    """Each run's best-epoch loss and error rate (``Point``) into ``table``; each metric's truth into
    truth['metrics']."""
    centre = np.log10(np.asarray(s.widths)).mean()
    curves = {key: _point(params, key[1], centre, m, rng) for key, params in points.items()}
    best, acc = np.full(len(runs), np.nan), np.full(len(runs), np.nan)
    for i, (key, x, jitter, offset, noise, value, diverged) in enumerate(runs):
        p = curves[key]
        at = p.x0 if x is None else x - jitter
        early = p.early(at)
        epochs = early + offset + p.loss_sd(early) * rng.standard_normal(p.epochs - 1)
        error = p.error(at)
        z = noise / p.loss_sd(value - noise - offset) if s.sigma > 0 else 0.0
        z = p.corr * z + np.sqrt(1 - p.corr**2) * rng.standard_normal()
        chance = np.clip(error + p.scale * offset + p.error_sd(error) * z, 0.0, 1.0)
        count = rng.binomial(p.n_val, chance)
        if not diverged:
            best[i], acc[i] = min(value, *epochs), 1 - count / p.n_val
    table["best_val_loss"], table["val_acc"] = best, acc
    truth["metrics"] = {"val_loss": {k: truth[k] for k in ("alpha", "x", "gain", "level")}}
    for metric, slope in (("best_val_loss", m.best_slope), ("val_err", m.err_slope)):
        t = truth["metrics"][metric] = {"alpha": s.alpha + slope, "x": {}, "gain": {}, "level": {}}
        for key, p in curves.items():
            t["x"][key], t["level"][key] = p.optimum(metric)
            t["gain"][key] = p.baseline(metric) - t["level"][key]
    truth["scenario"] = m
    truth["points"] = curves


def _row(s: Scenario, lr: float, width: int, x, seed: int, value: float, diverged: bool, rng) -> dict:
    norm = str(rng.choice(s.norms))
    c = norm_factor(norm, n_decayed=n_decayed(width), batch_size=BATCH, n_train=N_TRAIN)
    coef = 0.0 if x is None else 10.0**x
    config = {
        "config.model.name": "resnet",
        "config.model.width": width,
        "config.optim.lr": lr,
        "config.optim.batch_size": BATCH,
        "config.data.n_train": None,
        "config.penalty.norm": norm,
        "config.penalty.lam": coef / c,
        "config.penalty.apply": "coupled",
        "config.seed": seed,
    }
    return {
        "model": "resnet",
        "width": width,
        "n_params": 1300 * width**2,
        "n_decayed": n_decayed(width),
        "norm": norm,
        "apply": "coupled",
        "lam": coef / c,
        "coef": coef,
        "optimizer": "sgd",
        "lr": lr,
        "batch_size": BATCH,
        "n_train": N_TRAIN,
        "epochs": 10,
        "seed": seed,
        "status": "diverged" if diverged else "completed",
        "val_loss": np.nan if diverged else value,
        "val_acc": np.nan if diverged else 1 - value / 3,
        "train_loss": value,
        "decayed_norm": 10 / (1 + coef),
        "run_dir": f"w{width}_x{x}_s{seed}_lr{lr}",
        "dataset": "digits",
        **config,
    }
