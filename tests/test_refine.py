"""The adaptive coefficient search: its rule on planted problems (analysis/refine.py) and the Hydra sweeper
that runs it (hydra/sweeper=refine), end to end on the ridge problem whose coef* is known."""

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis.optimum import Optimum, cliff_cut
from analysis.refine import RefineSettings, _shift_variance, lattice, next_step
from analysis.refine_calibration import (
    QUICKSTART_GRID,
    Problem,
    adaptive,
    full_grid,
    measure,
    random_problem,
    summary,
)

GRID = (None, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5)
SHARP = Problem(
    key=7, x_star=-1.8, a=0.8, k=2.0, base=0.3, sigma=0.01, seed_sd=0.02, seed_jitter=0.0, diverge=0.0, grid=GRID
)


def _runs(problem, asked):
    x = [np.nan if c is None else c for c, _ in asked]
    return x, [problem.run(c, s) for c, s in asked], [s for _, s in asked]


def test_the_first_round_is_the_coarse_grid_with_its_baseline_at_each_seed():
    step = next_step(GRID, [], [], [], RefineSettings(seeds=3))
    assert not step.done and step.reason == "first round"
    assert sorted(step.runs, key=str) == sorted([(c, s) for s in range(3) for c in GRID], key=str)


def test_an_optimum_beyond_the_grid_extends_it_one_step_at_every_seed():
    problem = replace(SHARP, x_star=0.2)  # above the grid's top (-0.5)
    asked = list(next_step(GRID, [], [], [], RefineSettings()).runs)
    step = next_step(GRID, *_runs(problem, asked), RefineSettings())
    assert step.optimum.status == "edge" and step.reason == "extend high"
    assert sorted(step.runs) == [(0.0, 0), (0.0, 1)]
    # no further than ``extend`` beyond the coarse grid: at the limit the rule refines instead
    asked += [(0.0, 0), (0.0, 1), (0.5, 0), (0.5, 1)]
    step = next_step(GRID, *_runs(problem, asked), RefineSettings())
    assert all(c <= 0.5 for c, _ in step.runs) and step.reason != "extend high"


@pytest.mark.parametrize("key", [7, 8, 9])
def test_the_search_stops_within_the_target_covers_the_truth_and_beats_the_grid(key):
    """The quickstart's grid, a clear basin and realistic noise: the target needs more than two seeds."""
    problem = replace(SHARP, key=key, sigma=0.03, a=0.4, grid=(None, *QUICKSTART_GRID))
    result = adaptive(problem, RefineSettings(target_dex=0.1, budget=400))
    assert result["stop"] == "reached" and result["half_width"] <= 0.1 and result["covered"]
    assert result["rounds"] >= 2  # the target held in two fits in a row
    grid = full_grid(problem, 0.1, max_runs=400)
    assert result["runs"] < grid["runs"]


def test_refinement_runs_sit_on_the_lattice_near_the_optimum_and_are_never_repeated():
    settings = RefineSettings()
    asked = list(next_step(GRID, [], [], [], settings).runs)
    problem = replace(SHARP, sigma=0.04, a=0.3)
    steps = []
    for _ in range(6):
        step = next_step(GRID, *_runs(problem, asked), settings, steps[-1] if steps else None)
        if step.done:
            break
        steps.append(step)
        asked += list(step.runs)
    assert len(set(asked)) == len(asked)
    allowed = set(lattice([c for c in GRID if c is not None], settings).round(6))
    refined = [(c, s, st) for st in steps for c, s in st.runs if st.reason in ("refine", "new seed")]
    assert refined and all(round(c, 6) in allowed for c, _, _ in refined)
    assert all(abs(c - st.optimum.x) <= 1.0 for c, _, st in refined)


def test_the_same_runs_give_the_same_next_runs_so_a_rerun_replays_the_rounds():
    settings = RefineSettings()
    asked = list(next_step(GRID, [], [], [], settings).runs)
    problem = replace(SHARP, sigma=0.03, a=0.3)
    first = next_step(GRID, *_runs(problem, asked), settings)
    again = next_step(GRID, *_runs(problem, list(asked)), settings)
    assert first.runs == again.runs and first.reason == again.reason


def test_the_budget_is_never_exceeded():
    problem = replace(SHARP, sigma=0.05, a=0.1)  # flat and noisy: ±0.1 dex is out of reach
    result = adaptive(problem, RefineSettings(budget=45))
    assert result["stop"] == "budget" and result["runs"] <= 45


@pytest.mark.parametrize(
    "field, bad, good, message",
    [
        ("target_dex", 0, 0.01, "refine.target_dex=0: must be > 0"),
        ("budget", 0, 1, "refine.budget=0: must be an integer >= 1"),
        ("seeds", 1, 2, "refine.seeds=1: must be an integer >= 2 (the fit needs a seed offset and the noise)"),
        ("round_runs", 0, 1, "refine.round_runs=0: must be an integer >= 1"),
        ("resolution", 0, 0.01, "refine.resolution=0: must be > 0"),
        ("extend", -0.5, 0, "refine.extend=-0.5: must be >= 0"),
        ("confirm", 0, 1, "refine.confirm=0: must be an integer >= 1"),
        ("min_seeds", 0, 1, "refine.min_seeds=0: must be an integer >= 1"),
    ],
)
def test_bad_settings_name_the_field_and_the_bound_is_allowed(field, bad, good, message):
    assert RefineSettings(**{field: bad}).problem() == message
    assert RefineSettings(**{field: good}).problem() is None


def test_the_lattice_holds_the_grid_and_every_step_from_extend_below_to_extend_above():
    points = lattice([-2.0, -1.3, -1.0], RefineSettings(resolution=0.25, extend=0.5))
    assert points[0] == -2.5 and points[-1] == -0.5
    assert -1.3 in points and np.allclose(np.diff(points[points != -1.3]), 0.25)


def test_an_optimum_below_the_grid_extends_it_down_and_one_far_from_an_open_end_does_not():
    settings = RefineSettings()
    asked = list(next_step(GRID, [], [], [], settings).runs)
    low = replace(SHARP, x_star=-3.4, a=0.3, k=0.0)  # below the grid's bottom (-3)
    step = next_step(GRID, *_runs(low, asked), settings)
    assert step.optimum.status == "edge" and step.reason == "extend low"
    assert sorted(step.runs) == [(-3.5, 0), (-3.5, 1)]
    flat = replace(SHARP, x_star=-1.0, a=0.05, sigma=0.03)  # coef* inside, a basin flat towards small coefs
    step = next_step(GRID, *_runs(flat, asked), settings)
    assert step.optimum.status == "open" and step.optimum.unbounded == "both" and step.optimum.x > -1.0
    assert step.reason == "extend high" and sorted(step.runs) == [(0.0, 0), (0.0, 1)]  # coef* near the top only


def test_a_search_reports_why_it_stopped_and_how_many_fits_in_a_row_were_within():
    settings = RefineSettings(confirm=2, budget=400)
    problem = replace(SHARP, key=8, sigma=0.03, a=0.4, grid=(None, *QUICKSTART_GRID))
    asked, step, streaks = list(next_step(problem.grid, [], [], [], settings).runs), None, []
    while True:
        step = next_step(problem.grid, *_runs(problem, asked), settings, step)
        streaks.append(step.streak)
        if step.done:
            break
        asked += list(step.runs)
    assert step.reason == "reached" and streaks[-2:] == [1, 2] and step.half_width <= 0.1
    assert all(b in (0, a + 1) for a, b in zip(streaks, streaks[1:]))


def test_a_narrow_interval_from_too_few_seeds_does_not_count_and_asks_for_a_new_seed():
    """Two seeds' curves say nothing of how far a third seed's optimum may sit: narrow there, the search
    adds a seed rather than confirming."""
    settings = RefineSettings(min_seeds=3)
    problem = replace(SHARP, sigma=0.002, a=2.0, grid=(None, *QUICKSTART_GRID))  # quiet and sharp: narrow at once
    runs = _runs(problem, list(next_step(problem.grid, [], [], [], settings).runs))
    step = next_step(problem.grid, *runs, settings)
    assert step.half_width <= 0.1 and step.streak == 0 and step.reason == "new seed"
    assert {s for _, s in step.runs} == {2} and len(step.runs) == settings.round_runs
    assert next_step(problem.grid, *runs, replace(settings, min_seeds=2)).streak == 1


def test_one_noisy_mean_inside_the_basin_does_not_cut_it_off():
    """The cliff is where the curve stays risen: a coef run by one seed with a high draw is not one."""
    x = np.array([-3, -2.5, -2.25, -2, -1.5, -1, -0.5, 0])
    y = np.array([0.40, 0.35, 0.60, 0.30, 0.32, 0.36, 1.5, 2.3])
    assert cliff_cut(x, y, np.zeros(8)) == -0.5
    y[2] = 0.33
    assert cliff_cut(x, y, np.zeros(8)) == -0.5


def test_the_measurement_compares_both_designs_on_the_same_draws():
    table = measure(3, seed=2, settings=RefineSettings(budget=60), max_runs=60)
    assert len(table) == 3 and set(table["adaptive_status"]) <= {"ok", "edge", "open", "too_few"}
    result = summary(table)
    assert list(result["design"]) == ["adaptive", "grid"]
    assert ((result["coverage_lo"] <= result["coverage"]) & (result["coverage"] <= result["coverage_hi"])).all()
    problem = random_problem(np.random.default_rng(0))
    assert problem.run(-2.0, 3) == problem.run(-2.0, 3)  # a run's draw does not depend on who asks for it


def test_the_paired_ratio_counts_a_design_short_of_the_target_as_infinite_or_at_the_runs_it_spent():
    """Three problems: both reach it (150 vs 50 runs), only the search (grid short at 200 spent vs 100), neither
    (left out of the ratio, not of the medians)."""
    import pandas as pd

    def design(name, runs, reached):
        return {f"{name}_runs": runs, f"{name}_reached": reached, f"{name}_status": "ok", f"{name}_covered": True}

    rows = [
        design("adaptive", a, ra) | design("grid", g, rg)
        for a, ra, g, rg in [(50, True, 150, True), (100, True, 200, False), (300, False, 400, False)]
    ]
    result = summary(pd.DataFrame(rows)).set_index("design")
    assert result.loc["adaptive", "median_fewer"] == np.inf  # the median of 3 and inf
    assert result.loc["adaptive", "median_fewer_spent"] == pytest.approx(2.5)  # of 3 and 200/100
    assert result.loc["adaptive", "median_runs"] == 100 and result.loc["grid", "median_runs"] == np.inf
    assert result.loc["adaptive", "median_both"] == 50 and result.loc["grid", "median_both"] == 150


RIDGE = [
    "model=linear",
    "data=ridge",
    "data.n_train=2048",
    "data.n_val=4096",
    "data.signal=0.5",
    "optim.momentum=0",
    "optim.lr=0.07",
    "optim.schedule=constant",
    "optim.epochs=200",
    "optim.batch_size=2048",
    "penalty.lam=0",
    "progress=false",
]


@pytest.mark.slow
def test_the_refine_sweeper_finds_the_ridge_optimum_and_a_rerun_continues(cli, tmp_path):
    """Ridge's coef* = 4·d/n is known: the search brackets it at both widths, and a rerun with a larger
    budget launches nothing it already ran."""
    sweep = [
        "-m",
        "hydra/sweeper=refine",
        *RIDGE,
        "model.width=128,256",
        "penalty.log10_coef=-2,-1.5,-1,-0.5,0,0.5",
        "hydra.sweeper.refine.target_dex=0.15",
        "hydra.sweeper.refine.budget=40",
        "name=r",
    ]
    code, out, err = cli(*sweep)
    assert code == 0, err[-2000:]
    root = tmp_path / "out" / "multirun" / "r"
    made = sorted(root.glob("*/result.json"))
    assert 24 <= len(made) <= 80
    runs = json.loads((root / "runs.json").read_text())
    assert len(runs) == len(made)  # every run the rounds asked for is in the manifest, once
    answers = json.loads((root / "refine.json").read_text())
    assert sorted(a["runs"] for a in answers) and sum(a["runs"] for a in answers) == len(made)
    for a in answers:  # the search's own (hull) interval holds the closed form where it bounded coef*
        d = int(next(o for o in a["overrides"] if o.startswith("model.width=")).split("=")[1])
        if a["status"] == "ok":
            assert a["log10_lo"] <= np.log10(4 * d / 2048) <= a["log10_hi"]
    from analysis.pipeline import analyse
    from analysis.table import collect, write_table

    write_table(collect([root]), tmp_path / "r.csv")
    stars = analyse(str(tmp_path / "r.csv"), "val_loss")["coef_star"]
    truth = 4 * stars["width"] / stars["n_train"]
    bounded = stars["status"] == "ok"
    assert bounded.any() and ((stars["coef_lo"] <= truth) & (truth <= stars["coef_hi"]))[bounded].all()
    code, out, err = cli(*sweep[:-2], "hydra.sweeper.refine.budget=48", "name=r")
    assert code == 0, err[-2000:]
    assert len(sorted(root.glob("*/result.json"))) <= len(made) + 16  # the old rounds were skipped


@pytest.mark.parametrize(
    "args, message",
    [
        (["seed=0,1"], "seed: the refine sweeper chooses the seeds; set hydra.sweeper.refine.seeds instead"),
        (["penalty.log10_coef=-2,-1"], "penalty.log10_coef: the refine sweeper needs the coarse grid there"),
        (["penalty.log10_coef=-2,-1.5,-1,0", "hydra.sweeper.refine.seeds=1"], "hydra.sweeper.refine.seeds=1: "),
    ],
)
def test_bad_refine_sweeps_fail_in_one_line_before_any_run(cli, tmp_path, args, message):
    code, out, err = cli("-m", "hydra/sweeper=refine", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "out").rglob("result.json"))


def test_the_replay_reads_the_kept_ridge_sweep_and_stays_within_its_runs():
    """The real-sweep measurement: 20 (d, n) cells of 17 coefs x 48 problems, truth log10(4·d/n); the search
    asks only for runs the sweep made (a KeyError otherwise) and stops before a seed it lacks."""
    from analysis.refine_calibration import ridge_cells

    cells = ridge_cells()
    assert len(cells) == 20 and all(len(c.full) == 17 and c.seeds == 48 for c in cells)
    cell = cells[0]
    assert len(cell.grid) == 9 and cell.truth == pytest.approx(np.log10(4 * 64 / 2048))
    settings = RefineSettings(resolution=0.25, extend=0.0, budget=120)
    result = adaptive(cell, settings)
    assert result["runs"] <= 120 and result["status"] in ("ok", "open", "edge")
    grid = full_grid(cell, 0.1, max_runs=10**6)
    assert grid["seeds"] <= 48


def test_a_live_ridge_search_is_fitted_from_its_own_runs_and_paired_with_the_kept_grid(tmp_path):
    """measure_ridge_live: per (d, n) of a collected refine sweep, the fit of all its runs against the closed
    form, beside the kept grid's replay of the same cell (here the 'live' runs are a slice of the kept ones)."""
    from analysis.refine_calibration import measure_ridge_live, ridge_cells
    from analysis.table import read_table

    kept = read_table("paper/results/ridge.csv.gz")
    cell = (kept["width"] == 256) & (kept["n_train"] == 4096)
    every_other = np.round(np.log10(kept["coef"]) * 4) % 2 == 0  # the coarse grid: 9 of the 17 coefs
    live = kept[cell & (kept["seed"] < 6) & every_other]
    live.to_csv(tmp_path / "live.csv.gz", index=False)
    table = measure_ridge_live(str(tmp_path / "live.csv.gz"))
    assert len(table) == 1 and table.loc[0, "width"] == 256 and table.loc[0, "adaptive_runs"] == 6 * 9
    assert table.loc[0, "truth"] == pytest.approx(np.log10(4 * 256 / 4096))
    replay = ridge_cells()[2 * 4 + 1]  # cells in (width, n_train) order: 5 widths x 4 n, (256, 4096) is the 10th
    assert replay.truth == table.loc[0, "truth"]
    assert table.loc[0, "grid_runs"] == full_grid(replay, 0.1, max_runs=10**6)["runs"]


def _quickstart_width(width, seeds):
    from analysis.table import read_table

    kept = read_table("paper/results/quickstart.csv.gz")
    return kept[(kept["width"] == width) & kept["seed"].isin(seeds)].copy()


def test_a_replayed_grid_keeps_its_baseline_and_numbers_its_seeds_in_order():
    from analysis.refine_calibration import _replayed

    cell = _quickstart_width(8, [1, 3, 4])
    replay = _replayed(cell, truth=-1.5)
    assert replay.full[0] is None and len(replay.full) == 10 and replay.seeds == 3 and replay.truth == -1.5
    row = cell[(cell["seed"] == 3) & (cell["coef"] == 0)].iloc[0]
    assert replay.run(None, 1) == row["val_loss"]  # seed 3 is the second of 1, 3, 4
    row = cell[(cell["seed"] == 4) & np.isclose(cell["coef"], 10**-1.5)].iloc[0]
    assert replay.run(-1.5, 2) == row["val_loss"]


def test_a_live_digits_search_is_paired_with_a_grid_of_other_seeds_whose_fit_is_the_reference(tmp_path):
    """measure_digits_live: the search's fit of its runs and the grid's replay, against the grid's fit of
    all its seeds (here the 'search' is seeds 3-4 of the kept quickstart, the 'grid' seeds 0-2)."""
    from analysis.refine_calibration import _fit_runs, _grid_fit, _replayed, measure_digits_live

    search, grid = _quickstart_width(8, [3, 4]), _quickstart_width(8, [0, 1, 2])
    search.to_csv(tmp_path / "search.csv.gz", index=False)
    grid.to_csv(tmp_path / "grid.csv.gz", index=False)
    table = measure_digits_live(str(tmp_path / "search.csv.gz"), str(tmp_path / "grid.csv.gz"))
    reference = _fit_runs(grid, _grid_fit)
    assert len(table) == 1 and table.loc[0, "width"] == 8 and table.loc[0, "adaptive_runs"] == 20
    assert table.loc[0, "truth"] == reference.x and table.loc[0, "reference_hi"] == reference.hi
    assert table.loc[0, "adaptive_x"] == pytest.approx(_fit_runs(search).x)
    assert table.loc[0, "grid_runs"] == full_grid(_replayed(grid, reference.x), 0.1, 10**6)["runs"]
    assert table.loc[0, "grid_seeds_available"] == 3


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda search, grid: search, "seed: the grid's seeds must be other than the search's"),
        (lambda search, grid: search.assign(seed=search["seed"] + 10, lr=0.1), "lr: the search and the grid differ"),
        (lambda search, grid: search.assign(seed=search["seed"] + 10, width=4), "width = (4,): in the search"),
    ],
)
def test_a_live_digits_pairing_of_other_settings_or_shared_seeds_fails_in_one_line(tmp_path, change, message):
    from analysis.refine_calibration import measure_digits_live
    from analysis.table import AnalysisError

    grid = _quickstart_width(8, [0, 1, 2])
    change(grid.copy(), grid).to_csv(tmp_path / "search.csv.gz", index=False)
    grid.to_csv(tmp_path / "grid.csv.gz", index=False)
    with pytest.raises(AnalysisError, match=re.escape(message)):
        measure_digits_live(str(tmp_path / "search.csv.gz"), str(tmp_path / "grid.csv.gz"))


def test_the_docs_quote_the_kept_measurement_as_the_verb_wrote_it():
    """docs/refine.md's tables are paper/results/refine/summary.md, and that is report() of the kept tables:
    no number in the docs is typed by hand."""
    import pandas as pd

    from analysis.refine_calibration import report

    kept = Path("paper/results/refine")
    names = ("planted", "ridge", "ridge_live", "digits_live")
    written = report({name: pd.read_csv(kept / f"{name}.csv") for name in names if (kept / f"{name}.csv").exists()})
    assert (kept / "summary.md").read_text() == written
    assert written.strip() in Path("docs/refine.md").read_text()


def test_a_live_measurement_cell_by_cell_shows_each_designs_interval_and_runs():
    import pandas as pd

    from analysis.refine_calibration import cells_markdown

    row = {"width": 8, "truth": -1.5, "reference_lo": -1.6, "reference_hi": -1.4, "adaptive_status": "ok"}
    row |= {"adaptive_x": -1.49, "adaptive_lo": -1.55, "adaptive_hi": -1.41, "adaptive_runs": 180}
    row |= {"grid_status": "open", "grid_runs": 200, "grid_seeds": 20}
    lines = cells_markdown(pd.DataFrame([row]), ["width"]).splitlines()
    assert lines[0] == "| width | reference [95%] | search | runs | grid | runs (seeds) |"
    assert lines[2] == "| 8 | -1.50 [-1.60, -1.40] | -1.49 [-1.55, -1.41] | 180 | open | 200 (20) |"


def test_the_seeds_shift_variance_is_tau_times_the_bend_over_sigma_squared_and_zero_without_an_estimate():
    assert _shift_variance(Optimum("ok", sigma=0.02, shift_sd=0.1, bend=0.4)) == pytest.approx(4.0)
    assert _shift_variance(Optimum("ok", sigma=0.05, shift_sd=0.03, bend=2.0)) == pytest.approx(1.44)
    assert _shift_variance(Optimum("ok", sigma=0.02)) == 0.0  # a fit without shifts: NaN, nothing added
