"""μP (model.param=mup): which parameters scale how, the learning rate each layer gets, the decay
each application gives it, and μP = SP at the base width."""

import sys
from pathlib import Path

import pytest
import torch

from wdbench.models import build_model
from wdbench.parameterisation import model_scalings, scalings
from wdbench.penalty import L2Penalty, PackPenalty
from wdbench.train import Interrupted, Pack

from helpers import TIMM_TOYS, tiny_run


def _scalings(*overrides):
    run = tiny_run(*overrides)
    with torch.device("meta"):
        model = build_model(run.model, 1, 10, 8)
    return model_scalings(run.model, model, 1, 10, 8)


def test_kinds_and_width_multipliers_are_read_off_the_shapes():
    resnet = _scalings("model.width=64", "model.param=mup", "model.base_width=16")
    assert (resnet["conv1.0.weight"].kind, resnet["conv1.0.weight"].fan_out_mult) == ("vector", 4.0)  # stem: input
    assert (resnet["layer2.0.conv1.weight"].kind, resnet["layer2.0.conv1.weight"].fan_in_mult) == ("hidden", 4.0)
    assert resnet["bn1.weight"].kind == "vector" and resnet["fc.bias"].kind == "fixed"
    assert (resnet["fc.weight"].kind, resnet["fc.weight"].fan_in_mult, resnet["fc.weight"].fan_out_mult) == (
        "output",
        4.0,
        1.0,
    )
    vit = _scalings("model=vit", "model.width=64", "model.param=mup", "model.base_width=16")
    assert vit["patch_embed.proj.weight"].kind == "vector" and vit["pos_embed"].kind == "vector"
    assert vit["blocks.0.attn.qkv.weight"].kind == "hidden" and vit["blocks.0.mlp.fc2.weight"].fan_in_mult == 4.0
    assert vit["head.weight"].kind == "output"
    mixer = _scalings("model=mixer", "model.width=64", "model.param=mup", "model.base_width=16")
    assert mixer["blocks.0.mlp_tokens.fc1.weight"].kind == "vector"  # tokens -> 0.5·width: fan-out grows
    assert mixer["blocks.0.mlp_tokens.fc2.weight"].kind == "output"  # 0.5·width -> tokens: a readout inside


@pytest.mark.parametrize(
    "optim, expected",
    [
        ("adam", {"conv1.0.weight": 1.0, "layer2.0.conv1.weight": 0.25, "fc.weight": 1.0, "fc.bias": 1.0}),
        ("adamw", {"conv1.0.weight": 1.0, "layer2.0.conv1.weight": 0.25, "fc.weight": 1.0, "fc.bias": 1.0}),
        ("sgd", {"conv1.0.weight": 4.0, "layer2.0.conv1.weight": 1.0, "fc.weight": 4.0, "fc.bias": 1.0}),
    ],
)
def test_each_layer_gets_mups_learning_rate(optim, expected):
    """Adam: hidden η/m; SGD: vector-like and output η·m, square hidden η (mup's MuAdam and MuSGD)."""
    pack = Pack([tiny_run("model.width=64", "model.param=mup", "model.base_width=16", f"optim={optim}")])
    assert {n: pack.members[0].lr_multipliers[n] for n in expected} == expected
    by_tensor = {id(t): g["lr_multiplier"] for g in pack.optimizer.param_groups for t in g["params"]}
    assert {n: by_tensor[id(pack.params[n])] for n in expected} == expected


def test_adams_first_step_moves_each_layer_by_its_own_learning_rate():
    """Adam's first step is lr·g/(|g| + eps) per element: at most η/m for hidden weights, η elsewhere
    (the stem's and a shortcut's convolutions: timm zeroes each block's last BatchNorm, so its
    convolutions have no gradient yet)."""
    pack = Pack(
        [
            tiny_run(
                "model.width=32",
                "model.param=mup",
                "model.base_width=16",
                "optim=adam",
                "penalty.lam=0",
                "optim.schedule=constant",
            )
        ]
    )
    before = {n: t.detach().clone() for n, t in pack.params.items()}
    pack.interrupt = lambda: pack.step == 1
    with pytest.raises(Interrupted):
        pack.fit()
    lr = pack.base_lr
    for name, limit in (
        ("conv1.3.weight", lr / 2),
        ("layer2.0.downsample.0.weight", lr / 2),
        ("conv1.0.weight", lr),
        ("fc.weight", lr),
    ):
        moved = (pack.params[name].detach() - before[name]).abs().max().item()
        assert moved == pytest.approx(limit, rel=1e-3), name


def test_the_output_layer_sees_its_input_over_m_with_weights_grown_by_root_m():
    """Same seed, same SP init, then μP: logits = (W·x)/√m + √m·b exactly (m = 4 here)."""
    sp, mup = (Pack([tiny_run("model.width=64", f"model.param={p}", "model.base_width=16")]) for p in ("sp", "mup"))
    x = sp.data.x_val[:16]
    head = sp.members[0].model.fc
    sp_logits = sp.members[0].model.eval()(x)
    expected = (sp_logits - head.bias) / 2.0 + 2.0 * head.bias
    torch.testing.assert_close(mup.members[0].model.eval()(x), expected, rtol=1e-5, atol=1e-6)


def test_a_mixers_token_mixing_readout_is_scaled_like_the_classifier():
    """Inside each Mixer block, mlp_tokens.fc2 reads the 0.5·width hidden units out to the fixed
    number of tokens: its weights grow by √m and its input is divided by m (m = 4), like the head's."""
    sp, mup = (
        Pack([tiny_run("model=mixer", "model.width=64", f"model.param={p}", "model.base_width=16")])
        for p in ("sp", "mup")
    )
    for block in range(len(sp.members[0].model.blocks)):
        fc2_sp, fc2_mup = (pack.members[0].model.blocks[block].mlp_tokens.fc2 for pack in (sp, mup))
        assert torch.equal(fc2_mup.weight, 2.0 * fc2_sp.weight) and torch.equal(fc2_mup.bias, 2.0 * fc2_sp.bias)
        x = torch.randn(3, 8, fc2_sp.in_features)
        torch.testing.assert_close(fc2_mup(x), torch.nn.functional.linear(x / 4.0, fc2_mup.weight, fc2_mup.bias))
    assert torch.equal(
        sp.members[0].model.blocks[0].mlp_channels.fc2.weight, mup.members[0].model.blocks[0].mlp_channels.fc2.weight
    )  # hidden: as built


def test_a_scalar_parameter_is_fixed_with_multipliers_one():
    class Scaled(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.temperature, self.weight = torch.nn.Parameter(torch.tensor(1.0)), torch.nn.Parameter(torch.ones(width))

    (temperature, weight) = scalings(Scaled(64), Scaled(16), Scaled(32)).values()
    assert (temperature.kind, temperature.fan_in_mult, temperature.fan_out_mult) == ("fixed", 1.0, 1.0)
    assert (weight.kind, weight.fan_in_mult, weight.fan_out_mult) == ("vector", 1.0, 4.0)
    assert temperature.lr_multiplier("sgd") == 1.0 and weight.lr_multiplier("sgd") == 4.0


def test_each_timm_familys_roles_are_read_off_its_shapes_like_the_built_in_ones():
    """ConvNeXt (m = 4), an EfficientNet (timm rounds its channels) and Swin (m = 2): convolutions and linear
    maps between widening layers are hidden, depthwise convolutions, norms and layer scales vector-like, the
    classifier the one output; Swin's relative position bias table (positions x heads) grows in dimension 1
    but is no linear map, so it is vector-like and its attention's input is left alone."""
    convnext = _scalings(*TIMM_TOYS["convnext"], "model.width=32", "model.param=mup", "model.base_width=8")
    kinds = {
        "stem.0.weight": "vector",
        "stages.1.downsample.1.weight": "hidden",
        "stages.1.blocks.0.conv_dw.weight": "vector",
        "stages.1.blocks.0.mlp.fc1.weight": "hidden",
        "stages.1.blocks.0.gamma": "vector",
        "stages.1.blocks.0.norm.weight": "vector",
        "head.fc.weight": "output",
        "head.fc.bias": "fixed",
    }
    assert {name: convnext[name].kind for name in kinds} == kinds
    assert convnext["head.fc.weight"].fan_in_mult == 4.0 and convnext["stem.0.weight"].fan_out_mult == 4.0
    effnet = _scalings(*TIMM_TOYS["efficientnet"], "model.width=32", "model.param=mup", "model.base_width=8")
    assert [effnet[n].kind for n in ("conv_stem.weight", "blocks.3.0.conv_pw.weight", "classifier.weight")] == [
        "vector",
        "hidden",
        "output",
    ]
    assert effnet["conv_stem.weight"].fan_out_mult == 3.0  # 48 over 16 channels (24·0.5 rounded up to 16)
    swin = _scalings(*TIMM_TOYS["swin"], "model.width=64", "model.param=mup", "model.base_width=32")
    table = "layers.0.blocks.0.attn.relative_position_bias_table"
    assert [swin[n].kind for n in (table, "layers.0.blocks.0.attn.qkv.weight", "head.fc.weight")] == [
        "vector",
        "hidden",
        "output",
    ]
    model = Pack([tiny_run(*TIMM_TOYS["swin"], "model.width=64", "model.param=mup", "model.base_width=32")])
    model = model.members[0].model
    assert model.head.fc._forward_pre_hooks and not model.layers[0].blocks[0].attn._forward_pre_hooks


def test_only_a_linear_maps_or_convolutions_weight_is_read_as_an_output_layer():
    """A matrix growing in dimension 1 only is a readout if a linear map (or convolution) applies it to its
    input; a table of positions x heads growing in its heads is vector-like (μP must not rescale its input)."""

    class Table(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.head, self.table = torch.nn.Linear(width, 5), torch.nn.Parameter(torch.ones(5, width))

    kinds = {n: s.kind for n, s in scalings(Table(64), Table(16), Table(32)).items()}
    assert kinds == {"head.weight": "output", "head.bias": "fixed", "table": "vector"}


@pytest.mark.parametrize(
    "model, base, doubled, message",
    [
        (
            {"a": (64,), "b": (3,)},
            {"a": (16,)},
            {"a": (32,)},
            "the model has other parameters at model.width than at base_width or 2·base_width (e.g. b), so they "
            "cannot be paired",
        ),
        (
            {"a": (64, 5)},
            {"a": (16, 3)},
            {"a": (32, 3)},
            "the model's a has dimension 1 of 3 at base_width and 2·base_width but 5 at model.width, so whether it "
            "grows with width cannot be read",
        ),
        (
            {"a": (1, 64, 64)},
            {"a": (1, 16, 16)},
            {"a": (1, 32, 32)},
            "the model's a (shape (1, 64, 64)) grows in dimensions [1, 2]; μP reads a matrix-like parameter's "
            "fan-out and fan-in from dimensions 0 and 1",
        ),
    ],
    ids=["a parameter at one width only", "a dimension moving at the width only", "growing in dims 1 and 2"],
)
def test_a_parameter_whose_role_its_shapes_do_not_tell_is_one_config_error(model, base, doubled, message):
    from wdbench.config import ConfigError

    def params(shapes):
        return torch.nn.ParameterDict({name: torch.nn.Parameter(torch.ones(shape)) for name, shape in shapes.items()})

    with pytest.raises(ConfigError) as err:
        scalings(params(model), params(base), params(doubled))
    assert str(err.value) == (
        f"model.param=mup: {message}; μP reads each parameter's role off the model at model.base_width and "
        "twice that (docs/running.md, μP)"
    )


@pytest.mark.parametrize("optim", ["sgd", "adamw"])
def test_at_the_base_width_mup_is_sp_bit_for_bit(optim):
    runs = [
        tiny_run("model.width=16", f"model.param={p}", "model.base_width=16", f"optim={optim}", "penalty.lam=1e-3")
        for p in ("sp", "mup")
    ]
    packs = [Pack([run]) for run in runs]
    for pack in packs:
        pack.interrupt = lambda pack=pack: pack.step == 3
        with pytest.raises(Interrupted):
            pack.fit()
    for (name, a), b in zip(packs[0].params.items(), packs[1].params.values()):
        assert torch.equal(a, b), name


def test_decoupled_decay_uses_each_layers_learning_rate_and_independent_decay_does_not():
    """Hand-computed: w·(1 − lr·m·2·coef) decoupled, w·(1 − s·2·coef) independent, for m = 1/4 and 4."""
    coef, lr, s = 0.1, 0.2, 0.5
    for apply, factors in (
        ("decoupled", [1 - lr * m * 2 * coef for m in (0.25, 4.0)]),
        ("independent", [1 - s * 2 * coef] * 2),
    ):
        penalty = PackPenalty([L2Penalty.from_coef(coef, apply=apply)])
        params = [torch.ones(1, 3, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)]
        penalty.before_step(params, [None, None], lr=lr, lr_multiplier=s, layer_lr_multipliers=[0.25, 4.0])
        for param, factor in zip(params, factors):
            assert torch.equal(param, torch.full_like(param, factor)), apply


def test_coordinate_check_logits_grow_with_width_under_sp_and_stay_under_mup():
    """scripts/coord_check.py at widths 8 and 64 (ResNet, Adam lr 0.01, 3 steps): measured, SP's
    logits grow 3.6x (0.44 -> 1.59) and its stem 1.9x; μP's move by less than 1.4x either way."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from coord_check import activation_scales

    def growth(param, layer):
        narrow, wide = (activation_scales("resnet", w, param)[layer][-1] for w in (8, 64))
        return wide / narrow

    assert growth("sp", "fc") > 2.5 and growth("sp", "conv1") > 1.5
    assert 1 / 1.4 < growth("mup", "fc") < 1.4 and 1 / 1.4 < growth("mup", "conv1") < 1.4


def test_lr_transfer_finds_a_planted_lr_star_and_its_exponent_in_width(tmp_path):
    """scripts/lr_transfer.py on a planted table: val_loss = 0.1 + (log10 lr − log10 lr*)² + noise,
    with lr* = 0.01·(16/width) under SP and 0.01 under μP: exponents −1 and 0 within their intervals."""
    import numpy as np
    import pandas as pd

    from analysis.table import COLUMNS

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from lr_transfer import lr_stars, width_exponent

    rng = np.random.default_rng(0)
    rows = []
    for param, slope in (("sp", -1.0), ("mup", 0.0)):
        for width in (4, 8, 16, 32, 64):
            best = np.log10(0.01) + slope * np.log10(width / 16)
            for seed in range(4):
                offset = rng.normal(0, 0.02)
                for x in np.arange(-4.0, 0.01, 0.25):
                    rows.append(
                        {
                            **{c: np.nan for c in COLUMNS},
                            "width": width,
                            "lr": 10**x,
                            "seed": seed,
                            "status": "completed",
                            "config.model.param": param,
                            "val_loss": 0.1 + (x - best) ** 2 + offset + rng.normal(0, 0.01),
                        }
                    )
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    stars = lr_stars(str(tmp_path / "t.csv"), "val_loss")
    covered = [r["lo"] <= 0.01 * (16 / r["width"] if r["param"] == "sp" else 1) <= r["hi"] for r in stars]
    assert all(r["status"] == "ok" for r in stars) and sum(covered) >= 8  # 95% intervals: 9.5 of 10 expected
    for param, slope in (("sp", -1.0), ("mup", 0.0)):
        e, lo, hi, n = width_exponent([r for r in stars if r["param"] == param])
        assert n == 5 and lo <= slope <= hi and abs(e - slope) < 0.1


@pytest.mark.parametrize("without_multipliers", [False, True], ids=["checkpoint", "checkpoint-before-per-layer-lr"])
def test_a_mup_pack_with_diagnostics_resumes_bit_for_bit(without_multipliers):
    """Per-layer learning rates and the diagnostics survive a checkpoint; so does a checkpoint
    written before optimizer groups carried their multiplier (the model's own are used)."""
    from wdbench.train import Interrupted

    from helpers import _roundtrip

    runs = [
        tiny_run(
            "model.width=8",
            "model.param=mup",
            "model.base_width=4",
            "optim=adamw",
            "diagnostics=true",
            f"penalty.log10_coef={c}",
        )
        for c in ("-2", "-1")
    ]
    reference = Pack(runs)
    reference.fit()
    first = Pack(runs)
    first.interrupt = lambda: first.step == 7
    with pytest.raises(Interrupted):
        first.fit()
    saved = _roundtrip(first.state_dicts())
    if without_multipliers:
        for state in saved:
            for group in state["optimizer"]["param_groups"]:
                group.pop("lr_multiplier", None)  # the members may share one list
    resumed = Pack(runs)
    resumed.load_state_dicts(saved)
    resumed.fit()
    for k in range(2):
        assert resumed.members[k].history == reference.members[k].history
        assert "angular_update" in resumed.members[k].history[-1]
