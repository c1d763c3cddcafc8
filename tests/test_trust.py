"""Nothing the harness reads can run code (docs/trust.md): a planted checkpoint, CIFAR batch or
submitit record whose unpickling would create a marker file never creates it; the user gets one
line, and nothing is lost (submitit's records: tests/test_status.py)."""

import json
import pickle

import numpy as np
import torch

from helpers import TINY, results_under


class Payload:
    """Unpickling this opens (creates) ``path``: what a malicious file could do instead."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_planted_checkpoint_is_set_aside_and_the_run_retrained(cli, tmp_path):
    sweep = ["-m", "hydra/launcher=basic", *TINY, "optim.epochs=1", "seed=0", "name=t"]
    assert cli(*sweep)[0] == 0
    (path,) = results_under(tmp_path / "out")
    done = json.loads(path.read_text())
    path.write_text(json.dumps({**done, "status": "running"}))  # as if stopped, with a checkpoint to resume
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, path.parent / "checkpoint.pt")
    code, out, err = cli(*sweep)
    assert code == 0 and not marker.exists()
    assert json.loads(path.read_text())["status"] == "completed"  # retrained from scratch
    (kept,) = path.parent.glob("checkpoint.pt.damaged-*")
    log = (path.parent / "app.log").read_text()
    assert "checkpoint.pt: damaged (UnpicklingError: Weights only load failed" in log
    assert f"kept as {kept.name}, the run starts again from scratch" in log


def _cifar(root, batch_1):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8), b"labels": [j % 10 for j in range(40)]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch_1 if i == 1 else batch))
    return root


def test_a_planted_cifar_batch_is_one_line_exit_2_and_nothing_written(cli, tmp_path):
    marker = tmp_path / "pwned"
    for name, batch, reason in (
        (
            "payload",
            {b"data": Payload(marker), b"labels": []},
            "holds a io.open, which a CIFAR file does not; not loaded",
        ),
        (
            "shape",
            {b"data": np.zeros((40, 100), dtype=np.uint8), b"labels": [0] * 40},
            "b'data' must hold 3072 integer pixels per image",
        ),
        (
            "labels",
            {b"data": np.zeros((40, 3072), dtype=np.uint8), b"labels": [0] * 39},
            "b'labels' must be a list of 40 integer labels, one per image",
        ),
    ):
        root = _cifar(tmp_path / name, batch)
        code, out, err = cli("-m", *TINY, "data=cifar10", f"data.root={root}", "name=c")
        assert code == 2 and err.strip().splitlines() == [
            f"wdbench: error: data.root={root}: cannot read cifar-10-batches-py/data_batch_1: {reason}"
        ], name
        assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_real_cifar_layout_still_loads(fake_cifar):
    from wdbench.sources import read_images

    read_images.cache_clear()
    x, y = read_images("cifar10", str(fake_cifar))
    assert x.shape == (200, 3, 32, 32) and y.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    read_images.cache_clear()
