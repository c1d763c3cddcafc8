"""Claims: two launches of one sweep never train a run twice; stale claims are taken over."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wdbench import claims
from wdbench.claims import CLAIM_FILE, Claim, read_claim, stale_reason

from helpers import TINY, results_under

HOOKS = Path(__file__).parent / "fault_injection"


def _write_claim(run_dir: Path, age_s: float = 0.0, **holder) -> None:
    path = run_dir / CLAIM_FILE
    path.write_text(
        json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "slurm_job_id": None,
                "claimed_at": "2026-01-01T00:00:00+00:00",
                **holder,
            }
        )
    )
    os.utime(path, (time.time() - age_s, time.time() - age_s))


def _eventually(condition, limit_s: float = 60.0) -> None:
    """Wait for a background thread's effect; the limit only turns a hang into a failure."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.02)


def test_a_live_claim_keeps_others_out_until_it_is_released(tmp_path):
    mine = Claim.acquire(tmp_path, queued=None)
    assert isinstance(mine, Claim) and mine.taken_over is None
    other = Claim.acquire(tmp_path, queued=None)  # this process is alive and beats: the run is held
    assert isinstance(other, dict) and other["pid"] == os.getpid() and stale_reason(other, None) is None
    mine.release()
    assert not (tmp_path / CLAIM_FILE).exists() and isinstance(Claim.acquire(tmp_path, queued=None), Claim)


@pytest.mark.parametrize(
    "holder,age_s,queued,reason",
    [
        ({"pid": "dead"}, 0.0, None, "process {pid} is gone on {host}"),
        ({"host": "another-node"}, claims.STALE_S + 5, None, "no heartbeat for"),
        ({"host": "another-node", "slurm_job_id": "123"}, 0.0, set(), "SLURM job 123 is no longer queued"),
    ],
)
def test_a_stale_claim_is_taken_over_and_the_takeover_recorded(tmp_path, holder, age_s, queued, reason):
    if holder.get("pid") == "dead":
        finished = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        holder = {"pid": int(finished.stdout)}
    _write_claim(tmp_path, age_s, **holder)
    claim = Claim.acquire(tmp_path, queued=queued)
    assert isinstance(claim, Claim)
    expected = reason.format(pid=holder.get("pid"), host=socket.gethostname())
    assert claim.taken_over["reason"].startswith(expected) and claim.taken_over["from"]["pid"] == holder.get(
        "pid", os.getpid()
    )
    assert json.loads((tmp_path / CLAIM_FILE).read_text()) == claim.holder
    claim.release()


def test_a_claim_whose_slurm_job_is_queued_holds(tmp_path):
    _write_claim(tmp_path, host="another-node", slurm_job_id="123")
    assert stale_reason(read_claim(tmp_path), {"123", "124"}) is None
    assert isinstance(Claim.acquire(tmp_path, queued={"123"}), dict)


def test_the_heartbeat_refreshes_the_claim_while_the_run_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    claim = Claim.acquire(tmp_path, queued=None)
    os.utime(tmp_path / CLAIM_FILE, (time.time() - 100, time.time() - 100))
    _eventually(lambda: read_claim(tmp_path)["heartbeat_age_s"] < 50)  # the next beat touched it again
    claim.release()


@pytest.mark.slow
def test_two_launches_of_one_sweep_started_together_train_every_run_exactly_once(tmp_path):
    log, gate = tmp_path / "training.log", tmp_path / "gate"
    # Training holds at its first epoch until both launches have decided what to launch, so they
    # overlap however fast this machine trains (a packed sweep of six tiny runs takes a second).
    env = {**os.environ, "PYTHONPATH": str(HOOKS), "WDBENCH_TRAINING_LOG": str(log), "WDBENCH_WAIT_FOR_FILE": str(gate)}
    command = [
        sys.executable,
        "-m",
        "wdbench",
        "-m",
        *TINY,
        "optim.epochs=3",
        "model.width=4,6",
        "seed=0,1,2",
        "name=s",
        f"out_dir={tmp_path / 'out'}",
    ]
    files = [tmp_path / f"launch{i}.log" for i in range(2)]
    launches = [subprocess.Popen(command, env=env, stdout=open(f, "w"), stderr=subprocess.STDOUT) for f in files]
    deadline = time.monotonic() + 300  # a hang guard only
    while not all(" to launch" in f.read_text() for f in files):
        assert all(p.poll() is None for p in launches) and time.monotonic() < deadline, [f.read_text() for f in files]
        time.sleep(0.2)
    gate.touch()
    assert [p.wait(timeout=600) for p in launches] == [0, 0]
    outputs = [f.read_text() for f in files]
    started = log.read_text().splitlines()
    runs = {line.rsplit(" pid=", 1)[0] for line in started}
    assert len(started) == 6 and len(runs) == 6  # six runs, each trained once
    results = results_under(tmp_path / "out" / "multirun" / "s")
    assert len(results) == 6 and all(json.loads(r.read_text())["status"] == "completed" for r in results)
    assert not list((tmp_path / "out").rglob(CLAIM_FILE))
    finals = [
        lines[-1]
        for lines in ([line for line in out.splitlines() if line.startswith("sweep: ")] for out in outputs)
        if lines
    ]  # a launch that found every run claimed launches nothing and shows no progress
    completed = [int(re.search(r"\((\d+) completed", line).group(1)) for line in finals]
    assert sum(completed) == 6 and all(" 0 failed" in line for line in finals)
    assert any("elsewhere" in line for line in finals) or any("being trained by another launch" in o for o in outputs)


def test_status_shows_who_holds_a_running_run_and_flags_a_stale_claim(tmp_path, capsys):
    from wdbench.status import main as status_main

    for name in ("held", "killed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(
            json.dumps({"status": "running", "seed": 0, "updated_at": "2026-01-01T00:00:00+00:00", "history": []})
        )
    _write_claim(tmp_path / "held")
    _write_claim(tmp_path / "killed", pid=2**22 + 12345)  # no such process on this host
    assert status_main([str(tmp_path)]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  running")}
    assert re.search(rf"claimed by {socket.gethostname()} pid {os.getpid()}, heartbeat \d+ s ago", lines["held"])
    assert f"process {2**22 + 12345} is gone" in lines["killed"] and "rerun the sweep to resume it" in lines["killed"]


def test_a_requeued_slurm_job_takes_over_the_claim_its_earlier_start_left(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    _write_claim(tmp_path, age_s=40, host="node-a", slurm_job_id="777")  # killed before it could release
    claim = Claim.acquire(tmp_path, queued={"777"})  # the job is in the queue: it is running as itself
    assert isinstance(claim, Claim) and claim.taken_over["reason"].startswith("left by an earlier start")
    claim.release()


def test_a_suspended_slurm_job_holds_its_run_though_its_heart_does_not_beat(tmp_path):
    _write_claim(tmp_path, age_s=claims.STALE_S * 3, host="node-a", slurm_job_id="9")
    assert stale_reason(read_claim(tmp_path), {"9"}) is None
    assert stale_reason(read_claim(tmp_path), None).startswith("no heartbeat")  # no queue to ask: the heartbeat


def test_a_process_whose_claim_was_taken_over_notices_and_stops_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    claim = Claim.acquire(tmp_path, queued=None)
    assert claim.owned() and not claim.lost
    _write_claim(tmp_path, host="node-b", pid=1)  # another launch judged it stale and took it over
    _eventually(lambda: claim.lost)  # the next beat notices
    assert not claim.owned()
    claim.release()
    assert json.loads((tmp_path / CLAIM_FILE).read_text())["host"] == "node-b"  # the taker's claim stays
