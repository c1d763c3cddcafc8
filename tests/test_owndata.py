"""Your own data (wdbench.owndata, docs/data.md): a folder of images, one subdirectory per class, and
arrays in an .npz file; the folder's cache; every bad input as one ConfigError line with nothing written."""

import json
import logging
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from wdbench import owndata
from wdbench.checks import checked_run_config
from wdbench.config import ConfigError, made_by, pack_key
from wdbench.data import load_dataset
from wdbench.sources import data_shape, read_own, split_sizes

CPU = torch.device("cpu")
COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250)]  # one solid colour per class


@pytest.fixture(autouse=True)
def fresh_reads():
    """Each test reads its folders and files anew (the readers cache per process)."""
    owndata.read_folder.cache_clear()
    owndata.read_arrays.cache_clear()
    yield
    owndata.read_folder.cache_clear()
    owndata.read_arrays.cache_clear()


def image(path, colour, mode="RGB", side=12, fmt="PNG", height=None):
    """A solid ``colour`` image of ``side`` px (``height`` tall), saved in ``mode`` and ``fmt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (side, height or side), colour).convert(mode).save(path, fmt)
    return path


def folder(root, per_class=4, names=("cat", "dog", "owl"), modes=("RGB",), **kw):
    """A folder of solid-colour images, class k in COLOURS[k], cycling through ``modes``."""
    for k, name in enumerate(names):
        for i in range(per_class):
            mode = modes[i % len(modes)]
            fmt, suffix = ("JPEG", "jpg") if mode in ("RGB", "L") and i % 2 else ("PNG", "png")
            image(root / name / f"{i}.{suffix}", COLOURS[k], mode, fmt=fmt, **kw)
    return root


def data(**fields):
    return owndata_config("folder", **fields)


def owndata_config(name, **fields):
    from wdbench.config import DataConfig

    return DataConfig(name=name, val_fraction=0.25, **fields)


def run_config(**data_fields):
    """A plain run config (as wdbench.checks takes one) of a tiny ResNet on your own data."""
    return {
        "model": {"name": "resnet", "width": 4},
        "data": {"val_fraction": 0.25, **data_fields},
        "optim": {"batch_size": 4, "epochs": 1},
        "penalty": {},
        "device": "cpu",
    }


def cache_files(root):
    return sorted(root.glob(f"{owndata.CACHE_PREFIX}*.npz"))


# --- data=folder ---------------------------------------------------------------------------------------


def test_a_folder_reads_sorted_classes_in_one_mode_at_one_size_and_splits_stratified(tmp_path):
    root = folder(tmp_path / "imgs", per_class=8, names=("owl", "cat", "dog"), modes=("RGB", "L", "RGBA", "P"))
    cfg = data(root=str(root), image_size=8)
    read = read_own(cfg)
    assert read.classes == ("cat", "dog", "owl") and read.x.shape == (24, 3, 8, 8) and read.x.dtype == np.uint8
    assert data_shape(cfg) == (8, 3, 3) and split_sizes(cfg) == (18, 6)
    for k in range(3):  # the colour survives every mode (L: gray; P and JPEG: within rounding), labels follow names
        rgb = read.x[(read.y == k) & (np.arange(24) % 4 != 1)].astype(float)
        colour = COLOURS[("owl", "cat", "dog").index(read.classes[k])]
        assert np.abs(rgb.mean((0, 2, 3)) - colour).max() < 12
    loaded = load_dataset(cfg, CPU)
    assert loaded.x_train.shape == (18, 3, 8, 8) and loaded.n_classes == 3 and loaded.x_train.dtype == torch.float32
    assert torch.bincount(loaded.y_val).tolist() == [2, 2, 2]  # stratified
    assert abs(loaded.x_train.mean().item()) < 1e-5
    other = load_dataset(data(root=str(root), image_size=8, split_seed=1), CPU)
    assert not torch.equal(other.x_val, loaded.x_val)


def test_grayscale_images_read_as_one_channel_unless_data_channels_says_otherwise(tmp_path):
    gray = folder(tmp_path / "gray", modes=("L", "LA"))
    assert read_own(data(root=str(gray))).x.shape == (12, 1, 12, 12)
    assert read_own(data(root=str(gray), channels=3)).x.shape == (12, 3, 12, 12)
    colour = folder(tmp_path / "colour", modes=("L", "P"))  # one palette image makes it colour
    assert read_own(data(root=str(colour))).x.shape == (12, 3, 12, 12)
    ones = read_own(data(root=str(colour), channels=1)).x
    assert ones.shape == (12, 1, 12, 12)


def test_a_folder_of_one_size_keeps_it_and_image_size_resizes_every_image(tmp_path):
    root = folder(tmp_path / "imgs")
    image(root / "cat" / "big.png", COLOURS[0], side=20)
    assert read_own(data(root=str(root), image_size=16)).x.shape == (13, 3, 16, 16)
    (root / "cat" / "big.png").unlink()
    assert read_own(data(root=str(root))).x.shape == (12, 3, 12, 12)


def test_the_second_load_reads_the_cache_and_decodes_nothing(tmp_path, monkeypatch):
    root = folder(tmp_path / "imgs", modes=("RGB", "L"))
    cfg = data(root=str(root), image_size=8)
    first = read_own(cfg)
    assert len(cache_files(root)) == 1
    owndata.read_folder.cache_clear()

    def refuse(*args, **kwargs):
        raise AssertionError("decoded an image")

    monkeypatch.setattr(Image, "open", refuse)
    second = read_own(cfg)
    assert np.array_equal(first.x, second.x) and np.array_equal(first.y, second.y)
    assert (second.classes, second.fingerprint) == (first.classes, first.fingerprint)
    assert torch.equal(load_dataset(cfg, CPU).x_val, load_dataset(cfg, CPU).x_val)


def test_the_cache_key_changes_with_image_size_channels_and_the_files(tmp_path):
    root = folder(tmp_path / "imgs")
    files = owndata.class_files(str(root))
    key = owndata.cache_key(files, 8, None)
    assert key == owndata.cache_key(owndata.class_files(str(root)), 8, None)
    assert len({key, *(owndata.cache_key(files, s, c) for s, c in ((9, None), (8, 1), (8, 3)))}) == 4
    image(root / "dog" / "new.png", COLOURS[1])
    assert owndata.cache_key(owndata.class_files(str(root)), 8, None) != key
    read_own(data(root=str(root), image_size=8))
    owndata.read_folder.cache_clear()
    assert len(read_own(data(root=str(root), image_size=8)).y) == 13 and len(cache_files(root)) == 1
    read_own(data(root=str(root), image_size=9))
    assert len(cache_files(root)) == 2  # one file per shape; nothing else is written beside the images
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(owndata.CACHE_PREFIX)) == [
        "cat",
        "dog",
        "owl",
    ]


def test_the_fingerprint_names_the_files_content_not_where_they_are_or_the_options(tmp_path):
    import shutil

    a = folder(tmp_path / "a")
    moved = tmp_path / "b"
    shutil.copytree(a, moved)  # elsewhere, the same files: the same fingerprint
    fingerprint = read_own(data(root=str(a))).fingerprint
    assert read_own(data(root=str(moved))).fingerprint == fingerprint
    assert read_own(data(root=str(a), image_size=8, channels=1)).fingerprint == fingerprint
    image(moved / "owl" / "0.png", COLOURS[0])
    owndata.read_folder.cache_clear()
    assert read_own(data(root=str(moved))).fingerprint != fingerprint


def test_validating_a_run_on_a_cached_folder_imports_neither_torch_nor_sklearn_nor_pillow(tmp_path):
    """A sweep's every run is validated before any starts: with the cache there, that costs milliseconds."""
    import subprocess
    import sys

    root = folder(tmp_path / "imgs")
    read_own(data(root=str(root)))  # the cache
    script = (
        "import sys\nfrom wdbench.checks import checked_run_config\n"
        f"checked_run_config({run_config(name='folder', root=str(root))!r})\n"
        "print(sorted(m for m in ('torch', 'timm', 'sklearn', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


def _unwritable(monkeypatch, root):
    """Writing inside ``root`` fails as on a read-only directory (tests may run as root, which chmod cannot stop)."""
    real = open

    def guarded(path, *args, **kwargs):
        if str(path).startswith(str(root)):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(owndata, "open", guarded, raising=False)


def test_an_unwritable_folder_is_cached_in_cache_dir_or_else_read_without_a_cache(tmp_path, monkeypatch, caplog):
    root = folder(tmp_path / "imgs")
    _unwritable(monkeypatch, root)
    with caplog.at_level(logging.WARNING, logger="wdbench"):
        plain = read_own(data(root=str(root)))
    assert not cache_files(root) and "not writable and no data.cache_dir that is" in caplog.text
    cache_dir = tmp_path / "out" / "cache"
    owndata.read_folder.cache_clear()
    cached = read_own(data(root=str(root), cache_dir=str(cache_dir)))
    assert np.array_equal(plain.x, cached.x) and not cache_files(root)
    (written,) = cache_dir.iterdir()
    assert written.name.startswith("folder-") and written.name.endswith(".npz")
    owndata.read_folder.cache_clear()
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded an image"))
    assert np.array_equal(read_own(data(root=str(root), cache_dir=str(cache_dir))).x, plain.x)


@pytest.mark.parametrize("content", ["garbage", "pickle", "wrong arrays"])
def test_a_damaged_or_planted_cache_is_never_trusted_and_is_replaced(tmp_path, caplog, content):
    root = folder(tmp_path / "imgs")
    good = read_own(data(root=str(root)))
    (path,) = cache_files(root)
    marker = tmp_path / "ran"
    if content == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif content == "pickle":  # unpickling it would create the marker
        path.write_bytes(pickle.dumps(_Planted(str(marker))))
    else:
        np.savez(path, x=np.zeros((2, 3, 4, 4), np.float64), y=np.zeros(2, np.int64), classes=["a"], fingerprint="f")
    owndata.read_folder.cache_clear()
    with caplog.at_level(logging.WARNING, logger="wdbench"):
        again = read_own(data(root=str(root)))
    assert "not a usable cache" in caplog.text and not marker.exists()
    assert np.array_equal(again.x, good.x) and again.fingerprint == good.fingerprint
    assert owndata._read_cache(path, 12, ("cat", "dog", "owl"), None, None) is not None  # replaced by a good one


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_folder(tmp_path, case):
    root = tmp_path / "imgs"
    if case == "none":
        root.mkdir()
        (root / "notes.txt").write_text("no classes here")
    elif case == "one class":
        folder(root, names=("cat",))
    else:
        folder(root)
    if case == "empty class":
        (root / "eel").mkdir()
        (root / "eel" / "readme.txt").write_text("not an image")
    if case == "garbage image":
        (root / "dog" / "9.png").write_text("<!DOCTYPE html>")
    if case == "truncated image":  # its header intact, its pixels cut off half way
        noise = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(noise).save(root / "dog" / "9.png")
        (root / "dog" / "9.png").write_bytes((root / "dog" / "9.png").read_bytes()[:250])
    if case == "eps":  # a format whose decoder would run Ghostscript: not allowed
        (root / "dog" / "9.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n")
    if case == "sizes differ":
        image(root / "dog" / "9.png", COLOURS[1], side=16)
    if case == "not square":
        for path in root.rglob("*.*"):
            image(path, COLOURS[0], side=12, height=10, fmt="PNG")
    if case == "one image":
        for path in sorted((root / "owl").iterdir())[1:]:
            path.unlink()
    return root


FOLDER_BAD = {
    "none": "no class subdirectories; data=folder needs a subdirectory of images for each of at least 2 classes",
    "one class": "one class (cat/) only; data=folder needs a subdirectory of images for each of at least 2 classes",
    "empty class": "class eel/ holds no image; allowed: .png .jpg .jpeg .bmp .gif .tif .tiff .webp .ppm .pgm .pbm "
    "files",
    "garbage image": "cannot read dog/9.png: not an image of an allowed format; allowed: PNG, JPEG, BMP, GIF, TIFF, "
    "WEBP, PPM images",
    "truncated image": "cannot read dog/9.png: image file is truncated",
    "eps": "cannot read dog/9.png: not an image of an allowed format; allowed: PNG, JPEG, BMP, GIF, TIFF, WEBP, PPM "
    "images",
    "sizes differ": "data.image_size=None: the images in data.root={root} differ in size (cat/0.png is 12x12, dog/9.png "
    "16x16); set data.image_size to resize them all to one square",
    "not square": "data.image_size=None: the images in data.root={root} are 12x10, not square; set data.image_size to "
    "resize them to one",
    "one image": "class owl/ holds 1 image; allowed: at least 2 per class (the stratified hold-out puts one on "
    "each side)",
}


@pytest.mark.parametrize("case", FOLDER_BAD)
def test_a_bad_folder_is_one_line_naming_the_file_and_nothing_is_written(tmp_path, case):
    root = _bad_folder(tmp_path, case)
    before = sorted(root.rglob("*"))
    with pytest.raises(ConfigError) as err:
        checked_run_config(run_config(name="folder", root=str(root), cache_dir=str(tmp_path / "cache")))
    message = str(err.value)
    assert len(message.splitlines()) == 1
    expected = FOLDER_BAD[case].format(root=root)
    assert message.startswith(expected if expected.startswith("data.") else f"data.root={root}: {expected}"), message
    assert sorted(root.rglob("*")) == before and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"channels": 2}, "data.channels=2: must be 1 (grayscale), 3 (RGB) or null (1 when every image is grayscale, "),
        ({"root": None}, "data.root: required for data=folder (a directory with one subdirectory of images per class)"),
        ({"root": "/no/such/dir"}, "data.root=/no/such/dir: directory not found"),
        ({"fingerprint": "0123"}, "data.fingerprint=0123: the data read are "),
        (
            {"n_train": 4, "val_fraction": 0.5},
            "data.n_train=4: class cat keeps 1 training image(s) after the hold-out; a stratified",
        ),
        ({"path": "x.npz"}, "data.path=x.npz: used by data=arrays only, not data=folder"),
    ],
)
def test_folder_options_are_checked(tmp_path, fields, message):
    root = folder(tmp_path / "imgs", per_class=2, names=("cat",))
    folder(root, per_class=6, names=("dog", "owl"))
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        checked_run_config(run_config(name="folder", **{"root": str(root), **fields}))


def test_channels_and_fingerprint_belong_to_your_own_data():
    with pytest.raises(ConfigError, match=r"^data.channels=1: used by data=folder only; data=digits has its own"):
        checked_run_config(run_config(channels=1))
    with pytest.raises(ConfigError, match=r"^data.fingerprint=ab: used by data=folder and data=arrays only"):
        checked_run_config(run_config(fingerprint="ab"))


# --- identity: the same run, another run --------------------------------------------------------------


def test_a_runs_identity_holds_its_datas_fingerprint_not_where_they_are(tmp_path):
    import shutil

    a = folder(tmp_path / "a")
    shutil.copytree(a, tmp_path / "copy")
    other = folder(tmp_path / "other", per_class=5)
    run_a = checked_run_config(run_config(name="folder", root=str(a)))
    recorded = {"config": {**run_config(name="folder", root=str(a)), "seed": 0}}
    recorded["config"]["data"] = {**recorded["config"]["data"], "fingerprint": run_a.data.fingerprint}
    assert made_by(recorded, run_a)
    assert not made_by(recorded, checked_run_config(run_config(name="folder", root=str(other))))
    a.rename(tmp_path / "moved")  # the recorded data.root is gone: a resumed sweep still knows its runs
    for place in ("moved", "copy"):
        assert made_by(recorded, checked_run_config(run_config(name="folder", root=str(tmp_path / place))))
    copy = str(tmp_path / "copy")
    pinned = checked_run_config(run_config(name="folder", root=copy, fingerprint=run_a.data.fingerprint))
    assert pinned.data.fingerprint == run_a.data.fingerprint
    # a pack reads one dataset: runs reading another place never share one, even with equal content
    run_copy = checked_run_config(run_config(name="folder", root=copy))
    assert pack_key(run_copy) != pack_key(checked_run_config(run_config(name="folder", root=str(tmp_path / "moved"))))
    assert pack_key(checked_run_config({**run_config(name="folder", root=copy), "seed": 1})) == pack_key(run_copy)


# --- data=arrays ---------------------------------------------------------------------------------------


def _images(n=24, c=3, side=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, c, side, side)).astype(np.uint8), np.arange(n) % 3


def test_arrays_in_every_layout_read_as_channels_first_float32(tmp_path):
    x, y = _images()
    read = {}
    for layout, array in {"nchw": x, "nhwc": x.transpose(0, 2, 3, 1)}.items():
        np.savez(tmp_path / f"{layout}.npz", x_train=array, y_train=y)
        read[layout] = read_own(owndata_config("arrays", path=str(tmp_path / f"{layout}.npz")))
    assert np.array_equal(read["nchw"].x, read["nhwc"].x) and read["nchw"].x.dtype == np.float32
    assert read["nchw"].x.shape == (24, 3, 6, 6) and read["nchw"].classes == ("0", "1", "2")
    np.savez_compressed(tmp_path / "gray.npz", x_train=x[:, 0].astype(np.float64), y_train=y.astype(np.uint8))
    cfg = owndata_config("arrays", path=str(tmp_path / "gray.npz"))
    assert data_shape(cfg) == (6, 1, 3) and split_sizes(cfg) == (18, 6)
    loaded = load_dataset(cfg, CPU)
    assert loaded.x_train.shape == (18, 1, 6, 6) and loaded.y_train.dtype == torch.int64
    assert load_dataset(owndata_config("arrays", path=cfg.path, image_size=12), CPU).x_val.shape == (6, 1, 12, 12)


def test_a_given_hold_out_is_the_validation_set_and_n_train_subsamples_the_rest(tmp_path):
    x, y = _images()
    x_val, y_val = _images(n=5, seed=1)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_val=x_val, y_val=y_val)
    cfg = owndata_config("arrays", path=str(tmp_path / "d.npz"))
    assert split_sizes(cfg) == (24, 5)
    loaded = load_dataset(cfg, CPU)
    assert loaded.y_val.tolist() == y_val.tolist() and loaded.y_train.tolist() == y.tolist()
    small = owndata_config("arrays", path=cfg.path, n_train=9)
    assert split_sizes(small) == (9, 5) and torch.bincount(load_dataset(small, CPU).y_train).tolist() == [3, 3, 3]


def test_a_channel_constant_over_the_training_set_is_standardised_to_zero_not_nan(tmp_path):
    x, y = _images()
    x[:, 1] = 7
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    loaded = load_dataset(owndata_config("arrays", path=str(tmp_path / "d.npz")), CPU)
    assert torch.equal(loaded.x_train[:, 1], torch.zeros_like(loaded.x_train[:, 1]))
    assert torch.isfinite(loaded.x_val).all() and loaded.x_train[:, 0].std() > 0.5


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _bad_arrays(tmp_path, case):
    x, y = _images()
    path = tmp_path / "d.npz"
    if case == "garbage":
        path.write_text("x,y\n1,2\n")
    elif case == "npy":
        np.save(tmp_path / "d.npy", x)
        (tmp_path / "d.npy").rename(path)
    elif case == "truncated":
        _npz(path, x_train=x, y_train=y)
        path.write_bytes(path.read_bytes()[:200])
    elif case == "pickled member":  # a zip whose member is a pickle, not an .npy: never unpickled
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x_train.npy", pickle.dumps(_Planted(str(tmp_path / "ran"))))
            z.writestr("y_train.npy", pickle.dumps(y))
    else:
        arrays = {
            "missing keys": {"x": x, "y": y},
            "x_val alone": {"x_train": x, "y_train": y, "x_val": x},
            "object images": {"x_train": np.array([x[0], None], dtype=object), "y_train": y[:2]},
            "string labels": {"x_train": x, "y_train": y.astype(str)},
            "float labels": {"x_train": x, "y_train": y + 0.5},
            "negative label": {"x_train": x, "y_train": y - 1},
            "one class": {"x_train": x, "y_train": np.zeros(24, int)},
            "unused class": {"x_train": x, "y_train": 2 * y},
            "labels out of range": {"x_train": x, "y_train": y, "x_val": x[:2], "y_val": np.array([0, 3])},
            "too few labels": {"x_train": x, "y_train": y[:20]},
            "mismatched val": {"x_train": x, "y_train": y, "x_val": x[:2, :1], "y_val": y[:2]},
            "not square": {"x_train": x[:, :, :5], "y_train": y},
            "nan": {"x_train": np.where(x == x.max(), np.nan, x), "y_train": y},
            "bool images": {"x_train": x > 0, "y_train": y},
            "no images": {"x_train": x[:0], "y_train": y[:0]},
        }[case]
        _npz(path, **arrays)
    return path


ARRAYS_BAD = {
    "garbage": "not an .npz archive (a zip of arrays, as np.savez writes); allowed: np.savez(path, x_train=..., "
    "y_train=...)",
    "npy": "one .npy array, not an .npz archive; allowed: np.savez(path, x_train=..., y_train=...)",
    "truncated": "cannot read as an .npz archive: ",
    "pickled member": "x_train is not an .npy array; allowed: an archive as np.savez writes one",
    "missing keys": "holds x, y; allowed: x_train and y_train, and optionally x_val and y_val",
    "x_val alone": "holds x_val alone; allowed: x_val and y_val together, or neither",
    "object images": "x_train is an array of Python objects (not read: loading it would unpickle); allowed: arrays of "
    "numbers",
    "string labels": "y_train has dtype <U21; allowed: integer class labels 0..K-1 (e.g. y_train.astype(np.int64))",
    "float labels": "y_train has dtype float64; allowed: integer class labels 0..K-1 (e.g. y_train.astype(np.int64))",
    "negative label": "y_train holds label -1; allowed: class labels 0..K-1",
    "one class": "y_train holds one class only (0); allowed: at least 2 classes",
    "unused class": "y_train has no image of class 1 (its labels run 0..4); allowed: labels 0..K-1 with every class "
    "used",
    "labels out of range": "y_val holds label 3; allowed: 0..2 (y_train's classes)",
    "too few labels": "y_train has shape (20,); allowed: one label per image of x_train, shape (24,)",
    "mismatched val": "x_val's images are (1, 6, 6) (C, H, W); allowed: x_train's, (3, 6, 6)",
    "not square": "x_train has shape (24, 3, 5, 6); allowed: square images (N, H, W), (N, C, H, W) or (N, H, W, C) "
    "with H = W",
    "nan": "x_train holds NaN or infinite pixels; allowed: finite numbers",
    "bool images": "x_train has dtype bool; allowed: integer or floating-point pixels",
    "no images": "x_train has shape (0, 3, 6, 6), no pixels; allowed: square images",
}


@pytest.mark.parametrize("case", ARRAYS_BAD)
def test_a_bad_npz_is_one_line_naming_the_file_and_field(tmp_path, case):
    path = _bad_arrays(tmp_path, case)
    with pytest.raises(ConfigError) as err:
        checked_run_config(run_config(name="arrays", path=str(path)))
    assert len(str(err.value).splitlines()) == 1
    assert str(err.value).startswith(f"data.path={path}: {ARRAYS_BAD[case]}"), str(err.value)
    assert not (tmp_path / "ran").exists()


def test_arrays_need_a_file():
    with pytest.raises(ConfigError, match=r"^data.path: required for data=arrays \(an .npz file of x_train, y_train"):
        checked_run_config(run_config(name="arrays"))
    with pytest.raises(ConfigError, match=r"^data.path=/no/such.npz: file not found$"):
        checked_run_config(run_config(name="arrays", path="/no/such.npz"))


# --- the command line ----------------------------------------------------------------------------------


def test_a_run_on_a_folder_writes_a_result_and_a_bad_folder_writes_nothing(cli, tmp_path):
    root = folder(tmp_path / "imgs", modes=("RGB", "P"))
    args = ["data=folder", f"data.root={root}", "model.width=4", "optim.epochs=1", "optim.batch_size=4"]
    code, _, err = cli(*args, "device=cpu", "progress=false", "data.val_fraction=0.25")
    assert code == 0, err
    (result,) = (tmp_path / "out").rglob("result.json")
    recorded = json.loads(result.read_text())
    assert recorded["status"] == "completed" and recorded["data"]["n_train"] == 9
    assert recorded["config"]["data"]["fingerprint"] == read_own(data(root=str(root))).fingerprint
    (root / "owl" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    owndata.read_folder.cache_clear()
    before = sorted((tmp_path / "out").rglob("*")) + sorted(root.rglob("*"))
    code, _, err = cli(*args, "device=cpu", "progress=false", "data.val_fraction=0.25")
    assert code == 2 and err.strip().splitlines() == [
        f"wdbench: error: data.root={root}: cannot read owl/0.png: Truncated File Read; allowed: PNG, JPEG, BMP, GIF, "
        "TIFF, WEBP, PPM images"
    ]
    assert sorted((tmp_path / "out").rglob("*")) + sorted(root.rglob("*")) == before


def test_a_packed_sweep_of_two_seeds_on_arrays(cli, tmp_path):
    x, y = _images()
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    code, _, err = cli(
        "-m",
        "data=arrays",
        f"data.path={tmp_path / 'd.npz'}",
        "model.width=4",
        "optim.epochs=1",
        "optim.batch_size=6",
        "seed=0,1",
        "device=cpu",
        "progress=false",
        "name=arrays",
        "hydra.launcher.n_jobs=1",
    )
    assert code == 0, err
    results = [
        json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "multirun" / "arrays").rglob("result.json"))
    ]
    assert [r["status"] for r in results] == ["completed"] * 2
    assert [r["provenance"]["pack"]["size"] for r in results] == [2, 2]
