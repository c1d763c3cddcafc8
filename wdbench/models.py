"""timm models whose one width knob is ``model.width``, and the linear map of the ridge check."""

from __future__ import annotations

import torch
from timm.models.mlp_mixer import MlpMixer
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from wdbench.config import LinearConfig, MixerConfig, ResNetConfig, ViTConfig


def build_model(cfg, in_chans: int, n_classes: int, image_size: int) -> nn.Module:
    if isinstance(cfg, ViTConfig):
        return VisionTransformer(
            img_size=image_size,
            patch_size=cfg.patch_size,
            in_chans=in_chans,
            num_classes=n_classes,
            embed_dim=cfg.width,
            depth=cfg.depth,
            num_heads=cfg.width // cfg.head_dim,
            mlp_ratio=cfg.mlp_ratio,
            global_pool="avg",
            class_token=False,
        )
    if isinstance(cfg, ResNetConfig):
        w = cfg.width
        # stem_width only takes effect with a deep stem (3x3 convs w/2, w/2 -> w).
        model = ResNet(
            BasicBlock,
            layers=(cfg.blocks,) * 4,
            channels=(w, 2 * w, 4 * w, 8 * w),
            stem_type="deep",
            stem_width=w // 2,
            in_chans=in_chans,
            num_classes=n_classes,
        )
        if cfg.small_input:
            # An 8-32 px input would be 1x1 by stage 3 after the stem's stride-2 conv and pool.
            model.maxpool = nn.Identity()
        return model
    if isinstance(cfg, MixerConfig):
        # The class, not the registry: registry entries reject embed_dim / patch_size overrides.
        return MlpMixer(
            num_classes=n_classes,
            img_size=image_size,
            in_chans=in_chans,
            patch_size=cfg.patch_size,
            num_blocks=cfg.depth,
            embed_dim=cfg.width,
            mlp_ratio=(cfg.tokens_mlp_ratio, cfg.channels_mlp_ratio),
        )
    if isinstance(cfg, LinearConfig):
        # data=ridge: width = d features, one output, no bias (the ridge estimator the closed form is about)
        return LinearMap(in_chans, n_classes)
    raise TypeError(f"model config {type(cfg).__name__}: unknown")


class LinearMap(nn.Linear):
    """A bias-free linear map of the flattened input, computed as (W·xᵀ)ᵀ: the same numbers as
    nn.Linear, but under ``vmap`` over a pack's stacked W the members fold into one matmul forward
    and backward, where F.linear's batching rule multiplies member by member (12x slower, d = 256)."""

    def __init__(self, features: int, outputs: int) -> None:
        super().__init__(features, outputs, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weight @ x.flatten(1).T).T


def unfused_attention(model: nn.Module) -> None:
    """Attention as plain matmuls + softmax: torch's fused kernel has no batching rule, so under
    ``vmap`` (a pack) it would run once per member and sample; the math is the same."""
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
