"""μP (Yang et al. 2022, "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer") for any timm model of this project, as the ``mup`` package (microsoft/mup
1.0.0) implements it, without its model surgery: which dimensions of a parameter are "infinite"
(grow with width) is read off models built on the meta device at base_width and 2·base_width, and
m = (dimension at this width) / (dimension at base_width) is its width multiplier.

    parameter kind       infinite dims         init            Adam lr      SGD lr
    fixed                none                  as built        η            η
    vector-like          one: fan-out (input    as built        η            η·m
                         weights, biases, norms,
                         position embeddings)
    hidden               fan-in and fan-out    as built (1/fan_in)  η/m_in   η·m_out/m_in
    output               fan-in only, of a     as built·√m,    η            η·m
                         linear map or conv     its input ·1/m
                         (the classifier; a
                         Mixer's token fc2)

The table is mup's: ``MuAdam`` divides matrix-like (two infinite dims) learning rates by their
width multiplier, ``MuSGD`` multiplies vector-like ones by it and divides matrix-like ones by
fan-in/fan-out multiplier ratio, and ``MuReadout`` scales its input by 1/m and its initialisation
by √m. Attention's 1/√d_head stays: d_head is fixed here (heads grow with width). At width =
base_width every multiplier is 1 and μP is SP. The shapes must tell: a parameter missing at one of
the three widths, a dimension that moves at model.width but not from base_width to twice that, or a
matrix-like one growing in other dimensions than 0 and 1, is one ConfigError (timm models of any
family are read the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from wdbench.config import ConfigError
from wdbench.models import build_model


@dataclass(frozen=True)
class Scaling:
    kind: str  # fixed, vector, hidden or output (the table above)
    fan_in_mult: float  # 1 where fan-in is finite
    fan_out_mult: float

    def lr_multiplier(self, optimizer: str) -> float:
        if self.kind == "hidden":
            return 1 / self.fan_in_mult if optimizer in ("adam", "adamw") else self.fan_out_mult / self.fan_in_mult
        if self.kind in ("vector", "output") and optimizer == "sgd":
            return max(self.fan_in_mult, self.fan_out_mult)  # the one infinite dimension's multiplier
        return 1.0


def scalings(model: nn.Module, base: nn.Module, doubled: nn.Module, what: str = "the model") -> dict[str, Scaling]:
    """Per parameter name: its μP kind and width multipliers; ``base`` and ``doubled`` are the same
    model at base_width and 2·base_width (on the meta device: shapes only). A parameter whose role
    cannot be read off them is one ConfigError line naming ``what``."""
    base_shapes = {n: p.shape for n, p in base.named_parameters()}
    doubled_shapes = {n: p.shape for n, p in doubled.named_parameters()}
    names = [n for n, _ in model.named_parameters()]
    unpaired = sorted((set(names) ^ set(base_shapes)) | (set(names) ^ set(doubled_shapes)))
    if unpaired:
        raise _unreadable(
            f"{what} has other parameters at model.width than at base_width or 2·base_width "
            f"(e.g. {unpaired[0]}), so they cannot be paired"
        )
    readouts = {  # a linear map's or convolution's weight: what its input can be scaled for
        f"{module_name}.weight".lstrip(".")
        for module_name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))
    }
    out = {}
    for name, param in model.named_parameters():
        base_shape, shape = base_shapes[name], param.shape
        infinite = [b != d for b, d in zip(base_shape, doubled_shapes[name])]
        _check_readable(what, name, base_shape, shape, infinite)
        mults = [dim / b for dim, b in zip(shape, base_shape)]  # 1 where the dim is finite
        fan_out, fan_in = (mults + [1.0, 1.0])[:2]
        if sum(infinite) >= 2:
            kind = "hidden"
        elif sum(infinite) == 1 and param.dim() >= 2 and infinite[1] and name in readouts:
            kind = "output"  # (a table indexed by position, e.g. Swin's relative position bias, is vector-like)
        else:
            kind = "vector" if any(infinite) else "fixed"
        out[name] = Scaling(kind, fan_in, fan_out)
    return out


def _check_readable(what: str, name: str, base_shape, shape, infinite: list[bool]) -> None:
    """A dimension that does not grow from base_width to 2·base_width must not differ at the run's width
    either, and a matrix-like parameter's growing dimensions must be its fan-out and fan-in (dims 0, 1)."""
    moved = [i for i, (b, w, grows) in enumerate(zip(base_shape, shape, infinite)) if b != w and not grows]
    if moved:
        raise _unreadable(
            f"{what}'s {name} has dimension {moved[0]} of {base_shape[moved[0]]} at base_width and 2·base_width "
            f"but {shape[moved[0]]} at model.width, so whether it grows with width cannot be read"
        )
    growing = [i for i, grows in enumerate(infinite) if grows]
    if len(growing) >= 2 and growing != [0, 1]:
        raise _unreadable(
            f"{what}'s {name} (shape {tuple(shape)}) grows in dimensions {growing}; μP reads a matrix-like "
            "parameter's fan-out and fan-in from dimensions 0 and 1"
        )


def _unreadable(reason: str) -> ConfigError:
    return ConfigError(
        f"model.param=mup: {reason}; μP reads each parameter's role off the model at "
        "model.base_width and twice that (docs/running.md, μP)"
    )


def apply_mup(model: nn.Module, scaling: dict[str, Scaling]) -> None:
    """μP's initialisation and output multiplier on a freshly built (SP-initialised) model: every
    output weight (and its bias) scaled by √m, and its layer's input by 1/m on every forward."""
    modules = dict(model.named_modules())
    for name, s in scaling.items():
        if s.kind != "output":
            continue
        owner = modules[name.rsplit(".", 1)[0]]
        m = s.fan_in_mult
        for param in owner.parameters(recurse=False):
            param.data.mul_(math.sqrt(m))
        owner.register_forward_pre_hook(lambda module, args, m=m: (args[0] / m, *args[1:]))


def model_scalings(cfg, model: nn.Module, in_chans: int, n_classes: int, image_size: int) -> dict[str, Scaling]:
    """``scalings`` of ``model`` (built from the model config ``cfg``) against its own kind at
    cfg.base_width and twice that."""
    with torch.device("meta"):
        base, doubled = (
            build_model(replace(cfg, width=w), in_chans, n_classes, image_size)
            for w in (cfg.base_width, 2 * cfg.base_width)
        )
    what = f"model.arch={cfg.arch}" if hasattr(cfg, "arch") else f"model={cfg.name}"
    return scalings(model, base, doubled, what)
