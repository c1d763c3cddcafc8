"""Optimizers (with no weight decay of their own: the penalty does that) and the lr schedule."""

from __future__ import annotations

import math

import torch

from wdbench.config import OptimConfig


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    # adam and adamw share the update; adamw differs only in penalty.apply=decoupled (conf/optim/adamw.yaml)
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """s_t = lr_t / lr_max: linear warmup from 1/warmup_steps, then constant or cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
