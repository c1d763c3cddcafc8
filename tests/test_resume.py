"""An interrupted run resumes to exactly the metrics of an uninterrupted one (CPU)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from wdbench.train import Interrupted, Pack

from helpers import TINY, _roundtrip, results_under, tiny_run


@pytest.mark.parametrize("stop_at", [3, 5, 8])  # mid-epoch, exactly at an epoch boundary, later
@pytest.mark.parametrize("overrides", [[], ["data.augment=true", "optim=adamw", "penalty.lam=1e-2"]])
def test_interrupt_and_resume_is_bit_for_bit(stop_at, overrides):
    reference = Pack([tiny_run(*overrides)])
    reference.fit()
    first = Pack([tiny_run(*overrides)])
    first.interrupt = lambda: first.step == stop_at
    with pytest.raises(Interrupted, match=f"^interrupted at step {stop_at}$"):
        first.fit()
    resumed = Pack([tiny_run(*overrides)])
    resumed.load_state_dicts(_roundtrip(first.state_dicts()))
    assert resumed.fit() == ["completed"]
    assert resumed.members[0].history == reference.members[0].history and resumed.step == reference.step
    for a, b in zip(resumed.members[0].model.state_dict().values(), reference.members[0].model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_sigterm_checkpoints_and_a_rerun_resumes_to_the_same_metrics(tmp_path):
    sweep = [
        sys.executable,
        "-m",
        "wdbench",
        "-m",
        "hydra/launcher=basic",
        *TINY,
        "optim.epochs=6",
        "model.width=8",
        "checkpoint_every_s=0",
        "name=r",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    paused = tmp_path / "paused"  # the run pauses after epoch 2 (checkpointed) until it is signalled
    proc = subprocess.Popen(
        [*sweep, f"out_dir={tmp_path / 'a'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={
            **env,
            "PYTHONPATH": str(Path(__file__).parent / "fault_injection"),
            "WDBENCH_PAUSE_AT_EPOCH": "2",
            "WDBENCH_PAUSED_FILE": str(paused),
        },
    )
    try:
        deadline = time.monotonic() + 300  # a hang guard only: the pause, not a duration, is what is awaited
        while not paused.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run never paused"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out
    (path,) = results_under(tmp_path / "a")
    interrupted = json.loads(path.read_text())
    assert interrupted["status"] == "running" and len(interrupted["preemptions"]) == 1
    assert interrupted["preemptions"][0]["epoch"] == 2 and len(interrupted["history"]) == 2
    assert (path.parent / "checkpoint.pt").is_file()

    subprocess.run([*sweep, f"out_dir={tmp_path / 'a'}"], env=env, check=True, capture_output=True)
    resumed = json.loads(path.read_text())
    assert resumed["status"] == "completed" and resumed["resumes"] == 1
    assert not (path.parent / "checkpoint.pt").exists()

    subprocess.run([*sweep, f"out_dir={tmp_path / 'b'}"], env=env, check=True, capture_output=True)
    (uninterrupted,) = results_under(tmp_path / "b")
    reference = json.loads(uninterrupted.read_text())
    assert resumed["metrics"] == reference["metrics"] and resumed["history"] == reference["history"]
    assert resumed["timing"]["steps"] == reference["timing"]["steps"]


def test_a_checkpoint_from_before_offsets_were_drawn_ahead_resumes_bit_for_bit():
    """Such a checkpoint stopped mid-epoch holds no offsets and its generator stands after the last
    step's draw: the steps left draw theirs from it then, as they always did; a pack may mix it
    with a member saved since."""
    from wdbench.data import crop_flip_offsets

    stop_at = 3  # within the first epoch (5 steps)

    def runs():
        return [tiny_run("data.augment=true", f"seed={seed}") for seed in (0, 1)]

    reference = Pack(runs())
    reference.fit()
    first = Pack(runs())
    first.interrupt = lambda: first.step == stop_at
    with pytest.raises(Interrupted):
        first.fit()
    states = _roundtrip(first.state_dicts())
    old = torch.Generator().manual_seed(first.members[0].run.seed)  # member 0 as it was saved before
    torch.randperm(first.n_train, generator=old)
    for _ in range(stop_at):
        crop_flip_offsets(first.batch_size, old)
    states[0]["rng"] = old.get_state()
    states[0]["partial_epoch"] = {k: v for k, v in states[0]["partial_epoch"].items() if k != "offsets"}
    resumed = Pack(runs())
    resumed.load_state_dicts(states)
    resumed.fit()
    assert [m.history for m in resumed.members] == [m.history for m in reference.members]
