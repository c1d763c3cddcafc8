"""Datasets held in memory as tensors (on the GPU when there is one): digits (embedded, from
scikit-learn), CIFAR-10/100 from a local python-pickle directory (never downloaded)."""
from __future__ import annotations

import functools
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from wdbench.config import ConfigError, DataConfig

# native side, channels, classes
_SHAPES = {"digits": (8, 1, 10), "cifar10": (32, 3, 10), "cifar100": (32, 3, 100)}
_CIFAR_FILES = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], b"labels"),
                "cifar100": ("cifar-100-python", ["train"], b"fine_labels")}


@dataclass
class Dataset:
    x_train: torch.Tensor  # (N, C, H, W) float32, standardised with training statistics
    y_train: torch.Tensor  # (N,) int64
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    augment: bool

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]


def dataset_shape(name: str) -> tuple[int, int, int]:
    """(native side in pixels, channels, classes) of a dataset, without reading it."""
    return _SHAPES[name]


def native_image_size(name: str) -> int:
    return dataset_shape(name)[0]


@functools.lru_cache(maxsize=None)
def _read(name: str, root: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled training image of a dataset as float32 (N, C, H, W), and the labels (cached)."""
    return _read_digits() if name == "digits" else _read_cifar(name, root)


def train_size(cfg: DataConfig) -> int:
    """Training-set size the config yields (train_test_split's rounding), for validation. Every
    stratified split (hold-out, subsample) must leave at least one image per class on each side."""
    n_total = len(_read(cfg.name, cfg.root)[1])
    n_classes = _SHAPES[cfg.name][2]
    n_val = math.ceil(cfg.val_fraction * n_total)
    if not n_classes <= n_val <= n_total - n_classes:
        raise ConfigError(f"data.val_fraction={cfg.val_fraction}: holds out {n_val} of {n_total} images; each side "
                          f"of the split needs at least one per class ({n_classes})")
    available = n_total - n_val
    if cfg.n_train is None or cfg.n_train == available:
        return available
    if not n_classes <= cfg.n_train <= available - n_classes:
        raise ConfigError(f"data.n_train={cfg.n_train}: must be in [{n_classes}, {available - n_classes}], "
                          f"{available} (all) or null")
    return cfg.n_train


def _read_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32)[:, None], bunch.target.astype(np.int64)


def _read_cifar(name: str, root: str):
    folder, files, label_key = _CIFAR_FILES[name]
    base = Path(root)
    if not (base / files[0]).is_file():
        base = base / folder
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise ConfigError(f"data.root={root}: no CIFAR python-pickle files ({folder}/{missing[0]} missing)")
    xs, ys = [], []
    for f in files:
        try:
            with open(base / f, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
        except (OSError, pickle.UnpicklingError, EOFError) as err:
            raise ConfigError(f"data.root={root}: cannot read {(base / f).relative_to(root)}: {err}") from None
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)  # 0-255: standardising sets the scale


def load_dataset(cfg: DataConfig, device: torch.device) -> Dataset:
    x, y = _read(cfg.name, cfg.root)
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
                   torch.from_numpy(y_val).to(device), n_classes=_SHAPES[cfg.name][2], augment=cfg.augment)


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
