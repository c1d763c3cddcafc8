import pickle

import numpy as np
import pytest
import torch

from wdbench.config import ConfigError, DataConfig
from wdbench.data import crop_flip, crop_flip_offsets, load_dataset, teacher_dataset
from wdbench.sources import DIGITS_IMAGES, train_size

CPU = torch.device("cpu")


def test_digits_split_is_stratified_standardised_and_fixed_by_its_own_seed():
    cfg = DataConfig()
    a, b = load_dataset(cfg, CPU), load_dataset(cfg, CPU)
    assert (len(a.y_train), len(a.y_val)) == (1437, 360) and train_size(cfg) == 1437
    assert a.x_train.shape == (1437, 1, 8, 8) and a.n_classes == 10
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert abs(a.x_train.mean().item()) < 1e-5 and abs(a.x_train.std().item() - 1) < 1e-3
    per_class = torch.bincount(torch.cat([a.y_train, a.y_val]))
    assert (torch.bincount(a.y_val) - 0.2 * per_class).abs().max() <= 1  # stratified
    other = load_dataset(DataConfig(split_seed=1), CPU)
    assert not torch.equal(a.y_val, other.y_val)


def test_digits_subsample_and_resize():
    data = load_dataset(DataConfig(n_train=200, image_size=16), CPU)
    assert data.x_train.shape == (200, 1, 16, 16) and data.image_size == 16
    assert train_size(DataConfig(n_train=200)) == 200
    with pytest.raises(ConfigError, match="data.n_train=5000"):
        train_size(DataConfig(n_train=5000))


@pytest.mark.parametrize("level", ["parent", "folder"])
def test_cifar_reads_the_pickle_layout_from_either_level(fake_cifar, level):
    root = fake_cifar if level == "parent" else fake_cifar / "cifar-10-batches-py"
    cfg = DataConfig(name="cifar10", root=str(root), val_fraction=0.1, augment=True)
    data = load_dataset(cfg, CPU)
    assert data.x_train.shape == (180, 3, 32, 32) and len(data.y_val) == 20 and data.augment
    assert train_size(cfg) == 180


def test_cifar100_and_missing_files(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    (folder / "train").write_bytes(
        pickle.dumps(
            {b"data": rng.integers(0, 256, (400, 3072), dtype=np.uint8), b"fine_labels": [j % 100 for j in range(400)]}
        )
    )
    data = load_dataset(DataConfig(name="cifar100", root=str(tmp_path), val_fraction=0.25), CPU)
    assert data.n_classes == 100 and len(data.y_train) == 300
    with pytest.raises(ConfigError, match="data.root=.*no CIFAR python-pickle files"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)), CPU)
    corrupt = tmp_path / "corrupt" / "cifar-100-python"
    corrupt.mkdir(parents=True)
    (corrupt / "train").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="data.root=.*cannot read cifar-100-python/train"):
        load_dataset(DataConfig(name="cifar100", root=str(corrupt.parent)), CPU)


@pytest.mark.parametrize("pad", [2, None])  # None: the default, 4 as CIFAR training uses
def test_crop_flip_matches_a_per_sample_loop(pad):
    x = torch.arange(8 * 3 * 5 * 5, dtype=torch.float32).reshape(8, 3, 5, 5)
    kw = {} if pad is None else {"pad": pad}
    out = crop_flip(x, *crop_flip_offsets(8, torch.Generator().manual_seed(0), **kw), **kw)
    pad = 4 if pad is None else pad
    g = torch.Generator().manual_seed(0)
    dy, dx, flip = (torch.randint(0, hi, (8,), generator=g) for hi in (2 * pad + 1, 2 * pad + 1, 2))
    assert len(set(flip.tolist())) == 2 and len(set(dy.tolist())) > 2 and len(set(dx.tolist())) > 2  # all kinds
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    for i in range(8):
        crop = padded[i, :, dy[i] : dy[i] + 5, dx[i] : dx[i] + 5]
        assert torch.equal(out[i], crop.flip(2) if flip[i] else crop)


def test_cifar_pixels_keep_their_label_channel_and_row_through_the_split(tmp_path):
    """Fake CIFAR whose raw pixel (c, r, col) is 2·label + (c+1)·r: after the split and the per-channel
    standardisation (an increasing affine map per channel), every image must still decode to its label,
    its channels to their own row slope, and be constant along each row — which a wrong layout breaks."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = [[(7 * i + 3 * b) % 10 for i in range(40)] for b in range(5)]
    rows = np.arange(32)[None, :, None]
    for b, batch_labels in enumerate(labels, start=1):
        pixels = np.stack(
            [np.broadcast_to(2 * y + (np.arange(3)[:, None, None] + 1) * rows, (3, 32, 32)) for y in batch_labels]
        ).astype(np.uint8)
        (folder / f"data_batch_{b}").write_bytes(
            pickle.dumps({b"data": pixels.reshape(40, 3072), b"labels": batch_labels})
        )
    data = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.25), CPU)
    assert data.x_train.shape == (150, 3, 32, 32) and data.x_val.shape == (50, 3, 32, 32)
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
        assert torch.allclose(x, x[..., :1].expand_as(x), atol=1e-5)  # constant along every row
        row_step = x[:, :, 1, 0] - x[:, :, 0, 0]  # a_c·(c+1), the same for every image
        assert torch.allclose(row_step, row_step[:1].expand_as(row_step), atol=1e-4)
        reference = (y == y[0]).logical_not().nonzero()[0, 0]  # an image of another label
        label_step = (x[:, :, 0, 0] - x[reference, :, 0, 0]) / (y - y[reference])[:, None]  # 2·a_c where defined
        ratio = row_step[0] / label_step[y != y[reference]]
        assert torch.allclose(ratio, torch.tensor([0.5, 1.0, 1.5]).expand_as(ratio), rtol=1e-3)
    assert sorted(torch.cat([data.y_train, data.y_val]).tolist()) == sorted(sum(labels, []))
    per_channel = data.x_train.transpose(0, 1).reshape(3, -1)  # standardised per channel, not over all
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-4)


def test_train_size_is_the_split_size_and_n_train_is_bounded_by_it():
    assert train_size(DataConfig(val_fraction=0.25)) == 1797 - 450
    assert train_size(DataConfig(val_fraction=0.2001)) == 1797 - 360  # the hold-out rounds up
    assert train_size(DataConfig(n_train=10)) == 10 and train_size(DataConfig(n_train=1437)) == 1437
    for bad in (9, 1428, 1438):  # fewer than one per class kept, or left over, or more than the split holds
        with pytest.raises(ConfigError, match=rf"data.n_train={bad}: must be in \[10, 1427\], 1437 \(all\) or null"):
            train_size(DataConfig(n_train=bad))
    assert train_size(DataConfig(n_train=1427)) == 1427
    with pytest.raises(ConfigError, match="data.val_fraction=0.005: holds out 9 of 1797 images"):
        train_size(DataConfig(val_fraction=0.005))
    assert train_size(DataConfig(val_fraction=0.0056)) == 1797 - 11


def test_subsample_is_stratified_and_resize_is_bilinear_of_the_standardised_images():
    full = load_dataset(DataConfig(), CPU)
    small = load_dataset(DataConfig(n_train=500), CPU)
    share = torch.bincount(full.y_train) / len(full.y_train)
    assert len(small.y_train) == 500 and (torch.bincount(small.y_train) - 500 * share).abs().max() <= 1  # stratified
    assert torch.equal(small.y_val, full.y_val)  # the hold-out does not move with n_train
    assert torch.equal(small.x_train, load_dataset(DataConfig(n_train=500), CPU).x_train)  # nor the subsample
    assert len(load_dataset(DataConfig(n_train=1437), CPU).y_train) == 1437  # all of the split is allowed
    assert abs(small.x_train.mean().item()) < 1e-5 and abs(small.x_train.std().item() - 1) < 1e-3
    resized = load_dataset(DataConfig(image_size=16), CPU)
    expected = torch.nn.functional.interpolate(full.x_val, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(resized.x_val, expected, atol=1e-6) and resized.x_val.is_contiguous()
    assert not load_dataset(DataConfig(augment=False), CPU).augment


def _python2_pickle(batch: dict) -> bytes:
    """A protocol-2 pickle as Python 2's cPickle wrote CIFAR: its keys Python 2 strs (opcode U), which
    Python 3 reads as bytes only with encoding="bytes"; values lists of small ints."""
    out = bytearray(b"\x80\x02}(")
    for key, values in batch.items():
        out += b"U" + bytes([len(key)]) + key + b"](" + b"".join(b"K" + bytes([v]) for v in values) + b"e"
    return bytes(out + b"u.")


def test_cifar_written_by_python_2_reads_as_uint8_pixels_and_int64_labels(tmp_path):
    from wdbench.sources import read_images as _read

    _read.cache_clear()  # read here, not from another test's cache (mutation testing maps tests by what they run)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        labels = [(i + b) % 10 for i in range(20)]
        pixels = [(7 * i + b) % 256 for i in range(20 * 3072)]
        (folder / f"data_batch_{b}").write_bytes(_python2_pickle({b"data": pixels, b"labels": labels}))
    x, y = _read("cifar10", str(tmp_path))
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (100, 3, 32, 32)
    assert x[0, 0, 0, :3].tolist() == [1.0, 8.0, 15.0] and x.max() == 255.0 and y[:3].tolist() == [1, 2, 3]
    data = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.2), CPU)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64


def test_digits_are_float32_images_with_int64_labels():
    from wdbench.sources import read_images as _read

    _read.cache_clear()  # read here, not from another test's cache (mutation testing maps tests by what they run)
    x, y = _read("digits", None)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (DIGITS_IMAGES, 1, 8, 8) and x.max() == 16.0
    data = load_dataset(DataConfig(), CPU)
    assert data.x_train.dtype == data.x_val.dtype == torch.float32 and data.y_val.dtype == torch.int64


def test_crop_flip_keeps_every_index_on_the_images_device():
    x = torch.empty(2, 3, 5, 5, device="meta")  # shapes only: an index made on the CPU would not mix with it
    out = crop_flip(x, *(o.to("meta") for o in crop_flip_offsets(2, torch.Generator().manual_seed(0))))
    assert out.device == x.device and out.shape == x.shape


def _teacher(**fields):
    return teacher_dataset(DataConfig(**{"name": "teacher", "n_train": 512, "n_val": 256, **fields}), CPU)


def test_teacher_data_are_drawn_from_data_seed_nested_in_n_train_and_validated_on_a_fixed_set():
    a, same, bigger, other = _teacher(), _teacher(), _teacher(n_train=2048), _teacher(seed=1)
    assert torch.equal(a.x_train, same.x_train) and torch.equal(a.y_train, same.y_train)
    assert torch.equal(bigger.x_train[:512], a.x_train) and torch.equal(bigger.y_train[:512], a.y_train)
    assert torch.equal(bigger.x_val, a.x_val) and torch.equal(bigger.y_val, a.y_val)
    assert not torch.equal(other.x_train, a.x_train) and not torch.equal(other.y_val, a.y_val)
    assert a.x_train.shape == (512, 3, 8, 8) and a.x_val.shape == (256, 3, 8, 8) and a.n_classes == 10
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    # each image standardised; neighbouring pixels correlated by the blur, distant ones not
    x = bigger.x_train
    assert x.mean((1, 2, 3)).abs().max() < 1e-5 and (x.std((1, 2, 3)) - 1).abs().max() < 1e-5
    near = torch.corrcoef(torch.stack([x[:, 0, 3, 3], x[:, 0, 3, 4]]))[0, 1]
    far = torch.corrcoef(torch.stack([x[:, 0, 1, 1], x[:, 0, 6, 6]]))[0, 1]
    assert near > 0.5 and abs(far) < 0.1


def test_teacher_classes_are_about_even_and_label_noise_touches_only_training_labels():
    clean, noisy = _teacher(n_train=8192, n_val=4096), _teacher(n_train=8192, n_val=4096, label_noise=0.3)
    share = torch.bincount(clean.y_val, minlength=10) / 4096
    assert share.min() > 0.05 and share.max() < 0.2  # centred and scaled logits: no class dominates
    assert torch.equal(clean.y_val, noisy.y_val) and torch.equal(clean.x_train, noisy.x_train)
    changed = (clean.y_train != noisy.y_train).float().mean().item()
    assert changed == pytest.approx(0.3 * 0.9, abs=0.02)  # a replaced label keeps its class 1 time in 10


def test_teacher_images_are_drawn_at_image_size():
    assert _teacher(image_size=16).x_train.shape == (512, 3, 16, 16)
