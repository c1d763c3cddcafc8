"""The closed-form check: ridge regression through the real trainer and the real analysis."""
import numpy as np
import pytest
import torch

from test_train import tiny_run
from wdbench.data import run_dataset
from wdbench.train import Pack

RIDGE = ["model=linear", "data=ridge", "model.width=8", "data.n_train=64", "data.n_val=4096", "optim.momentum=0",
         "optim.lr=0.2", "optim.schedule=constant", "optim.epochs=300", "optim.batch_size=64", "penalty.lam=0"]


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
    expected = torch.linalg.solve(x.T @ x / len(y) + coef * torch.eye(x.shape[1], dtype=torch.float64), x.T @ y / len(y))
    weight = pack.members[0].model.weight.detach().double()[0]
    torch.testing.assert_close(weight, expected, rtol=0, atol=1e-5)
    risk = pack.members[0].history[-1]["val_loss"]
    assert pack.members[0].history[-1]["val_acc"] is None and risk == pytest.approx(
        ((pack.data.x_val.flatten(1).double() @ weight - pack.data.y_val.double()) ** 2).mean().item(), rel=1e-5)


def test_a_linear_members_memory_is_its_weight_state_and_the_input_it_evaluates():
    """Nothing but the input is saved for backward (the weight is the parameter): 4·d bytes each for
    the weight and its gradient (no momentum), and the evaluation step's input and output bound of
    2 · (4·B·d) · 1024/B."""
    from wdbench.train import member_bytes

    run = tiny_run(*RIDGE)
    assert member_bytes(run, 8, 1, 1) == 2 * 4 * 8 + 2 * 4 * 64 * 8 * 1024 // 64


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
        assert together.members[k].history[-1]["val_loss"] == pytest.approx(single.members[0].history[-1]["val_loss"],
                                                                            rel=1e-6)
