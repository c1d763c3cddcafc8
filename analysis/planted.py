"""Results tables with a planted answer and realistic noise, for calibration and tests.

The metric against x = log10 coef at one width is modelled on the digits sweeps (paper/): a basin
that is flat towards small coef and a cliff towards large coef,

    f(u) = base + A·(exp(k·u) − 1 − k·u)/k²,   u = x − x*   (A = f''(x*); k = 0 is a parabola),

capped at ln 10 (chance for 10 classes). Each seed shifts its curve by an offset and its optimum by
a small jitter (optionally with a slope in width that the seed's widths share); each run adds noise along
the curve that grows on the cliff; a few runs diverge or are missing. The true coef* of a width is the
minimum of the seed-averaged curve: with a jitter d ~ N(0, τ²), E f(u − d) is minimal at u = −k·τ²/2
(exactly, below the cap).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

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


def curve(u, base, curvature, k):
    u = np.asarray(u, float)
    rise = curvature * u**2 / 2 if k < 1e-6 else curvature * (np.expm1(k * u) - k * u) / k**2
    return np.minimum(base + rise, CHANCE)


def planted(s: Scenario, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """(results table, truth): truth['x'][(lr, width)] = true log10 coef*, truth['alpha'], truth['gain'],
    truth['level'][(lr, width)] = the minimum of the seed-averaged curve (the joint optimum's criterion);
    truth['bend'] and truth['centre']: the local slope at log10 width u is alpha + 2·bend·(u − centre)."""
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
    return pd.DataFrame(rows), truth


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
