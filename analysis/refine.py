"""The adaptive coefficient search's rule: which runs a (setting, width) gets next, from its runs so far.

Round 0 runs the coarse grid the sweep names, with ``seeds`` seeds. After each round the project's
estimator (``fit_optimum``) is fitted to every run of the group, and:

- it is done when the fit is ``ok`` with a 95% interval (the hull of every plausible coef) of half-width at
  most ``target_dex`` in ``confirm`` fits in a row, when ``budget`` runs are spent, or when no run it may
  add is left (the interval is what it is then);
- an optimum at an end of the runs so far (``edge``, or ``open`` with coef* within a coarse step of that
  end) gets one more coarse step there at every seed so far, up to ``extend`` dex beyond the coarse grid;
- otherwise it gets ``round_runs`` runs on the lattice (the coarse grid's points and every
  ``resolution`` dex between its ends, extension included), inside the range the fit used: each the run
  that most reduces the variance of the fitted slope at coef*. By the delta method
  Var(x*) ≈ Var f'(x*) / f''(x*)², so this is a c-optimal design for f'(x*) under the fit's own model
  (seed offsets + spline). The runs go to the seeds so far, or to one new seed when that narrows more: a
  new seed's first run only fixes its offset, so a new seed is weighed as a whole round's runs, and only a
  new seed narrows the share of Var f'(x*) that the seeds' own shifts of the curve make (τ²·f''²/S).

Every choice is a function of the runs on disk and the settings, so rerunning a sweep replays the same
rounds (finished runs are skipped) and goes on from where it stopped. The interval the search reports is
``search_fit`` of all its runs: the estimator's, with each seed's own shift of the curve in its variance
(runs bunched near coef* hardly show that shift in their residuals, as a grid's do); its coverage under this
data-dependent design is measured on planted sweeps run through this very rule
(analysis/refine_calibration.py; docs/refine.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.optimum import REFINE_SPREAD, Optimum, cliff_cut, fit_optimum, knots_for, spline_basis

DECIMALS = 6  # coefs are rounded to this many decimals: a lattice point is one override value, one run


@dataclass
class RefineSettings:
    target_dex: float = 0.1  # stop when coef*'s 95% interval is at most ± this many dex (log10 coef)
    budget: int = 150  # most runs one (setting, width) may take, its first round and λ = 0 runs included
    seeds: int = 2  # seeds of the first round over the coarse grid
    round_runs: int = 8  # runs added to a (setting, width) per round after the first
    resolution: float = 0.0625  # dex: the finest spacing of coefs the search adds
    extend: float = 1.0  # dex the search may go beyond either end of the coarse grid when coef* is there
    confirm: int = 3  # fits in a row (after consecutive rounds) whose interval must be within the target
    min_seeds: int = 4  # seeds an interval within the target needs before it counts: each seed's own optimum

    def problem(self) -> str | None:
        """What is wrong with the settings, as one line naming the field (None: nothing)."""
        checks = (
            ("target_dex", self.target_dex > 0, "must be > 0"),
            ("budget", self.budget >= 1, "must be an integer >= 1"),
            ("seeds", self.seeds >= 2, "must be an integer >= 2 (the fit needs a seed offset and the noise)"),
            ("round_runs", self.round_runs >= 1, "must be an integer >= 1"),
            ("resolution", self.resolution > 0, "must be > 0"),
            ("extend", self.extend >= 0, "must be >= 0"),
            ("confirm", self.confirm >= 1, "must be an integer >= 1"),
            ("min_seeds", self.min_seeds >= 1, "must be an integer >= 1"),
        )
        for name, ok, allowed in checks:
            if not ok:
                return f"refine.{name}={getattr(self, name)}: {allowed}"
        return None


@dataclass(frozen=True)
class Step:
    """What the rule says for one (setting, width) after a round."""

    runs: tuple  # (log10 coef, or None for λ = 0; seed) pairs to run next; empty when done
    done: bool
    reason: str  # first round | extend low/high | refine | new seed | reached | budget | exhausted | no runs
    optimum: Optimum | None = None  # the fit of the runs so far (None before the first round)
    streak: int = 0  # fits in a row, this one included, whose interval is within the target

    @property
    def half_width(self) -> float:
        o = self.optimum
        return (o.hi - o.lo) / 2 if o is not None and o.status == "ok" else np.inf


def coarse(grid) -> tuple[list[float], bool]:
    """The coarse grid's coefs (sorted, rounded) and whether it has λ = 0 (None) among them."""
    coefs = sorted({round(float(g), DECIMALS) for g in grid if g is not None})
    return coefs, any(g is None for g in grid)


def lattice(coefs: list[float], settings: RefineSettings) -> np.ndarray:
    """Every coef the search may run: the coarse grid's and every ``resolution`` dex from extend below its
    low end to extend above its high end."""
    lo, hi = coefs[0] - settings.extend, coefs[-1] + settings.extend
    steps = np.arange(int(np.floor((hi - lo) / settings.resolution + 1e-9)) + 1)
    return np.unique(np.round(np.r_[lo + steps * settings.resolution, coefs], DECIMALS))


def search_fit(x, y, seed, baseline_y=(), baseline_seed=()) -> Optimum:
    """The search's fit of its runs: the hull of every plausible coef, with bunched coefs counted once for
    the knots (REFINE_SPREAD) and the spread of the seeds' optima in the interval (``shifts``); the interval
    it stops on and reports."""
    return fit_optimum(x, y, seed, baseline_y, baseline_seed, hull=True, spread=REFINE_SPREAD, shifts=True)


def next_step(grid, x, y, seed, settings: RefineSettings, previous: Step | None = None) -> Step:
    """The next runs of one (setting, width) whose coarse grid is ``grid`` (log10 coefs, None = λ = 0) and
    whose runs so far are at ``x`` (NaN: λ = 0) with metric ``y`` (+inf: diverged) and ``seed``;
    ``previous``: what this rule said before the last round (None before the second)."""
    coefs, baseline = coarse(grid)
    x, y, seed = np.asarray(x, float), np.asarray(y, float), np.asarray(seed, int)
    if len(x) == 0:
        first = [(c, s) for s in range(settings.seeds) for c in [*coefs, *([None] if baseline else [])]]
        return Step(tuple(first), False, "first round")
    on_curve = np.isfinite(x)
    fit = search_fit(x[on_curve], y[on_curve], seed[on_curve], y[~on_curve], seed[~on_curve])
    left = settings.budget - len(x)
    seeds = sorted(set(seed[on_curve].tolist()))
    narrow = fit.status == "ok" and (fit.hi - fit.lo) / 2 <= settings.target_dex
    within = narrow and len(seeds) >= settings.min_seeds
    streak = (previous.streak if previous is not None else 0) + 1 if within else 0
    if streak >= settings.confirm:  # in several fits in a row: one round's lucky draw does not stop it
        return Step((), True, "reached", fit, streak)
    if left <= 0:
        return Step((), True, "budget", fit, streak)
    if fit.status == "no_runs":
        return Step((), True, "no runs", fit)
    done = {(round(float(a), DECIMALS), int(s)) for a, s in zip(x[on_curve], seed[on_curve])}
    if fit.status == "too_few":  # e.g. every coef but three diverged: one more seed over the grid
        runs = [(c, seeds[-1] + 1) for c in coefs][:left]
        return Step(tuple(runs), False, "new seed", fit, streak)
    extension = _extension(fit, x[on_curve], coefs, seeds, done, settings)
    if extension:
        side, runs = extension
        return Step(tuple(runs[:left]), False, f"extend {side}", fit, streak)
    more_seeds = narrow and not within  # narrow from too few seeds: what the next one's optimum says
    runs, reason = _refinement(
        fit, x[on_curve], y[on_curve], seed[on_curve], coefs, seeds, done, settings, left, more_seeds
    )
    return Step(tuple(runs), not runs, reason if runs else "exhausted", fit, streak)


def _extension(fit: Optimum, x, coefs, seeds, done, settings) -> tuple[str, list] | None:
    """One more coarse step beyond the runs so far on each side the optimum is unbounded towards, at every
    seed; None where it is bounded or the grid may grow no more there."""
    if fit.status not in ("edge", "open"):
        return None
    sides = {"low": ("low",), "high": ("high",), "both": ("low", "high")}.get(fit.unbounded, ())
    step_low, step_high = (coefs[1] - coefs[0], coefs[-1] - coefs[-2]) if len(coefs) > 1 else (0.5, 0.5)
    # an interval open towards an end far from coef* is a flat basin, which more runs narrow, not more grid
    near = {"low": fit.x <= x.min() + step_low + 1e-9, "high": fit.x >= x.max() - step_high - 1e-9}
    runs, extended = [], []
    for side in (s for s in sides if fit.status == "edge" or near[s]):
        new = round(float(x.min() - step_low if side == "low" else x.max() + step_high), DECIMALS)
        fresh = [(new, s) for s in seeds if (new, s) not in done]
        if fresh and coefs[0] - settings.extend - 1e-9 <= new <= coefs[-1] + settings.extend + 1e-9:
            runs += fresh
            extended.append(side)
    return ("/".join(extended), runs) if runs else None


def _refinement(fit: Optimum, x, y, seed, coefs, seeds, done, settings, left, new_seed=False) -> tuple[list, str]:
    """``round_runs`` runs (at most ``left``) that most reduce Var f'(x*) under the fit's model: greedy on
    the seeds so far, or greedy on one new seed, whichever leaves the smaller variance (``new_seed``: the
    new seed's)."""
    finite = np.isfinite(y)  # as the fit: diverged runs are not on the curve
    x, y, seed = x[finite], y[finite], seed[finite]
    fitted = x <= cliff_cut(x, y, seed) + 1e-12
    grid = np.unique(x[fitted])
    knots = knots_for(grid, REFINE_SPREAD)
    points = lattice(coefs, settings)
    points = points[(points >= grid[0] - 1e-9) & (points <= grid[-1] + 1e-9)]
    n = min(settings.round_runs, left)
    gradient = spline_basis(np.array([fit.x]), knots, 1)[0]  # f'(x*) = gradient · β
    old = _candidates(points, seeds, done)
    new = [(float(p), seeds[-1] + 1) for p in points]
    picks = []
    for pool, extra in ((old, 0), (new, 1)):
        rows = _rows(x[fitted], seed[fitted], seeds + [seeds[-1] + 1] * extra, knots)
        picks.append(_greedy(rows, pool, seeds + [seeds[-1] + 1] * extra, knots, gradient, n))
    (old_runs, old_var), (new_runs, new_var) = picks
    shifts = _shift_variance(fit)  # what only more seeds narrow: each seed's own shift of the curve
    old_var, new_var = old_var + shifts / len(seeds), new_var + shifts / (len(seeds) + 1)
    if new_runs and (new_seed or not old_runs or new_var < old_var):
        return new_runs, "new seed"
    return old_runs, "refine"


def _shift_variance(fit: Optimum) -> float:
    """τ²·f''(x*)²/σ²: the seeds' shifts' share of Var f'(x*) times the seeds, in units of the noise σ² (as
    _greedy's variances); 0 where the fit estimated none."""
    value = (fit.shift_sd * fit.bend / fit.sigma) ** 2
    return float(value) if np.isfinite(value) else 0.0


def _candidates(points, seeds, done) -> list:
    return [(float(p), s) for s in seeds for p in points if (float(p), s) not in done]


def _rows(x, seed, seeds, knots) -> np.ndarray:
    """The fit's design for runs at ``x`` with ``seed``: a column per seed's offset, then the spline's basis."""
    return np.hstack([(seed[:, None] == np.array(seeds)[None, :]).astype(float), spline_basis(x, knots)])


def _greedy(design, pool, seeds, knots, gradient, n) -> tuple[list, float]:
    """Up to ``n`` runs of ``pool`` picked one at a time, each the one that lowers c'M⁻¹c most (c: f'(x*)'s
    gradient, M: the information of ``design`` and the runs picked so far, in units of the noise σ²).
    A seed without runs has an offset nothing fixes: a tiny ridge keeps M invertible, so its first run
    counts for (almost) nothing and its second for what the pair says about the curve."""
    if not pool:
        return [], np.inf
    m = len(seeds)
    c = np.r_[np.zeros(m), gradient]
    info = design.T @ design + np.diag(np.r_[np.full(m, 1e-6), np.zeros(len(gradient))])
    inverse = np.linalg.pinv(info)
    cand = _rows(np.array([p for p, _ in pool]), np.array([s for _, s in pool]), seeds, knots)
    chosen, free = [], np.ones(len(pool), bool)
    for _ in range(min(n, len(pool))):
        u, v = cand @ inverse @ c, np.einsum("ij,jk,ik->i", cand, inverse, cand)
        score = np.where(free, u**2 / (1 + v), -np.inf)
        best = int(np.argmax(score))
        r = inverse @ cand[best]
        inverse -= np.outer(r, r) / (1 + cand[best] @ r)
        free[best] = False
        chosen.append(pool[best])
    return chosen, float(c @ inverse @ c)
