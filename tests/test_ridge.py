"""The closed-form check: ridge regression through the real trainer and the real analysis."""

import numpy as np
import pytest
import torch

from wdbench.data import run_dataset
from wdbench.train import Pack

from helpers import tiny_run

RIDGE = [
    "model=linear",
    "data=ridge",
    "model.width=8",
    "data.n_train=64",
    "data.n_val=4096",
    "optim.momentum=0",
    "optim.lr=0.2",
    "optim.schedule=constant",
    "optim.epochs=300",
    "optim.batch_size=64",
    "penalty.lam=0",
]


def test_ridge_problems_are_drawn_from_the_run_seed_as_documented():
    a, b, other = (run_dataset(tiny_run(*RIDGE, f"seed={s}"), torch.device("cpu")) for s in (0, 0, 1))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, other.x_train)
    assert a.x_train.shape == (64, 8, 1, 1) and a.x_val.shape == (4096, 8, 1, 1) and a.regression
    # y = x·β + σ·ε with β ~ N(0, r²/d·I) and x ~ N(0, I): var(y) averages r² + σ² = 2 over problems
    spread = [run_dataset(tiny_run(*RIDGE, f"seed={s}"), torch.device("cpu")).y_val.var().item() for s in range(20)]
    assert np.mean(spread) == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("log10_coef", [None, "-1.5", "-0.5"])
def test_full_batch_training_converges_to_the_normal_equations(log10_coef):
    """w = (XᵀX/n + coef·I)⁻¹ Xᵀy/n minimises mean((y − Xw)²) + coef·‖w‖²: the trained weights match it."""
    run = tiny_run(*RIDGE, *([f"penalty.log10_coef={log10_coef}"] if log10_coef else []))
    pack = Pack([run])
    pack.fit()
    x = pack.data.x_train.flatten(1).double()
    y = pack.data.y_train.double()
    coef = pack.members[0].penalty.coef
    expected = torch.linalg.solve(
        x.T @ x / len(y) + coef * torch.eye(x.shape[1], dtype=torch.float64), x.T @ y / len(y)
    )
    weight = pack.members[0].model.weight.detach().double()[0]
    torch.testing.assert_close(weight, expected, rtol=0, atol=1e-5)
    risk = pack.members[0].history[-1]["val_loss"]
    assert pack.members[0].history[-1]["val_acc"] is None and risk == pytest.approx(
        ((pack.data.x_val.flatten(1).double() @ weight - pack.data.y_val.double()) ** 2).mean().item(), rel=1e-5
    )


def test_a_linear_members_memory_is_its_weight_state_and_the_input_it_evaluates():
    """Nothing but the input is saved for backward (the weight is the parameter): 4·d bytes each for
    the weight and its gradient (no momentum), and the evaluation step's input and output bound of
    2 · (4·B·d) · 1024/B."""
    from wdbench.train import member_bytes

    run = tiny_run(*RIDGE)
    assert member_bytes(run, 8, 1, 1) == 2 * 4 * 8 + 2 * 4 * 64 * 8 * 1024 // 64
    # a minibatch larger than the evaluation's is the larger step; the full batch is one shared tensor
    minibatch = tiny_run(*RIDGE, "data.n_train=8192", "optim.batch_size=4096")
    assert member_bytes(minibatch, 8, 1, 1) == 2 * 4 * 8 + 4 * 4096 * 8
    full_batch = tiny_run(*RIDGE, "data.n_train=4096", "optim.batch_size=4096")
    assert member_bytes(full_batch, 8, 1, 1) == 2 * 4 * 8 + 2 * 4 * 8 * 1024


def test_a_pack_of_coefs_on_one_problem_trains_each_as_alone():
    """The members of a ridge pack share the problem (the seed is part of the pack key) and, full
    batch, one batch: each member's final weights and risk are those of its run alone, to rounding."""
    coefs = ["-2", "-1", "0"]
    together = Pack([tiny_run(*RIDGE, f"penalty.log10_coef={c}") for c in coefs])
    together.fit()
    for k, c in enumerate(coefs):
        single = Pack([tiny_run(*RIDGE, f"penalty.log10_coef={c}")])
        single.fit()
        torch.testing.assert_close(together.members[k].model.weight, single.members[0].model.weight, rtol=0, atol=1e-6)
        assert together.members[k].history[-1]["val_loss"] == pytest.approx(
            single.members[0].history[-1]["val_loss"], rel=1e-6
        )


@pytest.mark.slow
def test_sweep_collect_and_fit_recover_the_closed_form_optimum(cli, tmp_path):
    """experiment=ridge, smaller (3 widths x 2 n x 12 coefs x 8 problems, d/n from 1/32 to 1/4):
    every (d, n) has a bounded coef* whose interval holds 4·d/n, and the fit finds both closed-form
    exponents inside its intervals and within 0.1 (the full experiment: within 0.05)."""
    from analysis.pipeline import analyse
    from analysis.table import collect, write_table

    sweep = [
        "-m",
        "experiment=ridge",
        "model.width=128,256,512",
        "data.n_train=2048,4096",
        "penalty.log10_coef=range(-2,1,0.25)",
        "seed=range(0,8)",
        "optim.epochs=200",
        "progress=false",
        "name=r",
    ]
    assert cli(*sweep)[0] == 0
    write_table(collect([tmp_path / "out" / "multirun" / "r"]), tmp_path / "r.csv")
    fit = analyse(str(tmp_path / "r.csv"), "val_loss")
    stars = fit["coef_star"]
    assert len(stars) == 6 and (stars["status"] == "ok").all()
    truth = 4 * stars["width"] / stars["n_train"]  # d·σ²/(n·r²), σ = 1, r = 0.5
    assert ((stars["coef_lo"] <= truth) & (truth <= stars["coef_hi"])).all()
    closed_form = fit["closed_form"]  # the analysis's own reading of the truth from the recorded configs
    assert closed_form["coef_true"].tolist() == pytest.approx(truth.tolist()) and closed_form["holds_truth"].all()
    laws = fit["predictions"]
    assert sorted(zip(laws["axis"], laws["predicted"])) == [("n_train", -1), ("width", 1)]
    assert laws["consistent"].all() and ((laws["exponent"] - laws["predicted"]).abs() < 0.1).all()
