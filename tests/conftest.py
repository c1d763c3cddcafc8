import os
import pickle
import sys

import numpy as np
import pytest
import torch

from wdbench.__main__ import main


@pytest.fixture(autouse=True)
def leaves_the_process_as_found():
    """Every test restores sys.argv, os.environ, the working directory and torch's default dtype and
    threads: a leak would change what later tests run."""

    def environ():  # set by pytest (the current test's name) and by torch for itself on first use
        return {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "TORCHINDUCTOR_CACHE_DIR")}

    def state():
        return list(sys.argv), environ(), os.getcwd(), torch.get_default_dtype(), torch.get_num_threads()

    before = state()
    yield
    assert state() == before, "a test left sys.argv, os.environ, the cwd or torch's dtype/threads changed"


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    """Run ``python -m wdbench ARGS`` in-process with outputs under tmp_path; (exit code, stdout, stderr).
    What the run changes in this process (sys.argv, the environment, torch's threads) is put back."""
    environ, threads = dict(os.environ), torch.get_num_threads()

    def call(*args):
        monkeypatch.setattr(sys, "argv", ["wdbench", *args, f"out_dir={tmp_path / 'out'}"])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield call
    os.environ.clear()
    os.environ.update(environ)
    torch.set_num_threads(threads)


@pytest.fixture
def fake_cifar(tmp_path):
    """A CIFAR-10 directory in the python-pickle layout, 5 batches of 40 images (4 per class)."""
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8), b"labels": [j % 10 for j in range(40)]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    return tmp_path / "cifar"
