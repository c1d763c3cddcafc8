"""Your own data (docs/data.md): a folder of images with one subdirectory per class (data=folder), or
arrays in an .npz file (data=arrays), read into numpy without torch. Nothing a file holds is run: an
.npz is read with allow_pickle=False, and Pillow may decode image formats only (FORMATS). A folder is
decoded once and cached as one .npz file, keyed by what shapes it, so later runs load it in
milliseconds. Bad input is one ConfigError line naming the file, and nothing is written."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import stat
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from wdbench.config import MAX_IMAGE_SIZE, ConfigError

log = logging.getLogger("wdbench")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
# The Pillow decoders a folder may use: image formats only, never one that hands a file to another
# program (EPS runs Ghostscript)
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F")  # a palette image (P) counts as colour
CACHE_VERSION = 1  # in every cache key: bump it when what a cache holds or how images are decoded changes
CACHE_PREFIX = ".wdbench-cache-"  # hidden: a class scan skips it
ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val")


@dataclass(frozen=True)
class Labelled:
    """A dataset as read: images, labels, the class names and what identifies the data."""

    x: np.ndarray  # (N, C, H, W) pixels: uint8 from a folder, float32 otherwise
    y: np.ndarray  # (N,) int64 labels in [0, len(classes))
    classes: tuple  # names: a folder's subdirectories; else "0", "1", ...
    fingerprint: Optional[str] = None  # folder, arrays: a hash of the files' bytes or of the arrays
    x_val: Optional[np.ndarray] = None  # arrays: the hold-out the file gives (else data.val_fraction is drawn)
    y_val: Optional[np.ndarray] = None


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _reason(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


# --- data=folder ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def read_folder(root: str, image_size: Optional[int], channels: Optional[int], cache_dir: Optional[str]) -> Labelled:
    """A folder's images as uint8 (N, C, side, side) and their labels: from a cache that matches its
    files and these options, else decoded and cached. Cached per process too: a folder is taken not
    to change while a process runs."""
    files = class_files(root)
    key = cache_key(files, image_size, channels)
    places = cache_paths(root, key, cache_dir)
    expected = (sum(len(entries) for entries in files.values()), tuple(files), image_size, channels)
    for path in places:
        cached = _read_cache(path, *expected)
        if cached is not None:
            return cached
    data = _decode(root, files, image_size, channels)
    _write_cache(data, places, root)
    return data


def class_files(root: str) -> dict:
    """Each class (a subdirectory, sorted by name) -> its image files as (path relative to root, size,
    modification time), sorted. Hidden entries and files of other suffixes are skipped."""
    try:
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as err:
        raise ConfigError(f"data.root={root}: cannot list it: {_reason(err)}") from None
    _need(
        len(classes) >= 2,
        f"data.root={root}: {f'one class ({classes[0]}/) only' if classes else 'no class subdirectories'}; "
        "data=folder needs a subdirectory of images for each of at least 2 classes",
    )
    files = {}
    for name in classes:
        found = sorted(_images_under(root, name))
        _need(bool(found), f"data.root={root}: class {name}/ holds no image; allowed: {' '.join(IMAGE_SUFFIXES)} files")
        _need(
            len(found) >= 2,
            f"data.root={root}: class {name}/ holds 1 image; allowed: at least 2 per class (the stratified hold-out "
            "puts one on each side)",
        )
        files[name] = found
    return files


def _images_under(root: str, name: str):
    """(relative path, size, modification time) of every image file under root/name, hidden ones skipped."""
    for folder, subfolders, names in os.walk(os.path.join(root, name)):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        for file in names:
            if file.startswith(".") or os.path.splitext(file)[1].lower() not in IMAGE_SUFFIXES:
                continue
            rel = f"{rel_folder}/{file}"
            try:
                st = os.stat(os.path.join(folder, file))
            except OSError as err:
                raise ConfigError(f"data.root={root}: cannot read {rel}: {_reason(err)}") from None
            if stat.S_ISREG(st.st_mode):
                yield rel, st.st_size, st.st_mtime_ns


def cache_key(files: dict, image_size: Optional[int], channels: Optional[int]) -> str:
    """What shapes a folder's cache: every file's name, size and modification time, and the options."""
    listing = [entry for entries in files.values() for entry in entries]
    text = json.dumps([CACHE_VERSION, image_size, channels, listing])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_paths(root: str, key: str, cache_dir: Optional[str]) -> list:
    """Where a folder's cache may be, in order: in the folder itself, else (not writable) in data.cache_dir,
    under a name that also says which folder."""
    paths = [Path(root) / f"{CACHE_PREFIX}{key}.npz"]
    if cache_dir:
        where = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:8]
        paths.append(Path(cache_dir) / f"folder-{where}-{key}.npz")
    return paths


def _decode(root: str, files: dict, image_size: Optional[int], channels: Optional[int]) -> Labelled:
    """Every image decoded once, converted to one mode and resized to one square side."""
    from PIL import Image

    base, items = Path(root), [(label, rel) for label, entries in enumerate(files.values()) for rel, _, _ in entries]
    headers = [_header(root, rel) for _, rel in items]
    gray = channels == 1 if channels is not None else all(mode in GRAY_MODES for mode, _ in headers)
    mode, side = ("L" if gray else "RGB"), image_size or _common_side(root, items, headers)
    x = np.empty((len(items), 1 if gray else 3, side, side), dtype=np.uint8)
    digest = hashlib.sha256()
    for i, (_, rel) in enumerate(items):
        try:
            raw = (base / rel).read_bytes()
            digest.update(f"{rel}\0{len(raw)}\0".encode())
            digest.update(raw)
            with Image.open(io.BytesIO(raw), formats=FORMATS) as image:
                image = image.convert(mode)
                if image.size != (side, side):
                    image = image.resize((side, side), Image.Resampling.BILINEAR)  # antialiased when it shrinks
                pixels = np.asarray(image)
        except Exception as err:  # a damaged file may raise anything from a decoder: name it, in one line
            raise ConfigError(_unreadable(root, rel, err)) from None
        x[i] = pixels[None] if gray else pixels.transpose(2, 0, 1)
    y = np.array([label for label, _ in items], dtype=np.int64)
    return Labelled(x, y, tuple(files), digest.hexdigest()[:16])


def _header(root: str, rel: str) -> tuple:
    """(mode, (width, height)) of an image, from its header."""
    from PIL import Image

    try:
        with Image.open(Path(root) / rel, formats=FORMATS) as image:
            return image.mode, image.size
    except Exception as err:  # as in _decode
        raise ConfigError(_unreadable(root, rel, err)) from None


def _unreadable(root: str, rel: str, err: BaseException) -> str:
    from PIL import UnidentifiedImageError

    reason = "not an image of an allowed format" if isinstance(err, UnidentifiedImageError) else _reason(err)
    return f"data.root={root}: cannot read {rel}: {reason}; allowed: {', '.join(FORMATS)} images"


def _common_side(root: str, items: list, headers: list) -> int:
    """The one square size every image has, when data.image_size does not give one."""
    sizes = {}
    for (_, rel), (_, size) in zip(items, headers):
        sizes.setdefault(size, rel)
    if len(sizes) > 1:
        (a, rel_a), (b, rel_b) = list(sizes.items())[:2]
        raise ConfigError(
            f"data.image_size=None: the images in data.root={root} differ in size ({rel_a} is {a[0]}x{a[1]}, "
            f"{rel_b} {b[0]}x{b[1]}); set data.image_size to resize them all to one square"
        )
    (width, height), rel = next(iter(sizes.items()))
    _need(
        width == height,
        f"data.image_size=None: the images in data.root={root} are {width}x{height}, not square; set data.image_size "
        "to resize them to one",
    )
    _need(
        width <= MAX_IMAGE_SIZE,
        f"data.image_size=None: the images in data.root={root} are {width}x{height}; set data.image_size "
        f"(at most {MAX_IMAGE_SIZE})",
    )
    return width


def _read_cache(
    path: Path, n_images: int, classes: tuple, image_size: Optional[int], channels: Optional[int]
) -> Optional[Labelled]:
    """A cache file's data, or None where there is none or it does not hold what its key says (then the
    images are decoded again and it is replaced). Read with allow_pickle=False: a planted file cannot
    run code."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as cache:
            x, y, names, fingerprint = cache["x"], cache["y"], cache["classes"], cache["fingerprint"]
        usable = (
            x.dtype == np.uint8
            and x.ndim == 4
            and x.shape[0] == n_images
            and x.shape[1] in ((channels,) if channels else (1, 3))
            and x.shape[2] == x.shape[3] == (image_size or x.shape[3])
            and y.dtype == np.int64
            and y.shape == (n_images,)
            and names.dtype.kind == "U"
            and tuple(names.tolist()) == classes
            and 0 <= y.min()
            and y.max() < len(classes)
            and fingerprint.dtype.kind == "U"
        )
        reason = "not what a cache holds"
    except Exception as err:  # damaged: any error of the zip or npy reader
        usable, reason = False, _reason(err)
    if usable:
        return Labelled(x, y, classes, str(fingerprint))
    log.warning(f"{path}: not a usable cache ({reason}); the images are decoded again")
    return None


def _write_cache(data: Labelled, places: list, root: str) -> Optional[Path]:
    """The data written to the first place that is writable, atomically (a temporary file renamed), so
    a reader sees a whole cache or none; None, with a warning, where no place is."""
    for path in places:
        temporary = path.with_name(f".wdbench-tmp-{uuid.uuid4().hex}.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "xb") as fh:
                np.savez(
                    fh, x=data.x, y=data.y, classes=np.array(data.classes, dtype=str), fingerprint=data.fingerprint
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, path)
        except OSError as err:
            with suppress(OSError):
                temporary.unlink()
            log.info(f"{path}: cannot write a cache there ({_reason(err)})")
            continue
        log.info(f"data.root={root}: {len(data.y)} images decoded, cached in {path}")
        return path
    log.warning(f"data.root={root}: not writable and no data.cache_dir that is: images not cached, decoded by each run")
    return None


# --- data=arrays -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def read_arrays(path: str) -> Labelled:
    """An .npz file's x_train, y_train and optional x_val, y_val, checked: images as float32
    (N, C, H, W), labels int64 in [0, K) with every class of y_train used."""
    arrays = _npz_arrays(path)
    x = _images(path, "x_train", arrays["x_train"])
    y = _labels(path, "y_train", arrays["y_train"], "x_train", len(x))
    classes = _classes(path, y)
    x_val = y_val = None
    if "x_val" in arrays:
        x_val = _images(path, "x_val", arrays["x_val"])
        _need(
            x_val.shape[1:] == x.shape[1:],
            f"data.path={path}: x_val's images are {x_val.shape[1:]} (C, H, W); allowed: x_train's, {x.shape[1:]}",
        )
        y_val = _labels(path, "y_val", arrays["y_val"], "x_val", len(x_val))
        _need(
            y_val.max() < len(classes),
            f"data.path={path}: y_val holds label {y_val.max()}; allowed: 0..{len(classes) - 1} (y_train's classes)",
        )
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(f"{key}\0{arrays[key].dtype.str}\0{arrays[key].shape}\0".encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return Labelled(x, y, classes, digest.hexdigest()[:16], x_val, y_val)


def _npz_arrays(path: str) -> dict:
    """The file's arrays by key; one line naming what is wrong with a file that is not such an .npz."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as err:
        raise ConfigError(f"data.path={path}: cannot read it: {_reason(err)}") from None
    _need(
        magic != b"\x93NUMPY",
        f"data.path={path}: one .npy array, not an .npz archive; allowed: np.savez(path, x_train=..., y_train=...)",
    )
    _need(
        magic[:2] == b"PK",
        f"data.path={path}: not an .npz archive (a zip of arrays, as np.savez writes); allowed: np.savez(path, "
        "x_train=..., y_train=...)",
    )
    try:
        with np.load(path, allow_pickle=False) as npz:
            present = [key for key in ARRAY_KEYS if key in npz.files]
            _need(
                {"x_train", "y_train"} <= set(present),
                f"data.path={path}: holds {', '.join(npz.files) or 'no arrays'}; allowed: x_train and y_train, and "
                "optionally x_val and y_val",
            )
            _need(
                ("x_val" in present) == ("y_val" in present),
                f"data.path={path}: holds {'x_val' if 'x_val' in present else 'y_val'} alone; allowed: x_val and "
                "y_val together, or neither",
            )
            return {key: _npz_array(path, npz, key) for key in present}
    except ConfigError:
        raise
    except Exception as err:  # not a zip, truncated, a bad CRC, a pickle: any error of numpy's readers
        raise ConfigError(f"data.path={path}: cannot read as an .npz archive: {_reason(err)}") from None


def _npz_array(path: str, npz, key: str) -> np.ndarray:
    try:
        value = npz[key]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ConfigError(
                f"data.path={path}: {key} is an array of Python objects (not read: loading it would unpickle); "
                "allowed: arrays of numbers"
            ) from None
        raise
    _need(  # numpy hands back a member that is not an .npy file as its raw bytes
        isinstance(value, np.ndarray),
        f"data.path={path}: {key} is not an .npy array; allowed: an archive as np.savez writes one",
    )
    return value


def _images(path: str, key: str, a: np.ndarray) -> np.ndarray:
    """Square images (N, H, W), (N, C, H, W) or (N, H, W, C) as float32 (N, C, H, W); a 4-D array is
    channels-first when its last two axes are equal, else channels-last when its middle two are."""
    _need(
        a.dtype.kind in "iuf",
        f"data.path={path}: {key} has dtype {a.dtype}; allowed: integer or floating-point pixels",
    )
    shapes = "allowed: square images (N, H, W), (N, C, H, W) or (N, H, W, C) with H = W"
    if a.ndim == 3 and a.shape[1] == a.shape[2]:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[2] == a.shape[3]:
        pass
    elif a.ndim == 4 and a.shape[1] == a.shape[2]:
        a = a.transpose(0, 3, 1, 2)
    else:
        raise ConfigError(f"data.path={path}: {key} has shape {a.shape}; {shapes}")
    _need(a.size > 0, f"data.path={path}: {key} has shape {a.shape}, no pixels; {shapes}, none of them 0")
    _need(
        a.shape[-1] <= MAX_IMAGE_SIZE,
        f"data.path={path}: {key}'s images are {a.shape[-1]} px; at most {MAX_IMAGE_SIZE}",
    )
    a = np.ascontiguousarray(a, dtype=np.float32)
    _need(bool(np.isfinite(a).all()), f"data.path={path}: {key} holds NaN or infinite pixels; allowed: finite numbers")
    return a


def _labels(path: str, key: str, a: np.ndarray, images: str, n: int) -> np.ndarray:
    _need(
        a.dtype.kind in "iu",
        f"data.path={path}: {key} has dtype {a.dtype}; allowed: integer class labels 0..K-1 (e.g. "
        f"{key}.astype(np.int64))",
    )
    _need(
        a.shape == (n,),
        f"data.path={path}: {key} has shape {a.shape}; allowed: one label per image of {images}, shape ({n},)",
    )
    _need(int(a.min()) >= 0, f"data.path={path}: {key} holds label {a.min()}; allowed: class labels 0..K-1")
    return a.astype(np.int64)


def _classes(path: str, y: np.ndarray) -> tuple:
    """The classes 0..K-1 of y_train: at least 2, each with an image."""
    used = np.unique(y)
    _need(len(used) >= 2, f"data.path={path}: y_train holds one class only ({used[0]}); allowed: at least 2 classes")
    missing = sorted(set(range(int(used[-1]) + 1)) - set(used.tolist()))
    _need(
        not missing,
        f"data.path={path}: y_train has no image of class {missing[0] if missing else ''} (its labels run "
        f"0..{used[-1]}); allowed: labels 0..K-1 with every class used",
    )
    return tuple(str(c) for c in range(len(used)))
