import json
import os
import re

import pytest

from wdbench.status import main as status_main

from helpers import TINY, results_under


@pytest.mark.slow
def test_status_shows_failed_running_and_missing_runs_with_the_error(cli, tmp_path, capsys):
    assert cli("-m", *TINY, "optim.epochs=1", "model.width=4,6,8", "name=s")[0] == 0
    failed, running, missing = results_under(tmp_path / "out" / "multirun" / "s")
    failed.write_text(
        json.dumps(
            json.loads(failed.read_text())
            | {"status": "failed", "error": "RuntimeError: CUDA out of memory\nmore detail"}
        )
    )
    running.write_text(json.dumps(json.loads(running.read_text()) | {"status": "running"}))
    missing.unlink()
    code = status_main([str(tmp_path / "out" / "multirun" / "s")])
    out = capsys.readouterr().out
    assert code == 1
    assert "3 runs: 1 failed, 0 damaged, 1 running, 0 queued, 1 missing, 0 diverged, 0 completed" in out
    lines = out.splitlines()
    assert any(
        line.split()[:2] == ["failed", failed.parent.name] and line.endswith("RuntimeError: CUDA out of memory")
        for line in lines
    )
    assert any(line.split()[:2] == ["missing", missing.parent.name] for line in lines)
    assert any(line.split()[:2] == ["running", running.parent.name] and "updated" in line for line in lines)


# --- From hand-written result files: the rows, their order, the counts and the exit code -------------


def _result(status, val_losses=(), epochs=3, **extra):
    history = [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(val_losses)]
    metrics = {"val_loss": val_losses[-1]} if status in ("completed", "diverged") else None
    return {
        "status": status,
        "history": history,
        "optim": {"epochs": epochs},
        "metrics": metrics,
        "updated_at": "2026-01-01T00:00:00+00:00",
        **extra,
    }


def _write_sweep(root, results, manifest=()):
    root.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (root / name).mkdir()
        (root / name / "result.json").write_text(json.dumps(result))
    (root / "runs.json").write_text(json.dumps({name: [name] for name in [*results, *manifest]}))
    return root


@pytest.fixture
def no_slurm(monkeypatch):
    import wdbench.status as status

    monkeypatch.setattr(status, "queued_slurm_jobs", lambda: None)
    monkeypatch.setattr(status, "squeue", lambda *args: None)


def _table(out):
    lines = out.splitlines()
    return lines[0], [line.split(None, 4) for line in lines[2:]]


def test_rows_come_failures_first_with_epoch_loss_and_note(tmp_path, capsys, no_slurm):
    sweep = _write_sweep(
        tmp_path / "s",
        {
            "c": _result("completed", (0.9, 0.51234)),
            "d": _result("diverged", (0.9, float("nan"))),
            "f": _result("failed", (1.5,), error="ValueError: bad\ntraceback line"),
            "g": _result("failed"),
            "r": _result("running", (0.7,), resumes=2),
        },
        manifest=("m",),
    )
    assert status_main([str(sweep), "--all"]) == 1
    header, rows = _table(capsys.readouterr().out)
    assert header == f"{sweep}: 6 runs: 2 failed, 0 damaged, 1 running, 0 queued, 1 missing, 1 diverged, 1 completed"
    assert [r[:2] for r in rows] == [
        ["failed", "f"],
        ["failed", "g"],
        ["running", "r"],
        ["missing", "m"],
        ["diverged", "d"],
        ["completed", "c"],
    ]
    assert rows[0][2:] == ["1/3", "1.5000", "ValueError: bad"] and rows[1][2:] == ["0/3", "failed"]
    assert rows[2][2:4] == ["1/3", "0.7000"]
    assert (
        rows[2][4].startswith("updated ")
        and "no claim: its process stopped; rerun the sweep to resume it; resumed 2x" in rows[2][4]
    )
    assert rows[3][2] == "never" and rows[5][2:] == ["2/3", "0.5123"] and rows[4][3] == "nan"


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`python -m wdbench.status DIR | head -1`: no traceback when the pipe closes, exit 128 + SIGPIPE."""
    import subprocess
    import sys

    # more rows than a pipe's buffer (64 KiB) holds: the command is still writing when the reader leaves
    sweep = _write_sweep(
        tmp_path / "s", {f"run-{i:04d}-" + "x" * 120: _result("failed", error="E") for i in range(800)}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "wdbench.status", str(sweep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PATH": "/nonexistent"},
    )  # no squeue
    assert process.stdout.readline().startswith(str(sweep).encode())
    process.stdout.close()
    assert process.wait(timeout=60) == 141 and process.stderr.read() == b""


def test_finished_runs_are_hidden_unless_asked_and_exit_0_when_nothing_failed(tmp_path, capsys, no_slurm):
    sweep = _write_sweep(tmp_path / "s", {"c": _result("completed", (0.5,)), "d": _result("diverged", (0.9,))})
    assert status_main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{sweep}: 2 runs: 0 failed, 0 damaged, 0 running, 0 queued, 0 missing, 1 diverged, 1 completed"
    ]
    running = _write_sweep(tmp_path / "t", {"r": _result("running", (0.7,))})
    assert status_main([str(sweep), str(running)]) == 0  # running is not a failure
    assert status_main([str(tmp_path / "nowhere")]) == 2
    assert "wdbench.status: error:" in capsys.readouterr().err


def test_a_claimed_run_shows_who_holds_it_and_a_stale_claim_says_why(tmp_path, capsys, no_slurm):
    import socket

    from wdbench.claims import CLAIM_FILE

    sweep = _write_sweep(
        tmp_path / "s",
        {"alive": _result("running", (0.7,)), "gone": _result("running", (0.7,))},
        manifest=("starting",),
    )
    (sweep / "starting").mkdir()
    host = socket.gethostname()
    for name, pid in (("alive", os.getpid()), ("starting", os.getpid()), ("gone", 2**22 + 1)):
        (sweep / name / CLAIM_FILE).write_text(json.dumps({"host": host, "pid": pid, "slurm_job_id": None}))
    assert status_main([str(sweep)]) == 0
    out = capsys.readouterr().out
    header, rows = _table(out)
    notes = {r[1]: r[-1] for r in rows}
    assert "3 running" in header
    assert re.search(rf"claimed by {host} pid {os.getpid()}, heartbeat \d+ s ago", notes["alive"])
    assert any(
        line.split()[:2] == ["running", "starting"]
        and line.endswith(f"  starting: claimed by {host} pid {os.getpid()}")
        for line in out.splitlines()
    )
    assert f"process {2**22 + 1} is gone on {host}; rerun the sweep to resume it" in notes["gone"]


def test_a_pending_slurm_task_is_matched_to_its_run_through_the_launchers_json_never_a_pickle(tmp_path, monkeypatch):
    """The launcher records each array task's runs as JSON; submitit's pickles, which would run code
    when read (a planted payload would create the marker), are never opened."""
    import pickle

    import wdbench.status as status
    from wdbench.results import submitted_record

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    manifest = {"a": ["x=1"], "b": ["x=2"], "c": ["x=3"]}
    for array, record in (
        ("70", {"70_0": [["x=1"], ["x=2"]], "70_1": [["x=9"]]}),
        ("71", {"71_0": [["x=3"]]}),
        ("72", "not json"),
    ):
        submitted_record(tmp_path, array).parent.mkdir(parents=True, exist_ok=True)
        submitted_record(tmp_path, array).write_text(record if isinstance(record, str) else json.dumps(record))
    (tmp_path / ".submitit" / "t1" / "72_0").mkdir(parents=True)
    (tmp_path / ".submitit" / "t1" / "72_0" / "72_0_submitted.pkl").write_bytes(pickle.dumps(Payload()))
    asked = []
    monkeypatch.setattr(status, "squeue", lambda *args: asked.append(args) or ["70_0", "70_1", "72_0"])
    assert status.queued_runs(tmp_path, manifest) == {"a": "70_0", "b": "70_0"}  # 71_0 is not pending; 70_1 not ours
    assert asked == [("-r", "-t", "PENDING", "-o", "%i")] and not marker.exists()
    assert status.queued_runs(tmp_path, {}) == {} and len(asked) == 1  # no manifest: SLURM is not asked
    (tmp_path / "runs.json").write_text(json.dumps(manifest))
    rows = {r["run"]: r for r in status.sweep_rows(tmp_path, None)}
    assert rows["b"]["status"] == "queued" and rows["c"]["status"] == "missing"  # through the sweep's own rows
    monkeypatch.setattr(status, "squeue", lambda *args: None)
    assert status.queued_runs(tmp_path, manifest) == {}  # no SLURM here
    assert not marker.exists()


def test_ages_read_in_minutes_then_hours():
    from datetime import datetime, timedelta, timezone

    from wdbench.status import _age

    now = datetime.now(timezone.utc)
    assert _age((now - timedelta(minutes=5, seconds=10)).isoformat()) == "5 min ago"
    assert _age((now - timedelta(minutes=119)).isoformat()) == "119 min ago"
    assert _age((now - timedelta(minutes=120, seconds=30)).isoformat()) == "2.0 h ago"
    assert _age((now - timedelta(minutes=600)).isoformat()) == "10.0 h ago"


def test_queued_damaged_and_slurm_claimed_runs_read_as_the_queue_says(tmp_path, capsys, monkeypatch):
    import wdbench.status as status
    from wdbench.claims import CLAIM_FILE

    sweep = _write_sweep(
        tmp_path / "s",
        {"held": _result("running", (0.7,)), "left": _result("running", (0.7,))},
        manifest=("waiting", "starting", "vanished"),
    )
    (sweep / "bad").mkdir()
    (sweep / "bad" / "result.json").write_text('{"status": "comp')
    (sweep / "starting").mkdir()
    (sweep / "vanished").mkdir()  # claimed by a job that left the queue before it wrote anything
    for name, job in (("held", "80_1"), ("left", "80_2"), ("starting", "80_3"), ("vanished", "80_4")):
        (sweep / name / CLAIM_FILE).write_text(json.dumps({"host": "node7", "pid": 1, "slurm_job_id": job}))
    monkeypatch.setattr(status, "queued_slurm_jobs", lambda: {"80_1", "80_3", "81_0"})
    monkeypatch.setattr(status, "queued_runs", lambda sweep_dir, manifest: {"waiting": "81_0"})
    assert status_main([str(sweep)]) == 1  # a damaged result counts as a failure
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines()[2:]}
    assert out.splitlines()[0].endswith(
        "6 runs: 0 failed, 1 damaged, 3 running, 1 queued, 1 missing, 0 diverged, 0 completed"
    )
    assert lines["vanished"].split()[0] == "missing"
    assert lines["bad"].split()[0] == "damaged" and lines["bad"].endswith(
        "  result.json (not valid JSON: Unterminated string starting at: line 1 column 12 (char 11)); rerunning the "
        "sweep keeps it aside and trains the run again"
    )
    assert lines["waiting"].split()[0] == "queued" and lines["waiting"].endswith("  SLURM job 81_0 pending")
    assert lines["starting"].endswith("  starting: claimed by node7 pid 1, SLURM job 80_3")
    assert "claimed by node7 pid 1, SLURM job 80_1, heartbeat" in lines["held"]
    assert "SLURM job 80_2 is no longer queued; rerun the sweep to resume it" in lines["left"]
    assert lines["bad"].split()[:3] == ["damaged", "bad", "result.json"]  # no epoch or loss for a damaged file


def test_the_command_line_header_and_what_a_row_falls_back_on(tmp_path, capsys, no_slurm, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps its help to the terminal
    with pytest.raises(SystemExit):
        status_main(["--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: python -m wdbench.status [-h] [--all] SWEEP_DIR [SWEEP_DIR ...]\n")
    assert (
        "``python -m wdbench.status SWEEP_DIR...``: what every run of a sweep is doing, failures first.\n" in help_text
    )
    assert re.search(r"\n  --all +list completed and diverged runs too\n", help_text)
    done = _result("completed", (0.9, 0.5), resumes=1)
    done["metrics"] = {"val_loss": 0.25}  # the metrics, not the last epoch, are the run's loss
    legacy = _result("completed", (0.4,))
    del legacy["optim"]
    sweep = _write_sweep(tmp_path / "s", {"done": done, "legacy": legacy})
    assert status_main([str(sweep), "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["status", "run", "epoch", "val_loss", "note"]
    assert lines[2].split() == ["completed", "done", "2/3", "0.2500", "resumed", "1x"]
    assert lines[3].split() == ["completed", "legacy", "1/?", "0.4000"]


def test_one_failed_sweep_among_several_makes_the_exit_code_1(tmp_path, capsys, no_slurm):
    failed = _write_sweep(tmp_path / "f", {"f": _result("failed")})
    fine = _write_sweep(tmp_path / "c", {"c": _result("completed", (0.5,))})
    assert status_main([str(failed), str(fine)]) == 1 and status_main([str(fine), str(failed)]) == 1
    assert status_main([str(fine)]) == 0
