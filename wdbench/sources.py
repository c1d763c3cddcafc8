"""The datasets wdbench reads and what is known of them without torch: their shapes and sizes, and
their labelled training images as numpy arrays. Validating a config needs only this, so a sweep's
every run is checked (and a rerun with nothing to train answers) without importing torch. Your own
data (data=folder, data=arrays) are read by wdbench.owndata, and their sizes come from what is read."""

from __future__ import annotations

import functools
import math
import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from wdbench.config import DRAWN, OWN_DATA, ConfigError, DataConfig, RunConfig
from wdbench.owndata import Labelled, read_arrays, read_folder

# native side, channels, classes (teacher: the side it is drawn at unless data.image_size says otherwise)
_SHAPES = {"digits": (8, 1, 10), "cifar10": (32, 3, 10), "cifar100": (32, 3, 100), "teacher": (8, 3, 10)}
DIGITS_IMAGES = 1797  # scikit-learn's load_digits() (tests/test_data.py pins it): counted without importing it
_CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], b"fine_labels"),
}


def dataset_shape(name: str) -> tuple[int, int, int]:
    """(native side in pixels, channels, classes) of a dataset wdbench names, without reading it."""
    return _SHAPES[name]


def data_shape(cfg: DataConfig) -> tuple[int, int, int]:
    """(side in pixels as read, channels, classes) of a config's data; your own data are read for it."""
    if cfg.name in OWN_DATA:
        data = read_own(cfg)
        return data.x.shape[-1], data.x.shape[1], len(data.classes)
    return dataset_shape(cfg.name)


def input_shape(run: RunConfig) -> tuple[int, int, int]:
    """(side in pixels, channels, outputs) of what a run's model takes in and gives out; ridge's d
    features are d channels of one pixel, and its one output is the regression."""
    if run.data.name == "ridge":
        return 1, run.model.width, 1
    side, channels, classes = data_shape(run.data)
    return run.data.image_size or side, channels, classes


@functools.lru_cache(maxsize=None)
def read_images(name: str, root: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled training image of a dataset as float32 (N, C, H, W), and the labels (cached)."""
    return _read_digits() if name == "digits" else _read_cifar(name, root)


def read_own(cfg: DataConfig) -> Labelled:
    """Your own data as read (each cached per process): a folder at data.image_size in data.channels,
    or an .npz file's arrays."""
    if cfg.name == "folder":
        return read_folder(cfg.root, cfg.image_size, cfg.channels, cfg.cache_dir)
    return read_arrays(cfg.path)


def read_labelled(cfg: DataConfig) -> Labelled:
    """Any read dataset's images, labels and classes (your own data: with a given hold-out, if any)."""
    if cfg.name in OWN_DATA:
        return read_own(cfg)
    x, y = read_images(cfg.name, cfg.root)
    return Labelled(x, y, tuple(str(c) for c in range(_SHAPES[cfg.name][2])))


def data_fingerprint(cfg: DataConfig) -> Optional[str]:
    """What identifies your own data (a hash of what was read); None for the datasets wdbench names."""
    return read_own(cfg).fingerprint if cfg.name in OWN_DATA else None


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(training, validation) set sizes the config yields (train_test_split's rounding), for
    validation. Every stratified split (hold-out, subsample) must leave at least one image per class
    on each side."""
    if cfg.name in DRAWN:  # drawn, not split
        return cfg.n_train, cfg.n_val
    if cfg.name in OWN_DATA:
        return _own_split_sizes(cfg, read_own(cfg))
    # CIFAR's files are read: a missing or damaged one is a config error before any run starts
    n_total = DIGITS_IMAGES if cfg.name == "digits" else len(read_images(cfg.name, cfg.root)[1])
    n_classes = _SHAPES[cfg.name][2]
    n_val = _held_out(cfg, n_total, n_classes)
    return _subsample_size(cfg, n_total - n_val, n_classes), n_val


def _held_out(cfg: DataConfig, n_total: int, n_classes: int) -> int:
    n_val = math.ceil(cfg.val_fraction * n_total)
    if not n_classes <= n_val <= n_total - n_classes:
        raise ConfigError(
            f"data.val_fraction={cfg.val_fraction}: holds out {n_val} of {n_total} images; each side "
            f"of the split needs at least one per class ({n_classes})"
        )
    return n_val


def _subsample_size(cfg: DataConfig, available: int, n_classes: int) -> int:
    if cfg.n_train is None or cfg.n_train == available:
        return available
    if not n_classes <= cfg.n_train <= available - n_classes:
        raise ConfigError(
            f"data.n_train={cfg.n_train}: must be in [{n_classes}, {available - n_classes}], {available} (all) or null"
        )
    return cfg.n_train


def _own_split_sizes(cfg: DataConfig, data: Labelled) -> tuple[int, int]:
    """As for the other datasets, and since your classes may be small: scikit-learn's stratified split
    needs at least 2 images of each class in what it splits (all, then the training side to subsample)."""
    n_classes = len(data.classes)
    if data.y_val is None:
        where = f"data.root={cfg.root}" if cfg.name == "folder" else f"data.path={cfg.path}"
        _at_least_two(data.y, data.classes, f"{where}: class {{}} has {{}} image; each class needs at least 2")
        n_val = _held_out(cfg, len(data.y), n_classes)
        available = len(data.y) - n_val
    else:  # the file gives the hold-out
        n_val, available = len(data.y_val), len(data.y)
    n_train = _subsample_size(cfg, available, n_classes)
    if n_train < available:  # only a subsample needs the split itself (and scikit-learn's import)
        y_train = data.y if data.y_val is not None else _training_labels(cfg, data.y)
        _at_least_two(
            y_train,
            data.classes,
            f"data.n_train={cfg.n_train}: class {{}} keeps {{}} training image(s) after the hold-out; a stratified "
            f"subsample needs at least 2 of each class; allowed: {available} (all) or null",
        )
    return n_train, n_val


def _training_labels(cfg: DataConfig, y: np.ndarray) -> np.ndarray:
    """The labels of the training side of wdbench.data.load_dataset's hold-out."""
    from sklearn.model_selection import train_test_split

    return train_test_split(y, test_size=cfg.val_fraction, stratify=y, random_state=cfg.split_seed)[0]


def _at_least_two(y: np.ndarray, classes: tuple, message: str) -> None:
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < 2:
        raise ConfigError(message.format(classes[int(counts.argmin())], int(counts.min())))


def train_size(cfg: DataConfig) -> int:
    return split_sizes(cfg)[0]


def _read_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32)[:, None], bunch.target.astype(np.int64)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the official CIFAR python files hold (dicts, lists, bytes, strings, numbers,
    numpy arrays): any other class is refused before it is built, so a planted file cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"holds a {module}.{name}, which a CIFAR file does not; not loaded")
        return super().find_class(module, name)


def _cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One batch file's images (N, 3, 32, 32) uint8 and labels; ValueError (one line) if it is not one."""
    with open(path, "rb") as fh:
        batch = _CifarUnpickler(fh, encoding="bytes").load()
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(label_key) if isinstance(batch, dict) else None
    data = np.asarray(data) if isinstance(data, (list, np.ndarray)) else None
    if data is None or data.dtype.kind not in "iu" or data.size == 0 or data.size % (3 * 32 * 32):
        raise ValueError("b'data' must hold 3072 integer pixels per image")
    data = data.reshape(-1, 3 * 32 * 32)
    if not isinstance(labels, list) or len(labels) != len(data) or not all(isinstance(y, int) for y in labels):
        raise ValueError(f"{label_key!r} must be a list of {len(data)} integer labels, one per image")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


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
            x, y = _cifar_batch(base / f, label_key)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
            raise ConfigError(
                f"data.root={root}: cannot read {(base / f).relative_to(root)}: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
            ) from None
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)  # 0-255: standardising sets the scale
