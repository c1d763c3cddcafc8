"""Through a real SLURM cluster (scripts/slurm_cluster.sh start; scripts/test.sh does it as root)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import TINY, results_under

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (
            os.environ.get("SLURM_CONF")
            and shutil.which("sbatch")
            and subprocess.run(["sinfo"], capture_output=True).returncode == 0
        ),
        reason="no SLURM cluster: start one with scripts/slurm_cluster.sh start (root)",
    ),
]

SLURM = ["hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=10"]


def submitit_jobs(sweep_dir: Path):
    return sorted(p.name for p in sweep_dir.glob(".submitit/*/*") if p.is_dir())


def test_a_sweep_runs_as_one_job_array_and_a_rerun_submits_nothing(cli, tmp_path):
    sweep = ["-m", *SLURM, *TINY, "optim.epochs=1", "model.width=4,6,8", "penalty=sum,mean", "name=array"]
    code, out, err = cli(*sweep)
    assert code == 0, out + err
    sweep_dir = tmp_path / "out" / "multirun" / "array"
    paths = results_under(sweep_dir)
    assert len(paths) == 6
    for path in paths:
        r = json.loads(path.read_text())
        assert r["status"] == "completed" and r["provenance"]["slurm_job_id"]
        assert (
            path.parent.name == f"model.width={r['model']['width']},optim.batch_size=64,optim.epochs=1,"
            f"penalty={r['penalty']['norm']}"
        )
        assert r["config"]["model"]["width"] == r["model"]["width"]
        assert r["provenance"]["pack"]["size"] == 2  # sum and mean of one width: one pack
    assert "sweep: 6/6 runs done (6 completed, 0 diverged, 0 failed, 0 skipped)" in err  # the wait shows progress
    jobs = submitit_jobs(sweep_dir)
    array_id = jobs[0].split("_")[0]
    assert {job for job in jobs if "_" in job} == {f"{array_id}_{i}" for i in range(3)}  # one array, a task per pack
    from wdbench.results import submitted_record  # each task's runs, as JSON for wdbench.status

    record = json.loads(submitted_record(sweep_dir, array_id).read_text())
    assert set(record) == {f"{array_id}_{i}" for i in range(3)} and sorted(map(len, record.values())) == [2, 2, 2]

    code, out, err = cli(*sweep)
    assert code == 0 and "6 runs, 6 already finished (skipped), 0 to launch" in out + err
    assert submitit_jobs(sweep_dir) == jobs


def test_a_failing_job_shows_as_failed_in_the_status(cli, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "fault_injection"))
    monkeypatch.setenv("WDBENCH_FAIL_WIDTH", "6")
    code, out, err = cli("-m", *SLURM, *TINY, "optim.epochs=1", "model.width=4,6", "name=failing")
    assert code == 1 and "1 of 2 runs failed" in err and "python -m wdbench.status" in err
    monkeypatch.delenv("WDBENCH_FAIL_WIDTH")
    from wdbench.status import main as status_main

    assert status_main([str(tmp_path / "out" / "multirun" / "failing")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "2 runs: 1 failed, 0 damaged, 0 running, 0 queued, 0 missing, 0 diverged, 1 completed" in lines[0]
    assert any(
        line.split()[0] == "failed" and "model.width=6" in line and line.endswith("RuntimeError: injected failure")
        for line in lines
    )


def test_a_timed_out_pack_is_requeued_and_resumes_to_the_same_metrics(cli, tmp_path, monkeypatch):
    run = [
        *TINY,
        "optim.epochs=60",
        "seed=0,1",
        "penalty.log10_coef=-3,-2",
        "threads=1",
        "checkpoint_every_s=10",
        "name=long",
    ]
    reference = subprocess.Popen(  # the same pack uninterrupted, meanwhile, on the other core
        [sys.executable, "-m", "wdbench", "-m", "hydra.launcher.n_jobs=1", *run, f"out_dir={tmp_path / 'ref'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Each epoch first waits 2.5 s, so the pack trains over 150 s on any machine: longer than the signal
    # at 90 s into a 2-minute job, so the time limit must stop it at least once.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "fault_injection"))
    monkeypatch.setenv("WDBENCH_EPOCH_DELAY_S", "2.5")
    code, out, err = cli(
        "-m",
        "hydra/launcher=slurm_cpu",
        "hydra.launcher.timeout_min=2",
        "hydra.launcher.signal_delay_s=30",
        "hydra.launcher.max_num_timeout=4",
        *run,
    )
    assert code == 0, out + err
    assert reference.wait(timeout=600) == 0
    paths, ref_paths = results_under(tmp_path / "out" / "multirun" / "long"), results_under(tmp_path / "ref")
    assert len(paths) == len(ref_paths) == 4
    for path, ref_path in zip(paths, ref_paths):
        resumed, reference_result = json.loads(path.read_text()), json.loads(ref_path.read_text())
        assert resumed["status"] == "completed" and resumed["resumes"] >= 1
        assert resumed["provenance"]["pack"]["size"] == reference_result["provenance"]["pack"]["size"] == 4
        assert [p["signal"] for p in resumed["preemptions"]] == ["SIGUSR2"] * len(resumed["preemptions"])
        assert resumed["metrics"] == reference_result["metrics"]
        assert resumed["history"] == reference_result["history"]


def test_submit_returns_at_once_and_status_shows_progress(tmp_path):
    root = Path(__file__).resolve().parents[1]
    sweep_dir, gate = tmp_path / "multirun" / "bg", tmp_path / "gate"
    env = {
        **os.environ,
        "WDBENCH_LAUNCHER": "slurm_cpu",
        "WDBENCH_OUT": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).parent / "fault_injection"),
        "WDBENCH_WAIT_FOR_FILE": str(gate),
    }
    # The runs cannot finish before the gate opens: returning here at all shows submit does not wait.
    out = subprocess.run(
        [
            "bash",
            str(root / "scripts" / "submit.sh"),
            *TINY,
            "optim.epochs=1",
            "model.width=4,8",
            "name=bg",
            f"out_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    ).stdout
    assert "submitting in the background" in out
    gate.touch()
    deadline = time.time() + 300
    while time.time() < deadline:
        status = subprocess.run(
            [sys.executable, "-m", "wdbench.status", str(sweep_dir)], capture_output=True, text=True
        )
        if "2 runs: 0 failed, 0 damaged, 0 running, 0 queued, 0 missing, 0 diverged, 2 completed" in status.stdout:
            break
        time.sleep(2)
    else:
        pytest.fail(f"the sweep did not finish: {status.stdout}")


def test_resubmitting_while_jobs_are_pending_and_running_trains_every_run_once(tmp_path):
    root = Path(__file__).resolve().parents[1]
    log, gate = tmp_path / "training.log", tmp_path / "gate"
    # Every run holds at its first epoch until the gate opens: the first task is still training (and
    # the others still queued) when the resubmission looks, however fast this machine is.
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parent / "fault_injection"),
        "WDBENCH_TRAINING_LOG": str(log),
        "WDBENCH_WAIT_FOR_FILE": str(gate),
        "WDBENCH_LAUNCHER": "slurm_cpu",
        "WDBENCH_OUT": str(tmp_path),
    }
    sweep = [
        *TINY,
        "optim.epochs=1",
        "model.width=4,6,8",
        "hydra.launcher.array_parallelism=1",
        "name=again",
        f"out_dir={tmp_path}",
    ]
    subprocess.run(["bash", str(root / "scripts" / "submit.sh"), *sweep], env=env, check=True, capture_output=True)
    sweep_dir = tmp_path / "multirun" / "again"
    deadline = time.time() + 180
    while not list(sweep_dir.glob("*/claim.json")):  # one task trains (claimed), the others wait in the queue
        assert time.time() < deadline, "no job started"
        time.sleep(0.5)
    status = subprocess.run(
        [sys.executable, "-m", "wdbench.status", str(sweep_dir)], capture_output=True, text=True
    ).stdout
    assert " 0 missing" in status.splitlines()[0] and " 0 queued" not in status.splitlines()[0]  # pending: queued
    output = tmp_path / "again.log"
    with open(output, "w") as out:
        again = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wdbench",
                "-m",
                "hydra/launcher=slurm_cpu",
                "hydra.launcher.timeout_min=10",
                *sweep,
            ],
            env=env,
            stdout=out,
            stderr=out,
        )
    deadline = time.time() + 180
    while "being trained by another launch" not in output.read_text():  # it has decided what to launch
        assert again.poll() is None and time.time() < deadline, output.read_text()
        time.sleep(0.5)
    gate.touch()
    assert again.wait(timeout=600) == 0, output.read_text()
    assert (
        "3 runs, 0 already finished (skipped), 1 being trained by another launch (skipped), 2 to launch"
        in output.read_text()
    )
    deadline = time.time() + 300
    while (
        "3 completed"
        not in subprocess.run(
            [sys.executable, "-m", "wdbench.status", str(sweep_dir)], capture_output=True, text=True
        ).stdout
    ):
        assert time.time() < deadline, "the first submission did not finish"
        time.sleep(2)
    started = log.read_text().splitlines()
    assert len(started) == 3 and len({line.rsplit(" pid=", 1)[0] for line in started}) == 3
    assert all(json.loads(p.read_text())["status"] == "completed" for p in results_under(sweep_dir))
