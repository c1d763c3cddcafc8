"""Runs made twice across kept experiments (analysis/rerun.py): matched on every config field both tables
record, each remade run counted once, one run collected twice not counted, the remake's spread against σ."""

import numpy as np
import pandas as pd
import pytest

from analysis.rerun import rerun_numbers, rerun_pairs, rerun_summary


def _runs(name, values, seeds=(0, 1, 2), extra=None):
    rows = [
        {
            "config.model.width": 8,
            "config.seed": seed,
            "config.penalty.log10_coef": -2.0,
            **(extra or {}),
            "width": 8,
            "status": "completed",
            "val_loss": value,
            "run_dir": f"outputs/{name}/s{seed}",
        }
        for seed, value in zip(seeds, values)
    ]
    return pd.DataFrame(rows)


def test_a_run_made_in_two_sweeps_is_paired_once_and_its_spread_is_measured_against_sigma():
    first = _runs("a", [1.0, 2.0, 3.0])
    second = _runs("b", [1.0, 2.3, 2.6])  # seed 0 identical, seeds 1 and 2 remade 0.3 and 0.4 away
    third = _runs("c", [1.0, 2.0, 3.0], extra={"config.data.label_noise": 0.2})  # records a field the others lack
    sigma = {f"outputs/a/s{s}": 0.5 for s in range(3)}
    pairs = rerun_pairs({"a": first, "b": second, "c": third}, sigma)
    assert sorted(pairs["experiments"].unique()) == ["a / b", "a / c"]  # c's runs pair with a only, once each
    assert len(pairs) == 6 and (pairs["sigma"] == 0.5).all()
    summary = rerun_summary(pairs).set_index("experiments")
    assert summary.loc["a / b", ["runs", "identical"]].tolist() == [3, 1]
    sd = np.sqrt((0.3**2 + 0.4**2) / 3 / 2)
    assert summary.loc["a / b", "rerun_sd"] == pytest.approx(sd) and summary.loc["a / b", "ratio"] == pytest.approx(
        sd / 0.5
    )
    assert summary.loc["a / c", "identical"] == 3
    assert (pairs["seed_sd"] == 1.0).all()  # a's three seeds at the one config: 1, 2, 3
    assert summary.loc["a / b", "seed_ratio"] == pytest.approx(sd / 1.0)
    numbers = rerun_numbers(rerun_summary(pairs))
    assert numbers["RerunRuns"] == "6" and numbers["RerunIdentical"] == "4"
    assert numbers["RerunRatio"] == f"{sd / 0.5:.2f}--{sd / 0.5:.2f}"
    assert numbers["RerunSeedRatio"] == f"{sd:.2f}--{sd:.2f}"


def test_a_remakes_seed_spread_is_taken_over_the_seeds_of_its_own_config_only():
    first = pd.concat([_runs("a", [1.0, 2.0, 3.0]), _runs("a2", [5.0, 5.5, np.inf], extra={"config.optim.lr": 1.0})])
    first["config.optim.lr"] = first["config.optim.lr"].fillna(0.1)
    second = first.assign(val_loss=first["val_loss"] + 0.2, run_dir=first["run_dir"] + "-again")
    pairs = rerun_pairs({"a": first, "b": second}, {}).sort_values(["seed_sd", "a"])
    assert pairs["seed_sd"].tolist() == [pytest.approx(np.std([5.0, 5.5], ddof=1))] * 3 + [1.0] * 3  # inf left out


def test_another_config_another_seed_or_the_same_run_collected_twice_is_no_remake():
    first = _runs("a", [1.0, 2.0, 3.0])
    assert rerun_pairs({"a": first, "again": first}, {}).empty  # the same run directories
    other = _runs("b", [1.0, 2.0, 3.0], extra={"config.penalty.log10_coef": -1.0})
    assert rerun_pairs({"a": first, "b": other}, {}).empty
    shifted = _runs("c", [1.0, 2.0, 3.0], seeds=(3, 4, 5))
    assert rerun_pairs({"a": first, "c": shifted}, {}).empty
    diverged = _runs("d", [1.0, 2.0, 3.0]).assign(status="diverged")
    assert (
        rerun_pairs({"a": first, "d": diverged}, {}).empty and rerun_numbers(rerun_summary(rerun_pairs({}, {}))) == {}
    )
