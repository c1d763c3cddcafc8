"""timm models whose one width knob is ``model.width``, and the linear map of the ridge check."""

from __future__ import annotations

import difflib
import traceback
from pathlib import Path

import timm
import torch
from timm.models.mlp_mixer import MlpMixer
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from wdbench.config import (
    ConfigError,
    LinearConfig,
    MixerConfig,
    ResNetConfig,
    TimmConfig,
    ViTConfig,
    width_kwargs,
    width_rule,
)


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
    if isinstance(cfg, TimmConfig):
        return build_timm(cfg, in_chans, n_classes, image_size)
    if isinstance(cfg, LinearConfig):
        # data=ridge: width = d features, one output, no bias (the ridge estimator the closed form is about)
        return LinearMap(in_chans, n_classes)
    raise TypeError(f"model config {type(cfg).__name__}: unknown")


_TAKES_IMG_SIZE: dict[str, bool] = {}  # per architecture, once its constructor has said
BUILD_ERRORS = (TypeError, ValueError, AssertionError, IndexError, KeyError, RuntimeError)  # a constructor's refusal


def build_timm(cfg: TimmConfig, in_chans: int, n_classes: int, image_size: int) -> nn.Module:
    """``timm.create_model(model.arch)`` with its rule's arguments at model.width, model.kwargs, and the
    data's channels, classes and (where the architecture takes it) image size. Never pretrained: nothing
    is read or downloaded. An architecture or argument timm refuses is one ConfigError line."""
    if not timm.is_model(cfg.arch):
        close = difflib.get_close_matches(cfg.arch, timm.list_models(), n=3) or ["convnext_atto", "resnet18"]
        raise ConfigError(f"model.arch={cfg.arch}: not a timm architecture; e.g. {', '.join(close)}")
    kwargs = {**cfg.kwargs, **width_kwargs(cfg), "in_chans": in_chans, "num_classes": n_classes}
    try:
        if _TAKES_IMG_SIZE.get(cfg.arch, True):
            try:
                return timm.create_model(cfg.arch, pretrained=False, img_size=image_size, **kwargs)
            except TypeError as err:
                if _refused_argument(err) != "img_size":
                    raise
                _TAKES_IMG_SIZE[cfg.arch] = False  # a CNN, say: any input size passes
        return timm.create_model(cfg.arch, pretrained=False, **kwargs)
    except BUILD_ERRORS as err:
        raise _build_error(cfg, err) from None


def _refused_argument(err: Exception) -> "str | None":
    """The keyword a constructor refused (unknown, or also set by the timm function itself), if that is the error."""
    if isinstance(err, TypeError) and "keyword argument '" in str(err):
        return str(err).split("keyword argument '")[1].split("'")[0]
    return None


def _build_error(cfg: TimmConfig, err: Exception) -> ConfigError:
    rule = f"model.rules.{width_rule(cfg.arch, cfg.rules)}"
    argument = _refused_argument(err)
    where = f"{rule}.{argument}" if argument in width_kwargs(cfg) else f"model.kwargs.{argument}"
    if argument and "multiple values" in str(err):
        return ConfigError(
            f"{where}: timm's {cfg.arch} sets {argument} itself, so model.arch={cfg.arch} cannot be widened "
            "through it; choose an architecture whose timm function leaves it free (docs/models.md)"
        )
    if argument:
        return ConfigError(f"{where}: model.arch={cfg.arch} takes no constructor argument {argument!r} ({err})")
    given = ", ".join(f"{k}={v}" for k, v in {**width_kwargs(cfg), **cfg.kwargs}.items())
    return ConfigError(f"model.arch={cfg.arch}: timm cannot build it with {given}: {describe_error(err)}")


def describe_error(err: Exception) -> str:
    """An exception in one line; a bare assert by where it failed and its source line."""
    text = " ".join(str(err).split())
    if text:
        return f"{type(err).__name__}: {text}"
    frame = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__} at {Path(frame.filename).name}:{frame.lineno} ({frame.line})"


def stochastic_layers(model: nn.Module) -> list[str]:
    """The modules that draw random numbers in training: dropout, drop path or drop block with a rate
    above 0 (as a layer, or as a rate a forward passes to F.dropout, like timm's EfficientNet head)."""

    def draws(module: nn.Module) -> bool:
        if isinstance(module, nn.modules.dropout._DropoutNd):
            return module.p > 0
        rates = (getattr(module, key, None) for key in ("drop_prob", "drop_rate", "drop_path_rate"))
        return any(isinstance(rate, (int, float)) and rate > 0 for rate in rates)

    return [name or type(model).__name__ for name, module in model.named_modules() if draws(module)]


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
