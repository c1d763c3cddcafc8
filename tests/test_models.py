"""Each model family's structure follows its config knobs, and the default split decays exactly the
weights of convolutions and linear maps (plus ViT's position embedding), by name."""

import pytest
import torch
from torch import nn

from wdbench.config import MixerConfig, ResNetConfig, TimmConfig, ViTConfig, width_kwargs, width_rule
from wdbench.data import run_dataset
from wdbench.models import build_model
from wdbench.penalty import split_decayed
from wdbench.train import Member, Pack  # imported here: its first import sets torch's environment variables

from helpers import TIMM_TOYS, tiny_run


def decayed_names(model, exclude=("bias", "norm")):
    decayed, kept = split_decayed(model, exclude)
    assert {n for n, _ in decayed} | {n for n, _ in kept} == {n for n, _ in model.named_parameters()}
    return {n for n, _ in decayed}


@pytest.mark.parametrize("small_input", [True, False])
def test_resnet_stages_stem_and_head(small_input):
    model = build_model(
        ResNetConfig(width=8, blocks=2, small_input=small_input), in_chans=3, n_classes=7, image_size=16
    )
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(stage) for stage in stages] == [2, 2, 2, 2]
    assert [stage[-1].conv2.out_channels for stage in stages] == [8, 16, 32, 64]
    stem = [m for m in model.conv1 if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in stem] == [(3, 4), (4, 4), (4, 8)]  # deep stem w/2 -> w
    assert isinstance(model.maxpool, nn.Identity) == small_input
    assert (model.fc.in_features, model.fc.out_features) == (64, 7)
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 7)
    convs = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert decayed_names(model) == convs and "fc.weight" in convs and len(convs) == 3 + 4 * 2 * 2 + 3 + 1


def test_vit_patches_depth_heads_mlp_and_pooling():
    model = build_model(
        ViTConfig(width=24, depth=3, head_dim=8, patch_size=4, mlp_ratio=3.0), in_chans=1, n_classes=5, image_size=16
    )
    assert model.patch_embed.proj.kernel_size == (4, 4) and model.patch_embed.proj.in_channels == 1
    assert len(model.blocks) == 3 and model.embed_dim == 24
    assert all(block.attn.num_heads == 3 and block.mlp.fc1.out_features == 72 for block in model.blocks)
    assert model.cls_token is None and model.global_pool == "avg" and model.pos_embed.shape == (1, 16, 24)
    assert model.head.out_features == 5 and model(torch.zeros(2, 1, 16, 16)).shape == (2, 5)
    per_block = {"attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight"}
    expected = {"pos_embed", "patch_embed.proj.weight", "head.weight"} | {
        f"blocks.{i}.{name}" for i in range(3) for name in per_block
    }
    assert decayed_names(model) == expected
    assert decayed_names(model, ("bias", "norm", "*pos_embed")) == expected - {"pos_embed"}


def test_mixer_patches_depth_and_both_mlp_widths():
    model = build_model(
        MixerConfig(width=16, depth=3, patch_size=4, tokens_mlp_ratio=0.5, channels_mlp_ratio=3.0),
        in_chans=3,
        n_classes=4,
        image_size=16,
    )
    assert model.stem.proj.kernel_size == (4, 4) and len(model.blocks) == 3
    assert all(b.mlp_tokens.fc1.out_features == 8 and b.mlp_channels.fc1.out_features == 48 for b in model.blocks)
    assert model.head.out_features == 4 and model(torch.zeros(2, 3, 16, 16)).shape == (2, 4)
    per_block = {"mlp_tokens.fc1.weight", "mlp_tokens.fc2.weight", "mlp_channels.fc1.weight", "mlp_channels.fc2.weight"}
    assert decayed_names(model) == {"stem.proj.weight", "head.weight"} | {
        f"blocks.{i}.{name}" for i in range(3) for name in per_block
    }


def test_what_the_split_excludes_is_exactly_what_it_is_told():
    model = build_model(ResNetConfig(width=4), in_chans=1, n_classes=3, image_size=8)
    everything = {n for n, _ in model.named_parameters()}
    biases = {n for n in everything if n.endswith(".bias")}
    norms = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) for n in (f"{n}.weight", f"{n}.bias")}
    assert decayed_names(model, []) == everything
    assert decayed_names(model, ["bias"]) == everything - biases
    assert decayed_names(model, ["norm"]) == everything - norms
    assert decayed_names(model, ["fc.*"]) == everything - {"fc.weight", "fc.bias"}


def test_a_layer_named_like_a_norm_is_a_norm_layer():
    class RMSNorm(nn.Module):  # not a torch norm class, but a norm by name (timm has several)
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    model = nn.Sequential(nn.Linear(3, 3), RMSNorm(), nn.LayerNorm(3), nn.GroupNorm(1, 3))
    assert decayed_names(model) == {"0.weight"}
    assert decayed_names(model, ["bias"]) == {"0.weight", "1.scale", "2.weight", "3.weight"}


def test_an_unknown_model_config_is_refused():
    with pytest.raises(TypeError, match="unknown"):
        build_model(object(), in_chans=1, n_classes=2, image_size=8)


# --- model=timm: any timm architecture, widened by its rule (conf/model/timm.yaml) ---------------------------


def timm_model(*overrides, in_chans=1, n_classes=10, side=8):
    return build_model(tiny_run(*overrides).model, in_chans=in_chans, n_classes=n_classes, image_size=side)


def test_each_timm_family_is_widened_by_its_rule_and_takes_the_datas_shape():
    convnext = {w: timm_model(*TIMM_TOYS["convnext"], f"model.width={w}") for w in (8, 12)}
    for w, model in convnext.items():  # dims: [1, 2, 4, 8] x width, the toy's depths and 1 px patches
        assert [stage.blocks[0].conv_dw.out_channels for stage in model.stages] == [w, 2 * w, 4 * w, 8 * w]
        assert [len(stage.blocks) for stage in model.stages] == [1, 1, 1, 1] and model.stem[0].kernel_size == (1, 1)
        assert model.stem[0].in_channels == 1 and model.head.fc.out_features == 10
    effnet = {w: timm_model(*TIMM_TOYS["efficientnet"], f"model.width={w}", in_chans=3) for w in (8, 16, 32)}
    # channel_multiplier = width/16 on its stem's 24 channels, which timm rounds up to a multiple of 8
    assert [m.conv_stem.out_channels for m in effnet.values()] == [16, 24, 48]
    assert [m.num_features for m in effnet.values()] == [128, 256, 512] and effnet[8].conv_stem.in_channels == 3
    swin = timm_model(*TIMM_TOYS["swin"], "model.width=64", side=16, n_classes=4)
    assert swin.patch_embed.img_size == (16, 16) and swin.patch_embed.proj.kernel_size == (2, 2)  # img_size passed
    assert [layer.blocks[0].attn.num_heads for layer in swin.layers] == [2, 4]  # heads of 32 dims
    assert swin.embed_dim == 64 and swin.num_features == 128 and swin.head.fc.out_features == 4
    for model, shape in ((convnext[8], (2, 1, 8, 8)), (effnet[8], (2, 3, 8, 8)), (swin, (2, 1, 16, 16))):
        assert model(torch.zeros(shape)).shape == (2, model.num_classes)


def test_a_timm_rule_is_the_longest_matching_prefix_and_gives_ints_where_whole():
    rules = {"conv": {"dims": [1, 2]}, "convnext": {"dims": [1, 2.5], "ls_init_value": 0.0625}, "vit": {"x": 1}}
    assert width_rule("convnext_atto", rules) == "convnext" and width_rule("conv_x", rules) == "conv"
    assert width_rule("resnet18", rules) is None
    cfg = TimmConfig(arch="convnext_atto", width=8, kwargs={"depths": [1, 1]}, rules=rules)
    assert width_kwargs(cfg) == {"dims": [8, 20], "ls_init_value": 0.5}
    assert width_kwargs(cfg, 16) == {"dims": [16, 40], "ls_init_value": 1}
    assert [type(v) for v in width_kwargs(cfg, 16)["dims"]] == [int, int]


def test_timm_models_are_built_and_trained_without_any_network_access(monkeypatch):
    """pretrained=False: no weights loaded (not even from a local cache), no hub, no socket opened."""
    import socket

    import timm.models._builder

    def refused(*args, **kwargs):
        raise AssertionError(f"a network access: {args}")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refused)
    monkeypatch.setattr(socket, "getaddrinfo", refused)
    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.setattr(timm.models._builder, "load_pretrained", refused)
    for overrides in TIMM_TOYS.values():
        pack = Pack([tiny_run(*overrides, "optim.epochs=1", "data.n_train=64")])
        assert pack.fit() == ["completed"]


def test_a_convnext_decays_its_convolution_and_linear_weights_and_layer_scale_and_n_decayed_counts_them():
    """Biases and LayerNorms are excluded; ConvNeXt's layer scale (gamma) is neither, so it is decayed
    unless a pattern excludes it; n_decayed is the elements of exactly what is decayed."""
    model = timm_model(*TIMM_TOYS["convnext"])
    weights = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    gammas = {f"stages.{i}.blocks.0.gamma" for i in range(4)}
    assert len(weights) == 1 + 3 + 4 * 3 + 1  # stem, 3 downsamples, per block dw conv + 2 MLP layers, head
    assert decayed_names(model) == weights | gammas
    assert decayed_names(model, ("bias", "norm", "*.gamma")) == weights
    norms = {n for n, _ in model.named_parameters() if "norm" in n or n.startswith(("stem.1", "head.norm"))}
    assert norms and not norms & decayed_names(model)
    run = tiny_run(*TIMM_TOYS["convnext"])
    member = Member(run, run_dataset(run, torch.device("cpu")), torch.device("cpu"))
    params = dict(model.named_parameters())
    assert member.n_decayed == sum(params[n].numel() for n in weights | gammas) < member.n_params


def test_a_bare_assert_in_a_constructor_is_told_by_where_it_failed(tmp_path):
    import importlib.util

    from wdbench.models import describe_error

    source = tmp_path / "timm_like.py"  # outside the tests: pytest would rewrite the assert with a message
    source.write_text("def constructor(channels):\n    assert channels % 8 == 0\n")
    spec = importlib.util.spec_from_file_location("timm_like", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(AssertionError) as err:
        module.constructor(12)
    assert describe_error(err.value) == "AssertionError at timm_like.py:2 (assert channels % 8 == 0)"
    assert describe_error(ValueError("two\n  lines")) == "ValueError: two lines"
