"""Datasets held in memory as tensors (on the GPU when there is one): digits (embedded, from
scikit-learn), CIFAR-10/100 from a local python-pickle directory (never downloaded), your own images
(a folder, or arrays in an .npz file: docs/data.md), a teacher task of any size (drawn from
data.seed), and the ridge regression problem whose optimal penalty is known in closed form (drawn
from the run seed)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from wdbench.config import DataConfig, RunConfig
from wdbench.sources import dataset_shape, read_labelled, train_size


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
    data = read_labelled(cfg)
    x = data.x.astype(np.float32, copy=False)  # a folder's pixels are uint8
    if data.y_val is None:
        x_tr, x_val, y_tr, y_val = train_test_split(
            x, data.y, test_size=cfg.val_fraction, stratify=data.y, random_state=cfg.split_seed
        )
    else:  # the hold-out an .npz file gives
        x_tr, y_tr, x_val, y_val = x, data.y, data.x_val, data.y_val
    if cfg.n_train is not None and cfg.n_train < len(y_tr):
        x_tr, _, y_tr, _ = train_test_split(
            x_tr, y_tr, train_size=cfg.n_train, stratify=y_tr, random_state=cfg.split_seed
        )
    assert len(y_tr) == train_size(cfg), "train_size() disagrees with the split"
    mean = x_tr.mean(axis=(0, 2, 3), keepdims=True)
    std = x_tr.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1  # a channel constant over the training set (your own data may have one) stays at 0

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy((a - mean) / std).to(device)
        if cfg.image_size and cfg.image_size != t.shape[-1]:
            t = F.interpolate(t, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False)
        return t.contiguous()

    return Dataset(
        to_tensor(x_tr),
        torch.from_numpy(y_tr).to(device),
        to_tensor(x_val),
        torch.from_numpy(y_val).to(device),
        n_classes=len(data.classes),
        augment=cfg.augment,
    )


def run_dataset(run: RunConfig, device: torch.device) -> Dataset:
    """A run's data: the split of ``load_dataset`` or the draw of ``teacher_dataset`` (the same for
    every seed), or for data=ridge a problem drawn from the run's own seed, with as many features as
    the model's width."""
    if run.data.name == "ridge":
        return ridge_dataset(run.data, run.model.width, run.seed, device)
    if run.data.name == "teacher":
        return teacher_dataset(run.data, device)
    return load_dataset(run.data, device)


TEACHER_HIDDEN = 32  # channels of the teacher's two convolutions
TEACHER_CALIBRATION = 4096  # images that centre and scale the teacher's logits, so its classes are about even


def teacher_dataset(cfg: DataConfig, device: torch.device) -> Dataset:
    """Smooth random images labelled by a random network, all drawn from ``cfg.seed``:
    - an image is white noise blurred by a Gaussian of 1 px, standardised;
    - the teacher is conv3x3 -> ReLU -> conv3x3 -> ReLU -> 2x2 average pool -> linear, He-initialised;
      its logits are centred and scaled per class on a calibration draw, and the label is their argmax;
    - a fraction ``label_noise`` of the *training* labels is replaced by a uniformly drawn class (the
      validation labels are the teacher's own, so validation measures the function learned).
    Each part has its own stream, so the training set of n images is the first n of one sequence
    (sets of growing n_train are nested) and the validation set does not move with n_train."""
    side, channels, classes = dataset_shape("teacher")
    side = cfg.image_size or side
    stream = {
        part: torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, k]).generate_state(1)[0]))
        for k, part in enumerate(("teacher", "calibration", "train", "val", "noise"))
    }
    teacher = _random_teacher(channels, classes, side, stream["teacher"])
    draw = functools.partial(_smooth_images, channels=channels, side=side)
    with torch.no_grad():
        calibration = teacher(draw(TEACHER_CALIBRATION, stream["calibration"]))
        centre, scale = calibration.mean(0), calibration.std(0)
        x_train, x_val = draw(cfg.n_train, stream["train"]), draw(cfg.n_val, stream["val"])
        y_train, y_val = (((teacher(x) - centre) / scale).argmax(1) for x in (x_train, x_val))
    noisy = torch.rand(cfg.n_train, generator=stream["noise"]) < cfg.label_noise
    y_train = torch.where(noisy, torch.randint(classes, (cfg.n_train,), generator=stream["noise"]), y_train)
    return Dataset(
        x_train.to(device),
        y_train.to(device),
        x_val.to(device),
        y_val.to(device),
        n_classes=classes,
        augment=cfg.augment,
    )


def _smooth_images(n: int, generator: torch.Generator, channels: int, side: int) -> torch.Tensor:
    """(n, channels, side, side) white noise blurred by a Gaussian of 1 px (reflecting borders),
    each image standardised to mean 0 and variance 1."""
    taps = torch.exp(-0.5 * torch.arange(-2, 3, dtype=torch.float32) ** 2)
    kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(channels, 1, 5, 5)
    noise = torch.randn(n, channels, side + 4, side + 4, generator=generator)
    x = F.conv2d(noise, kernel, groups=channels)
    return (x - x.mean((1, 2, 3), keepdim=True)) / x.std((1, 2, 3), keepdim=True)


def _random_teacher(channels: int, classes: int, side: int, generator: torch.Generator) -> nn.Module:
    pooled = 2 if side >= 2 else 1
    teacher = nn.Sequential(
        nn.Conv2d(channels, TEACHER_HIDDEN, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(TEACHER_HIDDEN, TEACHER_HIDDEN, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(pooled),
        nn.Flatten(),
        nn.Linear(TEACHER_HIDDEN * pooled**2, classes),
    )
    for p in teacher.parameters():
        fan_in = p[0].numel() if p.dim() > 1 else 1
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=generator) * (math.sqrt(2 / fan_in) if p.dim() > 1 else 0.1))
    return teacher.eval()


def ridge_dataset(cfg: DataConfig, features: int, seed: int, device: torch.device) -> Dataset:
    """x ~ N(0, I_d), y = x·β + σ·ε, β ~ N(0, r²/d·I), ε ~ N(0, 1): β, n_train training and n_val
    held-out samples drawn from ``seed``, so averaging runs over seeds averages over problems. The
    posterior mean of β is ridge, so the expected held-out squared error is least at
    coef* = d·σ²/(n_train·r²) for the loss mean((y − x·w)²) + coef·‖w‖² (docs/experiments.md, "The ridge check")."""
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
