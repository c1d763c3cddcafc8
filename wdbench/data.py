"""Datasets held in memory as tensors (on the GPU when there is one): digits (embedded, from
scikit-learn), CIFAR-10/100 from a local python-pickle directory (never downloaded), and the ridge
regression problem whose optimal penalty is known in closed form (drawn from the run seed)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from wdbench.config import DataConfig, RunConfig
from wdbench.sources import dataset_shape, read_images, train_size


@dataclass
class Dataset:
    x_train: torch.Tensor  # (N, C, H, W) float32, standardised with training statistics
    y_train: torch.Tensor  # (N,) int64
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int  # outputs: 1 for a regression
    augment: bool
    regression: bool = False  # targets are real numbers (float32) and the loss is the squared error

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]


def load_dataset(cfg: DataConfig, device: torch.device) -> Dataset:
    x, y = read_images(cfg.name, cfg.root)
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=cfg.val_fraction, stratify=y,
                                                random_state=cfg.split_seed)
    if cfg.n_train is not None and cfg.n_train < len(y_tr):
        x_tr, _, y_tr, _ = train_test_split(x_tr, y_tr, train_size=cfg.n_train, stratify=y_tr,
                                            random_state=cfg.split_seed)
    assert len(y_tr) == train_size(cfg), "train_size() disagrees with the split"
    mean = x_tr.mean(axis=(0, 2, 3), keepdims=True)
    std = x_tr.std(axis=(0, 2, 3), keepdims=True)

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy((a - mean) / std).to(device)
        if cfg.image_size and cfg.image_size != t.shape[-1]:
            t = F.interpolate(t, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False)
        return t.contiguous()

    return Dataset(to_tensor(x_tr), torch.from_numpy(y_tr).to(device), to_tensor(x_val),
                   torch.from_numpy(y_val).to(device), n_classes=dataset_shape(cfg.name)[2], augment=cfg.augment)


def run_dataset(run: RunConfig, device: torch.device) -> Dataset:
    """A run's data: the split of ``load_dataset`` (the same for every seed), or for data=ridge a
    problem drawn from the run's own seed, with as many features as the model's width."""
    if run.data.name == "ridge":
        return ridge_dataset(run.data, run.model.width, run.seed, device)
    return load_dataset(run.data, device)


def ridge_dataset(cfg: DataConfig, features: int, seed: int, device: torch.device) -> Dataset:
    """x ~ N(0, I_d), y = x·β + σ·ε, β ~ N(0, r²/d·I), ε ~ N(0, 1): β, n_train training and n_val
    held-out samples drawn from ``seed``, so averaging runs over seeds averages over problems. The
    posterior mean of β is ridge, so the expected held-out squared error is least at
    coef* = d·σ²/(n_train·r²) for the loss mean((y − x·w)²) + coef·‖w‖² (README, "The ridge check")."""
    generator = torch.Generator().manual_seed(seed)
    beta = torch.randn(features, generator=generator) * (cfg.signal / math.sqrt(features))

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, features, generator=generator)
        return x[:, :, None, None].to(device), (x @ beta + cfg.noise * torch.randn(n, generator=generator)).to(device)

    (x_train, y_train), (x_val, y_val) = draw(cfg.n_train), draw(cfg.n_val)
    return Dataset(x_train, y_train, x_val, y_val, n_classes=1, augment=False, regression=True)


def crop_flip_offsets(n: int, generator: torch.Generator, pad: int = 4) -> tuple[torch.Tensor, ...]:
    """Per sample: a random crop offset (rows, columns) into the image padded by ``pad``, and a flip."""
    return tuple(torch.randint(hi, (n,), generator=generator) for hi in (2 * pad + 1, 2 * pad + 1, 2))


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Crop each sample of x from its zero-padded image at (dy, dx) and flip it horizontally where
    ``flip`` is 1, vectorised; the offsets are on x's device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (n, w)
    cols = torch.where(flip[:, None].bool(), cols.flip(1), cols)[:, None, :]  # (n, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()
