"""Each model family's structure follows its config knobs, and the default split decays exactly the
weights of convolutions and linear maps (plus ViT's position embedding), by name."""

import pytest
import torch
from torch import nn

from wdbench.config import MixerConfig, ResNetConfig, ViTConfig
from wdbench.models import build_model
from wdbench.penalty import split_decayed


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
