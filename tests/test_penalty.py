"""The penalty's math against closed forms and against torch's own weight decay."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wdbench.penalty import L2Penalty, PackPenalty, convert_lam, norm_factor, split_decayed, torch_weight_decay


@pytest.fixture(autouse=True)
def float64():
    """Equalities below are checked to ~1e-12."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.Tanh(), nn.Linear(7, 3))


def _batches(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def _apply(penalty, params, lr, lr_multiplier=1.0, pack=None):
    """The penalty on one run's tensors: a pack of one (each tensor given a member axis of 1)."""
    (pack or PackPenalty([penalty])).before_step(
        [p[None] for p in params],
        [None if p.grad is None else p.grad[None] for p in params],
        lr=lr,
        lr_multiplier=lr_multiplier,
    )


def _train(model, opt, penalty=None, params=None, lrs=None, via_loss=False):
    """A few steps, optionally with our penalty; lrs gives a per-step schedule."""
    for step, (x, y) in enumerate(_batches()):
        lr = lrs[step] if lrs else opt.param_groups[0]["lr"]
        for g in opt.param_groups:
            g["lr"] = lr
        loss = nn.functional.cross_entropy(model(x), y)
        if penalty is not None and via_loss:
            loss = loss + penalty.loss(params)
        opt.zero_grad()
        loss.backward()
        if penalty is not None and not via_loss:
            _apply(penalty, params, lr, lr / lrs[0] if lrs else 1.0)
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _all(model):
    return list(model.parameters())


def test_norm_factors_are_exact():
    assert norm_factor("sum") == 1.0
    assert norm_factor("mean", n_decayed=400) == 1 / 400
    assert norm_factor("per_step", batch_size=128, n_train=1437) == 128 / 1437
    pen = L2Penalty(3e-3, "mean", n_decayed=250)
    assert pen.coef == 3e-3 / 250
    pen = L2Penalty(3e-3, "per_step", batch_size=64, n_train=50000)
    assert pen.coef == 3e-3 * (64 / 50000)


def test_norm_factor_needs_its_sizes_and_a_known_name():
    with pytest.raises(ValueError, match="n_decayed"):
        norm_factor("mean")
    with pytest.raises(ValueError, match="batch_size"):
        norm_factor("per_step", batch_size=8)
    with pytest.raises(ValueError, match="allowed: sum, mean, per_step"):
        norm_factor("median")
    with pytest.raises(ValueError, match="allowed: coupled, decoupled, independent"):
        L2Penalty(1e-3, apply="sideways")
    with pytest.raises(ValueError, match="lam"):
        L2Penalty(-1e-3)


def test_lambda_conversion_keeps_the_coefficient():
    sizes = dict(n_decayed=1000, batch_size=100, n_train=5000)
    lam_mean = convert_lam(2e-4, "sum", "mean", **sizes)
    assert lam_mean == pytest.approx(2e-4 * 1000)
    assert convert_lam(lam_mean, "mean", "per_step", **sizes) == pytest.approx(2e-4 * 50)
    assert torch_weight_decay(2e-4) == 4e-4
    assert torch_weight_decay(0.2, "mean", **sizes) == pytest.approx(4e-4)


def test_loss_is_lambda_c_times_sum_of_squares():
    params = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    assert L2Penalty(0.5, "sum").loss(params).item() == pytest.approx(0.5 * 14)
    assert L2Penalty(0.5, "mean", n_decayed=3).loss(params).item() == pytest.approx(0.5 * 14 / 3)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_coupled_sum_equals_sgd_weight_decay_2lam(momentum, nesterov):
    lam, model = 3e-2, _model()
    reference = copy.deepcopy(model)
    ours = _train(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, nesterov=nesterov),
        L2Penalty(lam, "sum"),
        _all(model),
    )
    theirs = _train(
        reference,
        torch.optim.SGD(reference.parameters(), lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=2 * lam),
    )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_coupled_sum_equals_adam_weight_decay_2lam():
    lam, model = 3e-2, _model()
    reference = copy.deepcopy(model)
    ours = _train(model, torch.optim.Adam(model.parameters(), lr=1e-2), L2Penalty(lam), _all(model))
    theirs = _train(reference, torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=2 * lam))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", ["sum", "mean", "per_step"])
def test_decoupled_equals_adamw_weight_decay_2lam_c(norm):
    model = _model()
    reference = copy.deepcopy(model)
    n = sum(p.numel() for p in model.parameters())
    pen = L2Penalty(5e-2 if norm != "mean" else 5e-2 * n, norm, "decoupled", n_decayed=n, batch_size=8, n_train=32)
    lrs = [1e-2, 8e-3, 5e-3, 1e-3]  # a schedule: decay must follow lr_t
    ours = _train(model, torch.optim.Adam(model.parameters(), lr=lrs[0]), pen, _all(model), lrs=lrs)
    theirs = _train(reference, torch.optim.AdamW(reference.parameters(), lr=lrs[0], weight_decay=2 * pen.coef), lrs=lrs)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_decoupled_equals_coupled_with_plain_sgd():
    model = _model()
    reference = copy.deepcopy(model)
    a = _train(model, torch.optim.SGD(model.parameters(), lr=0.1), L2Penalty(1e-2, apply="decoupled"), _all(model))
    b = _train(reference, torch.optim.SGD(reference.parameters(), lr=0.1), L2Penalty(1e-2), _all(reference))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_independent_decay_follows_the_schedule_not_the_base_lr():
    for base in (1.0, 1e-3):  # same multipliers s_t at two base lrs: the same decay per step
        p = nn.Parameter(torch.ones(3))
        pen = L2Penalty(0.1, apply="independent")
        for s in (1.0, 0.5):
            _apply(pen, [p], lr=base * s, lr_multiplier=s)
        torch.testing.assert_close(p.detach(), torch.full((3,), (1 - 0.2) * (1 - 0.1)))


def test_loss_and_add_grad_give_the_same_step():
    lam, model = 3e-2, _model()
    reference = copy.deepcopy(model)
    via_grad = _train(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), L2Penalty(lam), _all(model))
    via_loss = _train(
        reference,
        torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9),
        L2Penalty(lam),
        _all(reference),
        via_loss=True,
    )
    torch.testing.assert_close(via_grad, via_loss, rtol=0, atol=1e-12)


def test_split_excludes_biases_and_norm_parameters_by_default():
    model = _model()
    decayed, kept = split_decayed(model)
    assert [n for n, _ in decayed] == ["0.weight", "3.weight"]
    assert [n for n, _ in kept] == ["0.bias", "1.weight", "1.bias", "3.bias"]
    decayed, kept = split_decayed(model, exclude=[])
    assert len(decayed) == 6 and not kept
    decayed, _ = split_decayed(model, exclude=["bias", "3.*"])
    assert [n for n, _ in decayed] == ["0.weight", "1.weight"]


@pytest.mark.parametrize("apply", ["coupled", "decoupled", "independent"])
def test_excluded_parameters_are_untouched(apply):
    model = _model()
    decayed, kept = split_decayed(model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    pen = L2Penalty(0.3, apply=apply)
    _apply(pen, [p for _, p in decayed], lr=0.1)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for name, p in kept:
        assert torch.equal(p, before[name]), name
    for name, p in decayed:
        torch.testing.assert_close(p.detach(), before[name] * (1 - 0.1 * 0.6 if apply != "independent" else 1 - 0.6))


def test_every_size_of_a_normalisation_is_checked_and_lam_must_be_finite():
    for sizes in ({"n_decayed": 0}, {"batch_size": 0, "n_train": 10}, {"batch_size": 8, "n_train": 0}, {"n_train": 10}):
        with pytest.raises(ValueError):
            norm_factor("mean" if "n_decayed" in sizes else "per_step", **sizes)
    assert norm_factor("per_step", batch_size=1, n_train=1) == 1.0 and norm_factor("mean", n_decayed=1) == 1.0
    for lam in (float("inf"), float("nan"), -1e-300):
        with pytest.raises(ValueError, match=f"penalty lam={lam}: must be finite and >= 0"):
            L2Penalty(lam)
    assert L2Penalty(0.0).coef == 0.0 and L2Penalty(1e300).coef == 1e300


def test_from_coef_gives_exactly_that_coefficient_in_every_normalisation():
    sizes = dict(n_decayed=3000, batch_size=64, n_train=1437)
    for norm, lam in (("sum", 1e-3), ("mean", 3.0), ("per_step", 1e-3 * 1437 / 64)):
        penalty = L2Penalty.from_coef(1e-3, norm, "decoupled", **sizes)
        assert penalty.coef == 1e-3 and penalty.lam == pytest.approx(lam, rel=1e-12)
        assert (penalty.norm, penalty.apply) == (norm, "decoupled")
    assert (L2Penalty.from_coef(2e-3).norm, L2Penalty.from_coef(2e-3).apply) == ("sum", "coupled")
    assert (
        repr(L2Penalty.from_coef(1e-3, "mean", **sizes)) == "L2Penalty(lam=3, norm='mean', apply='coupled', coef=0.001)"
    )


def test_a_zero_penalty_touches_nothing_and_skips_parameters_without_a_gradient():
    with_grad, without = torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([3.0])
    with_grad.grad = torch.tensor([0.5, 0.5])
    _apply(L2Penalty(0.25), [with_grad, without], lr=0.1)
    assert torch.equal(with_grad.grad, torch.tensor([1.0, -0.5])) and without.grad is None  # g + 2·coef·w
    for apply in ("coupled", "decoupled", "independent"):
        w = torch.tensor([1.0, -2.0], requires_grad=True)
        w.grad = torch.tensor([0.5, 0.5])
        _apply(L2Penalty(0.0, apply=apply), [w], lr=0.1, lr_multiplier=0.5)
        assert torch.equal(w.detach(), torch.tensor([1.0, -2.0])) and torch.equal(w.grad, torch.tensor([0.5, 0.5]))
    w = torch.tensor([1.0, -2.0])
    _apply(L2Penalty(0.25, apply="decoupled"), [w], lr=0.1, lr_multiplier=0.5)
    assert torch.allclose(w, torch.tensor([0.95, -1.9]))  # w·(1 − lr·2·coef)
    _apply(L2Penalty(0.25, apply="independent"), [w], lr=0.1, lr_multiplier=0.5)
    assert torch.allclose(w, torch.tensor([0.95 * 0.75, -1.9 * 0.75]))  # w·(1 − s·2·coef)


@pytest.mark.parametrize("apply", ["coupled", "decoupled", "independent"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_pack_penalty_gives_each_member_bit_for_bit_what_it_does_alone(apply, dtype):
    """Stacked members with their own coefs (one of them 0) against each member's penalty applied alone:
    the same arithmetic, so equal bits, in float32 as trained and in float64."""
    g = torch.Generator().manual_seed(0)
    coefs = [3e-2, 0.0, 0.7]
    shapes = [(5, 3), (7,), ()]
    weights = [torch.randn(len(coefs), *s, generator=g, dtype=dtype) for s in shapes]
    grads = [torch.randn(len(coefs), *s, generator=g, dtype=dtype) for s in shapes]
    pack = PackPenalty([L2Penalty.from_coef(c, "mean", apply, n_decayed=50) for c in coefs])
    stacked_w, stacked_g = [w.clone() for w in weights], [x.clone() for x in grads]
    pack.before_step(stacked_w, stacked_g, lr=0.05, lr_multiplier=0.4)
    for k, coef in enumerate(coefs):
        w, grad = [x[k].clone() for x in weights], [x[k].clone() for x in grads]
        alone = L2Penalty.from_coef(coef, "sum", apply)  # the same coef named in another normalisation
        if coef and apply == "coupled":  # one run's own arithmetic: torch's add with alpha = 2·coef
            torch._foreach_add_(grad, w, alpha=2.0 * alone.coef)
        elif coef:  # and a multiplication by the Python scalar 1 − lr·2·coef
            torch._foreach_mul_(w, 1.0 - (0.05 if apply == "decoupled" else 0.4) * 2.0 * alone.coef)
        for ours, theirs in zip(stacked_w + stacked_g, w + grad):
            assert torch.equal(ours[k], theirs), (k, apply)


def test_a_pack_shares_one_way_of_applying_the_penalty():
    with pytest.raises(ValueError, match=r"a pack shares penalty.apply; got \['coupled', 'decoupled'\]"):
        PackPenalty([L2Penalty(1e-3), L2Penalty(1e-3, apply="decoupled")])


@pytest.mark.parametrize(
    "torch_optim, own_optim, apply, norm",
    [
        ("SGD", "SGD", "coupled", "sum"),
        ("Adam", "Adam", "coupled", "mean"),
        ("AdamW", "Adam", "decoupled", "mean"),
        ("AdamW", "Adam", "decoupled", "per_step"),
    ],
)
def test_the_own_loop_api_equals_torchs_optimizers_bit_for_bit(torch_optim, own_optim, apply, norm):
    """decay_groups hands torch its own weight decay for λ in a normalisation (biases and norms at 0);
    L2Penalty.apply_ in a loop whose optimizer has none gives the very same weights."""
    from wdbench.penalty import decay_groups

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))

    kwargs = {"lr": 0.1, "momentum": 0.9} if torch_optim == "SGD" else {"lr": 0.01}
    sizes = {"batch_size": 16, "n_train": 64}
    x, y = torch.randn(16, 5, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    theirs, ours = model(), model()
    groups = decay_groups(theirs, 0.03, norm, **sizes)
    assert [g["weight_decay"] > 0 for g in groups] == [True, False] and len(groups[1]["params"]) == 4
    torch_opt = getattr(torch.optim, torch_optim)(groups, **kwargs)
    own_opt = getattr(torch.optim, own_optim)(ours.parameters(), **kwargs)
    decayed = [p for _, p in split_decayed(ours)[0]]
    penalty = L2Penalty(0.03, norm, apply, n_decayed=sum(p.numel() for p in decayed), **sizes)
    for _ in range(4):
        for net, opt in ((theirs, torch_opt), (ours, own_opt)):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            if net is ours:
                penalty.apply_(decayed, lr=kwargs["lr"])
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(theirs.parameters(), ours.parameters()))


def test_independent_decay_in_an_own_loop_follows_the_schedule_not_the_base_lr():
    w = torch.ones(3, requires_grad=True)
    w.grad = torch.zeros(3)
    L2Penalty(0.1, "sum", "independent").apply_([w], lr=0.05, lr_max=0.2)  # s_t = 0.25
    assert torch.allclose(w.detach(), torch.full((3,), 1 - 0.25 * 2 * 0.1))


def test_a_runs_penalty_resolves_lam_from_lam_log10_lam_or_coef():
    from wdbench.config import PenaltyConfig
    from wdbench.penalty import penalty_for

    sizes = dict(n_decayed=3000, batch_size=64, n_train=1437)
    for config, lam, coef in (
        (PenaltyConfig(norm="mean", lam=3.0), 3.0, 1e-3),
        (PenaltyConfig(norm="mean", log10_lam=1.0), 10.0, 10.0 / 3000),
        (PenaltyConfig(norm="per_step", log10_coef=-3.0, apply="decoupled"), 1e-3 * 1437 / 64, 1e-3),
    ):
        penalty = penalty_for(config, **sizes)
        assert penalty.lam == pytest.approx(lam, rel=1e-12) and penalty.coef == pytest.approx(coef, rel=1e-12)
        assert (penalty.norm, penalty.apply) == (config.norm, config.apply)
    assert penalty_for(PenaltyConfig(log10_coef=-3.0), **sizes).coef == 1e-3  # exactly: packs share it bit for bit
