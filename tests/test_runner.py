"""The runner on a device with little memory: checkpoint state on the host and dropped once
written, a failed pack's tensors freed, a pack that runs out of GPU memory split and trained on,
and a stop signal handed over to SLURM whatever saving the checkpoints did."""

import gc
import json
import os
import signal
import weakref
from dataclasses import asdict
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

import wdbench.runner as runner
from wdbench.claims import Claim
from wdbench.job import Job
from wdbench.train import Pack

from helpers import runs


def jobs_of(tmp_path, configs):
    jobs = []
    for k, run in enumerate(configs):
        run_dir = tmp_path / f"run{k}"
        jobs.append(
            Job(
                OmegaConf.create(asdict(run)),
                run,
                run_dir,
                [],
                f"run{k}",
                False,
                Claim.acquire(run_dir, queued=None),
                None,
                None,
            )
        )
    return jobs


def result(job) -> dict:
    return json.loads((job.run_dir / "result.json").read_text())


def test_checkpoint_state_is_dropped_once_written(tmp_path, monkeypatch):
    """Every tensor of a checkpoint's state is gone by the time the next epoch trains (it was kept
    on the device through the whole next epoch: +67-75% of a member's state that nothing counted)."""
    alive, real_states, real_epoch = [], Pack.state_dicts, Pack.train_epoch

    def states(self):
        made = real_states(self)
        alive.extend(weakref.ref(t) for s in made for t in s["model"].values())
        return made

    def epoch(self):
        gc.collect()
        assert not any(ref() is not None for ref in alive), "a checkpoint's state outlived its writing"
        return real_epoch(self)

    monkeypatch.setattr(Pack, "state_dicts", states)
    monkeypatch.setattr(Pack, "train_epoch", epoch)
    jobs = jobs_of(tmp_path, runs("checkpoint_every_s=0", "optim.epochs=3"))
    assert runner.train_jobs(jobs) == ["completed"] * 3 and alive
    recorded = result(jobs[0])  # what it ran on and how, for the analysis to tell devices apart
    assert recorded["device_types"] == ["cpu"] and recorded["provenance"]["device_type"] == "cpu"
    assert recorded["provenance"]["numerics"]["precision"] == "fp32" and "gpu" not in recorded["provenance"]


def test_a_failed_packs_tensors_are_freed_before_the_next(tmp_path, monkeypatch):
    packs = []

    def broken(self, **kwargs):
        packs.append(weakref.ref(self))
        raise RuntimeError("boom")

    monkeypatch.setattr(Pack, "each_epoch", broken)
    outcomes = runner.train_jobs(jobs_of(tmp_path, runs()))
    assert [str(o) for o in outcomes] == ["boom"] * 3  # kept, without the frames that held the pack
    gc.collect()
    assert packs and packs[0]() is None
    assert all(o.__traceback__ is None for o in outcomes)


def test_a_pack_that_runs_out_of_gpu_memory_is_split_and_trained_on(tmp_path, monkeypatch, caplog):
    real_epoch = Pack.train_epoch

    def small_gpu(self):
        if self.size > 2 and self.epoch == 1:  # after one epoch, checkpointed: the halves resume from it
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_epoch(self)

    monkeypatch.setattr(Pack, "train_epoch", small_gpu)
    configs = runs("checkpoint_every_s=0", "optim.epochs=3", members=[("-3", s) for s in range(4)])
    jobs = jobs_of(tmp_path, configs)
    with caplog.at_level("WARNING", logger="wdbench"):
        assert runner.train_jobs(jobs) == ["completed"] * 4
    assert (
        "a pack of 4 runs ran out of memory on cpu (CUDA out of memory. Tried to allocate 2.00 GiB); training "
        "it as two packs of about 2" in caplog.text
    )
    for job in jobs:
        assert result(job)["resumes"] == 1 and len(result(job)["history"]) == 3
    alone = jobs_of(tmp_path / "alone", configs[:1])
    monkeypatch.setattr(Pack, "train_epoch", lambda self: (_ for _ in ()).throw(torch.OutOfMemoryError("OOM")))
    (outcome,) = runner.train_jobs(alone)  # one run alone that does not fit: failed, saying so
    assert isinstance(outcome, torch.OutOfMemoryError) and result(alone[0])["status"] == "failed"


def test_a_stop_signal_is_handed_over_even_when_saving_fails(tmp_path, monkeypatch):
    """SLURM's requeue must not depend on the checkpoint being written (the previous one is resumed)."""
    real_epoch = Pack.train_epoch

    def signalled(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_epoch(self)

    monkeypatch.setattr(Pack, "train_epoch", signalled)
    monkeypatch.setattr(Pack, "state_dicts", lambda self: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(SystemExit) as stopped:
        runner.train_jobs(jobs_of(tmp_path, runs()))
    assert stopped.value.code == 128 + signal.SIGTERM


@pytest.mark.parametrize("write_s,expected", [(0.2, ["run0"]), (0.01, ["run0"] * 4)])
def test_checkpoints_take_at_most_a_twentieth_of_a_packs_time(tmp_path, monkeypatch, write_s, expected):
    """checkpoint_every_s=0 asks for one every epoch; a checkpoint that takes long (a wide pack on
    a shared filesystem) spaces the next ones out to 20 times its writing time. On a fake clock: each
    epoch takes 1 s, each checkpoint write_s, whatever the machine's load."""
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(runner, "time", SimpleNamespace(monotonic=lambda: clock.now))
    real_save, real_epoch, saves = runner.Record.save, Pack.train_epoch, []

    def timed_save(self, state):
        saves.append(self.job.run_dir.name)
        clock.now += write_s
        return real_save(self, state)

    def timed_epoch(self):
        clock.now += 1.0
        return real_epoch(self)

    monkeypatch.setattr(runner.Record, "save", timed_save)
    monkeypatch.setattr(Pack, "train_epoch", timed_epoch)
    jobs = jobs_of(tmp_path, runs("checkpoint_every_s=0", "optim.epochs=4", members=[("-3", 0)]))
    assert runner.train_jobs(jobs) == ["completed"]
    # 0.2 s: after epoch 1 only (epochs 2-4 take 3 s < 20 x 0.2 s); 0.01 s: after every epoch
    assert saves == expected


def test_a_run_resumed_on_another_kind_of_device_lists_both(tmp_path, monkeypatch):
    real_epoch, calls = Pack.train_epoch, []

    def signalled_once(self):
        calls.append(1)
        if len(calls) == 2:  # during the second epoch, after the first one's checkpoint
            os.kill(os.getpid(), signal.SIGTERM)
        return real_epoch(self)

    monkeypatch.setattr(Pack, "train_epoch", signalled_once)
    configs = runs("checkpoint_every_s=0", "optim.epochs=3", members=[("-3", 0)])
    with pytest.raises(SystemExit):
        runner.train_jobs(jobs_of(tmp_path, configs))
    stopped = json.loads((tmp_path / "run0" / "result.json").read_text())
    assert stopped["status"] == "running" and stopped["device_types"] == ["cpu"]
    stopped["provenance"]["device_type"], stopped["device_types"] = "cuda", ["cuda"]  # as if it began on a GPU
    (tmp_path / "run0" / "result.json").write_text(json.dumps(stopped))
    (job,) = jobs_of(tmp_path, configs)
    job.previous = stopped
    assert runner.train_jobs([job]) == ["completed"]
    assert result(job)["device_types"] == ["cuda", "cpu"] and result(job)["resumes"] == 1


def test_bf16_runs_train_alone_where_autocast_does_not_reach_a_packs_convolutions(tmp_path):
    """On a CPU, vmap's convolutions stay float32 under bf16 autocast: a packed member would not be
    the run it says it is."""
    from wdbench.numerics import autocast_reaches_vmap

    assert not autocast_reaches_vmap("cpu")
    jobs = jobs_of(tmp_path, runs("precision=bf16", members=[("-3", 0), ("-2", 1)]))
    assert runner.train_jobs(jobs) == ["completed"] * 2
    assert [result(job)["provenance"]["pack"]["size"] for job in jobs] == [1, 1]


def test_a_run_that_cannot_be_built_keeps_its_traceback_and_out_of_memory_is_read_from_any_library(
    tmp_path, monkeypatch
):
    def no_data(runs, data=None):
        raise RuntimeError("no data here")

    monkeypatch.setattr(runner, "Pack", no_data)
    (job,) = jobs_of(tmp_path, runs(members=[("-3", 0)]))
    (outcome,) = runner.train_jobs([job])
    assert str(outcome) == "no data here" and outcome.__traceback__ is None
    assert "Traceback" in result(job)["traceback"] and "no_data" in result(job)["traceback"]
    assert runner.out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert runner.out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not runner.out_of_memory(RuntimeError("shape mismatch"))


def test_a_pack_sent_to_a_node_without_the_gpu_it_asks_for_is_recorded_failed_naming_the_node(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    jobs = jobs_of(tmp_path, runs("device=cuda", members=[("-3", 0), ("-2", 1)]))
    outcomes = runner.train_jobs(jobs)
    assert all(type(o).__name__ == "NoDevice" for o in outcomes)
    assert all(result(job)["status"] == "failed" and "no CUDA device on " in result(job)["error"] for job in jobs)
