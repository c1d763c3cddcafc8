"""The datasets wdbench reads and what is known of them without torch: their shapes and sizes, and
their labelled training images as numpy arrays. Validating a config needs only this, so a sweep's
every run is checked (and a rerun with nothing to train answers) without importing torch."""
from __future__ import annotations

import functools
import math
import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from wdbench.config import DRAWN, ConfigError, DataConfig, RunConfig

# native side, channels, classes (teacher: the side it is drawn at unless data.image_size says otherwise)
_SHAPES = {"digits": (8, 1, 10), "cifar10": (32, 3, 10), "cifar100": (32, 3, 100), "teacher": (8, 3, 10)}
DIGITS_IMAGES = 1797  # scikit-learn's load_digits() (tests/test_data.py pins it): counted without importing it
_CIFAR_FILES = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], b"labels"),
                "cifar100": ("cifar-100-python", ["train"], b"fine_labels")}


def dataset_shape(name: str) -> tuple[int, int, int]:
    """(native side in pixels, channels, classes) of a dataset, without reading it."""
    return _SHAPES[name]


def native_image_size(name: str) -> int:
    return dataset_shape(name)[0]


def input_shape(run: RunConfig) -> tuple[int, int, int]:
    """(side in pixels, channels, outputs) of what a run's model takes in and gives out; ridge's d
    features are d channels of one pixel, and its one output is the regression."""
    if run.data.name == "ridge":
        return 1, run.model.width, 1
    side, channels, classes = dataset_shape(run.data.name)
    return run.data.image_size or side, channels, classes


@functools.lru_cache(maxsize=None)
def read_images(name: str, root: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled training image of a dataset as float32 (N, C, H, W), and the labels (cached)."""
    return _read_digits() if name == "digits" else _read_cifar(name, root)


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(training, validation) set sizes the config yields (train_test_split's rounding), for
    validation. Every stratified split (hold-out, subsample) must leave at least one image per class
    on each side."""
    if cfg.name in DRAWN:  # drawn, not split
        return cfg.n_train, cfg.n_val
    # CIFAR's files are read: a missing or damaged one is a config error before any run starts
    n_total = DIGITS_IMAGES if cfg.name == "digits" else len(read_images(cfg.name, cfg.root)[1])
    n_classes = _SHAPES[cfg.name][2]
    n_val = math.ceil(cfg.val_fraction * n_total)
    if not n_classes <= n_val <= n_total - n_classes:
        raise ConfigError(f"data.val_fraction={cfg.val_fraction}: holds out {n_val} of {n_total} images; each side "
                          f"of the split needs at least one per class ({n_classes})")
    available = n_total - n_val
    if cfg.n_train is None or cfg.n_train == available:
        return available, n_val
    if not n_classes <= cfg.n_train <= available - n_classes:
        raise ConfigError(f"data.n_train={cfg.n_train}: must be in [{n_classes}, {available - n_classes}], "
                          f"{available} (all) or null")
    return cfg.n_train, n_val


def train_size(cfg: DataConfig) -> int:
    return split_sizes(cfg)[0]


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


