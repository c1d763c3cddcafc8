"""Planted best-epoch losses and error rates (analysis/planted.py): the final losses drawn as without them, each
metric's truth against a brute-force minimum, and the draws against the expectation the truth minimises."""

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from analysis.planted import MetricScenario, Point, Scenario, planted, random_metric_scenario

SMALL = dict(widths=(4, 32), seeds=3, seed_jitter=0.04, misfit=0.0, diverge=0.02, missing=0.1)
METRICS = MetricScenario(best_shift=-0.25, best_slope=0.2, epochs=4, err_shift=0.2, err_slope=-0.3, n_val=360)


def test_the_final_losses_are_the_draws_they_are_without_the_other_metrics():
    plain, truth = planted(Scenario(**SMALL), np.random.default_rng(0))
    table, more = planted(Scenario(**SMALL), np.random.default_rng(0), metrics=True)
    assert table["val_loss"].equals(plain["val_loss"]) and table["seed"].equals(plain["seed"])
    assert more["x"] == truth["x"] and more["metrics"]["val_loss"]["x"] == truth["x"]
    assert "best_val_loss" not in plain and set(more["metrics"]) == {"val_loss", "best_val_loss", "val_err"}


def test_each_run_is_a_best_epoch_no_worse_than_its_last_and_an_error_counted_over_the_validation_set():
    table, truth = planted(Scenario(**SMALL), np.random.default_rng(1), metrics=METRICS)
    done = table[table["status"] == "completed"]
    assert (done["best_val_loss"] <= done["val_loss"]).all() and (done["best_val_loss"] < done["val_loss"]).mean() > 0.3
    errors = (1 - done["val_acc"]) * METRICS.n_val
    assert np.allclose(errors, errors.round()) and errors.between(0, METRICS.n_val).all()
    diverged = table[table["status"] == "diverged"]
    assert len(diverged) and diverged[["best_val_loss", "val_acc"]].isna().all().all()


def _brute_expected(p: Point, metric: str, x: float) -> float:
    """E[metric] at x averaged over a seed's jitter, offset and noise, by sums over dense grids written out
    independently of Point.expected (a trapezoid over the jitter and over the metric's value)."""
    d = np.linspace(-6, 6, 49) * np.sqrt(p.spread)
    u = (x - d)[:, None]
    z = np.linspace(-12, 12, 4001)[None, :]
    if metric == "val_loss":
        values = p.final(u[:, 0])
    elif metric == "best_val_loss":  # E[min] = lo + ∫ P(min > t) dt over t from a level every value is above
        f, b = p.final(u), p.early(u)
        sf, sb = p.sigma * (1 + f - p.base), p.sigma * (1 + b - p.base)
        lo, width = np.minimum(f, b) - 12 * np.maximum(sf, sb), 24 * np.maximum(sf, sb)
        t = lo + width * (z + 12) / 24
        values = lo[:, 0] + np.trapezoid(stats.norm.sf(t, f, sf) * stats.norm.sf(t, b, sb) ** (p.epochs - 1), t)
    else:  # the chance of an error: its mean + the seed's offset + noise, clipped to [0, 1]
        e = p.error(u)
        sd = np.hypot(p.scale * p.sigma * (1 + (e - p.scale * p.base) / p.scale), p.scale * p.seed_sd)
        y = e + sd * z
        values = np.trapezoid(np.clip(y, 0, 1) * stats.norm.pdf(y, e, sd), y)
    weight = stats.norm.pdf(d, scale=np.sqrt(p.spread))
    return float(np.trapezoid(values * weight, d) / np.trapezoid(weight, d))


@pytest.mark.parametrize("metric", ["val_loss", "best_val_loss", "val_err"])
def test_each_metrics_truth_is_the_minimum_of_its_expected_curve_found_by_brute_force(metric):
    _, truth = planted(Scenario(**SMALL), np.random.default_rng(2), metrics=METRICS)
    for key, p in truth["points"].items():
        x = truth["metrics"][metric]["x"][key]
        around = x + np.linspace(-0.05, 0.05, 21)  # every 0.005 dex, then a parabola through the lowest three
        curve = np.array([_brute_expected(p, metric, u) for u in around])
        at = int(np.argmin(curve))
        assert 0 < at < len(around) - 1, (metric, key)
        a, b, _ = np.polyfit(around[at - 1 : at + 2], curve[at - 1 : at + 2], 2)
        assert -b / (2 * a) == pytest.approx(x, abs=1e-3), (metric, key)
        assert truth["metrics"][metric]["level"][key] == pytest.approx(curve[at], abs=1e-6)
    if metric == "val_loss":  # the closed form, E f(u − d) minimal at u = −k·τ²/2
        assert truth["x"] == {
            key: pytest.approx(p.optimum("val_loss")[0], abs=1e-5) for key, p in truth["points"].items()
        }


def test_the_draws_average_to_the_expected_curve_the_truth_minimises():
    """Many seeds at one width: each coef's mean over the seeds (their offsets, jitter and noise drawn) is the
    expected curve the truth minimises; λ = 0's is the baseline the gain is measured from."""
    scenario = Scenario(**{**SMALL, "widths": (8,), "seeds": 1500, "diverge": 0.0, "missing": 0.0, "step": 0.5})
    table, truth = planted(scenario, np.random.default_rng(3), metrics=METRICS)
    p = next(iter(truth["points"].values()))
    table["val_err"] = 1 - table["val_acc"]
    for metric in ("val_loss", "best_val_loss", "val_err"):
        for coef, runs in table.groupby("coef")[metric]:
            expected = p.baseline(metric) if coef == 0 else float(p.expected(metric, np.log10(coef)))
            assert runs.mean() == pytest.approx(expected, abs=4 * runs.std() / np.sqrt(len(runs))), (metric, coef)


def test_the_optima_of_an_unjittered_sweep_lie_on_their_planted_power_laws():
    """Without jitter or scatter, each metric's optimum per width is its planted power law: alpha for the final
    loss, alpha + best_slope and alpha + err_slope for the others (the best-epoch curve is placed so)."""
    scenario = Scenario(alpha=0.4, widths=(4, 8, 16, 32, 64), seed_jitter=0.0, misfit=0.0)
    _, truth = planted(scenario, np.random.default_rng(4), metrics=METRICS)
    log_w = np.log10(scenario.widths)
    for metric, slope in (("val_loss", 0.0), ("best_val_loss", METRICS.best_slope), ("val_err", METRICS.err_slope)):
        x = np.array([truth["metrics"][metric]["x"][(0.05, w)] for w in scenario.widths])
        fit = np.polyfit(log_w, x, 1)
        assert fit[0] == pytest.approx(0.4 + slope, abs=1e-4) and truth["metrics"][metric]["alpha"] == 0.4 + slope
        assert np.abs(x - np.polyval(fit, log_w)).max() < 1e-4


def test_random_metric_scenarios_keep_the_best_epoch_optimum_left_of_the_final_losses():
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = random_metric_scenario(rng)
        assert max(m.best_shift + m.best_slope * 0.75, m.best_shift - m.best_slope * 0.75) <= -0.05 + 1e-12
        assert m.n_val in (360, 4096) and 3 <= m.epochs <= 6
    with pytest.raises(ValueError, match="must be left of it"):
        planted(Scenario(widths=(4, 8)), np.random.default_rng(0), metrics=replace(METRICS, best_shift=0.1))
