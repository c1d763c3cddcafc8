"""The L2 penalty λ·c·Σw² over the decayed parameters, its three normalisations (c) and three
applications, as exact pure math; checked against torch's optimizers in tests/test_penalty.py.
The conventions (what c, coef and each application are, and torch's weight_decay = 2·coef) are
stated once, in docs/running.md, "The penalty: exact conventions"."""

from __future__ import annotations

import fnmatch
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from wdbench.config import APPLIES, EXCLUDE_KINDS, NORMS, PenaltyConfig, configured_lam  # noqa: F401  (allowed values: with the config schema)
from wdbench.normalisation import convert_lam, norm_factor, torch_weight_decay  # noqa: F401  (the torch-free math)


class L2Penalty:
    """λ·c·Σw² over the decayed parameters, applied as a loss, a gradient or a multiplicative decay."""

    def __init__(
        self,
        lam: float,
        norm: str = "sum",
        apply: str = "coupled",
        n_decayed: Optional[int] = None,
        batch_size: Optional[int] = None,
        n_train: Optional[int] = None,
    ):
        if apply not in APPLIES:
            raise ValueError(f"penalty apply {apply!r}: unknown; allowed: {', '.join(APPLIES)}")
        if not lam >= 0 or lam == float("inf"):
            raise ValueError(f"penalty lam={lam}: must be finite and >= 0")
        self.lam, self.norm, self.apply = float(lam), norm, apply
        self.coef = self.lam * norm_factor(norm, n_decayed, batch_size, n_train)

    @classmethod
    def from_coef(cls, coef: float, norm: str = "sum", apply: str = "coupled", **sizes: Optional[int]) -> "L2Penalty":
        """The penalty whose coefficient on Σw² is exactly ``coef`` (λ = coef/c in ``norm``), so runs of
        one coef are bit-identical whichever normalisation names them."""
        penalty = cls(coef / norm_factor(norm, **sizes), norm, apply, **sizes)
        penalty.coef = float(coef)
        return penalty

    def __repr__(self) -> str:
        return f"L2Penalty(lam={self.lam:g}, norm={self.norm!r}, apply={self.apply!r}, coef={self.coef:g})"

    def loss(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """λ·c·Σw² as a differentiable scalar."""
        return self.coef * torch.stack([p.pow(2).sum() for p in params]).sum()

    def apply_(self, params: Sequence[torch.Tensor], lr: float, lr_max: Optional[float] = None) -> None:
        """For your own loop, between ``loss.backward()`` and ``optimizer.step()`` of an optimizer without
        weight decay: coupled adds 2·coef·w to each ``p.grad``; decoupled multiplies w by 1 − lr·2·coef;
        independent by 1 − (lr/lr_max)·2·coef. ``lr``: this step's learning rate; ``lr_max``: the
        schedule's peak (independent only). The packed trainer's own arithmetic (PackPenalty, K = 1)."""
        params = list(params)
        PackPenalty([self], params[0].device if params else "cpu").before_step(
            params, [p.grad for p in params], lr=lr, lr_multiplier=lr / (lr_max or lr) if lr else 0.0
        )


def decay_groups(
    model: nn.Module,
    lam: float,
    norm: str = "sum",
    exclude: Iterable[str] = ("bias", "norm"),
    batch_size: Optional[int] = None,
    n_train: Optional[int] = None,
) -> List[dict]:
    """Parameter groups for torch's own decay: ``torch.optim.SGD/Adam(decay_groups(...))`` is the
    coupled penalty λ·c·Σw² over the decayed parameters, ``torch.optim.AdamW(...)`` the decoupled one
    (weight_decay = 2·λ·c on the decayed group, 0 on biases and normalisation parameters by default)."""
    decayed, kept = split_decayed(model, exclude)
    n_decayed = sum(p.numel() for _, p in decayed)
    wd = torch_weight_decay(lam, norm, n_decayed=n_decayed, batch_size=batch_size, n_train=n_train)
    return [
        {"params": [p for _, p in decayed], "weight_decay": wd},
        {"params": [p for _, p in kept], "weight_decay": 0.0},
    ]


class PackPenalty:
    """The penalties of a pack of K runs, applied at once between ``backward()`` and
    ``optimizer.step()`` to parameters stacked along a leading member axis: member k's slice gets its
    own coef_k. Per element the arithmetic is one run's: ``addcmul`` by a float32 2·coef_k rounds as
    ``add(alpha=2·coef)``, and the factor 1 − lr·2·coef_k is formed in float64 before it is rounded
    to float32, as a Python scalar is; so a member decays exactly as it would alone.

    coupled: g += 2·coef·w; decoupled: w *= 1 − lr_t·m·2·coef (m: the layer's learning-rate
    multiplier, μP's); independent: w *= 1 − s_t·2·coef, whatever the layer's learning rate.
    """

    def __init__(self, penalties: Sequence[L2Penalty], device: torch.device | str = "cpu"):
        applies = {p.apply for p in penalties}
        if len(applies) != 1:
            raise ValueError(f"a pack shares penalty.apply; got {sorted(applies)}")
        self.apply = applies.pop()
        self.coefs = torch.tensor([p.coef for p in penalties], dtype=torch.float64, device=device)
        self.active = any(p.coef for p in penalties)  # a pack of λ = 0 runs does nothing
        self.twice = 2.0 * self.coefs

    @staticmethod
    def _per_member(values: torch.Tensor, params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """``values`` (K,) shaped to broadcast over each stacked tensor, in its dtype."""
        cast = {dtype: values.to(dtype) for dtype in {p.dtype for p in params}}
        return [cast[p.dtype].view(-1, *[1] * (p.dim() - 1)) for p in params]

    @torch.no_grad()
    def before_step(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[Optional[torch.Tensor]],
        lr: float,
        lr_multiplier: float,
        layer_lr_multipliers: Optional[Sequence[float]] = None,
    ) -> None:
        """Apply the penalty to stacked ``params`` (K, ...) and their ``grads`` (None: no gradient).
        ``layer_lr_multipliers``: each parameter's learning rate over ``lr`` (μP's per layer; None: 1):
        decoupled decay uses the parameter's own learning rate, independent decay does not."""
        if not self.active:
            return
        if self.apply == "coupled":
            pairs = [(g, p) for p, g in zip(params, grads) if g is not None]
            if pairs:
                torch._foreach_addcmul_(
                    [g for g, _ in pairs], [p for _, p in pairs], self._per_member(self.twice, [p for _, p in pairs])
                )
            return
        rate = lr if self.apply == "decoupled" else lr_multiplier
        layer = layer_lr_multipliers if self.apply == "decoupled" and layer_lr_multipliers else [1.0] * len(params)
        by_layer_lr: dict[float, list] = {}
        for param, multiplier in zip(params, layer):
            by_layer_lr.setdefault(multiplier, []).append(param)
        for multiplier, group in by_layer_lr.items():  # 1 - lr·m·2·coef, in float64 as before
            factors = 1.0 - self.coefs * (rate * multiplier * 2.0)
            torch._foreach_mul_(group, self._per_member(factors, group))


def _is_norm_layer(module: nn.Module) -> bool:
    return (
        isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm))
        or "norm" in type(module).__name__.lower()
    )


def split_decayed(
    model: nn.Module, exclude: Iterable[str] = ("bias", "norm")
) -> Tuple[List[Tuple[str, nn.Parameter]], List[Tuple[str, nn.Parameter]]]:
    """Split ``model.named_parameters()`` into (decayed, not decayed).

    ``exclude`` entries are ``bias`` (every ``*.bias``), ``norm`` (every parameter of a
    normalisation layer) or fnmatch patterns on parameter names (e.g. ``*pos_embed``).
    """
    exclude = list(exclude)
    norm_params = {id(p) for m in model.modules() if _is_norm_layer(m) for p in m.parameters(recurse=False)}
    decayed, kept = [], []
    for name, param in model.named_parameters():
        excluded = (
            ("bias" in exclude and name.rsplit(".", 1)[-1] == "bias")
            or ("norm" in exclude and id(param) in norm_params)
            or any(fnmatch.fnmatchcase(name, pat) for pat in exclude if pat not in EXCLUDE_KINDS)
        )
        (kept if excluded else decayed).append((name, param))
    return decayed, kept


def penalty_for(p: PenaltyConfig, n_decayed: int, batch_size: int, n_train: int) -> "L2Penalty":
    """A run's penalty from its config, λ resolved once: from lam or log10_lam
    (wdbench.config.configured_lam) or, for a coef-space run, λ = coef/c from the model's sizes."""
    sizes = {"n_decayed": n_decayed, "batch_size": batch_size, "n_train": n_train}
    if p.log10_coef is not None:
        return L2Penalty.from_coef(10.0**p.log10_coef, p.norm, p.apply, **sizes)
    return L2Penalty(configured_lam(p), p.norm, p.apply, **sizes)
