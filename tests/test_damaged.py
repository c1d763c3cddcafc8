"""A damaged result.json, checkpoint.pt or runs.json: one line naming it, kept aside, never a crash."""

import json
import logging
import os
import re

import pytest

from analysis.table import collect
from wdbench.checkpoint import load_checkpoint
from wdbench.results import DamagedFile, read_result, read_result_or_set_aside, read_runs, record_runs
from wdbench.status import main as status_main

from helpers import TINY, results_under

FINISHED = {"status": "completed", "seed": 0, "config": {}, "metrics": {"val_loss": 0.5}, "history": []}


def _sweep(tmp_path, damaged=("b",)):
    sweep = tmp_path / "sweep"
    for name in ("a", "b"):
        (sweep / name).mkdir(parents=True)
        text = json.dumps(FINISHED)
        (sweep / name / "result.json").write_text(text[: len(text) // 2] if name in damaged else text)
    return sweep


def test_a_truncated_result_is_named_and_kept_aside_by_whoever_retrains(tmp_path, caplog):
    sweep = _sweep(tmp_path)
    with pytest.raises(DamagedFile, match=r"sweep/b/result.json: damaged \(not valid JSON"):
        read_result(sweep / "b")
    with caplog.at_level(logging.WARNING, logger="wdbench"):
        assert read_result_or_set_aside(sweep / "b") is None
    kept = list((sweep / "b").glob("result.json.damaged-*"))
    assert len(kept) == 1 and not (sweep / "b" / "result.json").exists()
    assert [r.message for r in caplog.records] == [
        f"{sweep / 'b' / 'result.json'}: damaged (not valid JSON: "
        f"{caplog.records[0].message.split('not valid JSON: ')[1]}"
    ]
    assert "kept as result.json.damaged-" in caplog.records[0].message
    assert read_result_or_set_aside(sweep / "a")["status"] == "completed"


def test_status_counts_damaged_and_exits_1(tmp_path, capsys):
    sweep = _sweep(tmp_path)
    record_runs(sweep, {"a": [], "b": [], "c": []})
    assert status_main([str(sweep)]) == 1
    out = capsys.readouterr().out
    assert "3 runs: 0 failed, 1 damaged, 0 running, 0 queued, 1 missing, 0 diverged, 1 completed" in out
    assert any(line.split()[:2] == ["damaged", "b"] and "not valid JSON" in line for line in out.splitlines())
    (sweep / "runs.json").write_text('{"a": [')  # a damaged manifest: a warning, the rest still shown
    assert status_main([str(sweep)]) == 1
    captured = capsys.readouterr()
    assert "2 runs: 0 failed, 1 damaged" in captured.out
    assert captured.err.startswith(f"wdbench.status: warning: {sweep / 'runs.json'}: damaged (not valid JSON: ")
    assert captured.err.endswith("; runs that never started cannot be listed (rerunning the sweep rebuilds it)\n")


def test_collect_skips_a_damaged_result_with_one_line_and_a_count(tmp_path, capsys):
    sweep = _sweep(tmp_path)
    (sweep / "a" / "result.json").write_text(json.dumps({**FINISHED, "model": {"name": "resnet", "width": 4}}))
    assert len(collect([str(sweep)])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "skipped" in err[0] and "b/result.json: damaged" in err[0]
    assert "1 damaged result file(s) skipped" in err[1]


def test_damaged_manifest_and_checkpoint_are_read_as_damaged(tmp_path, caplog):
    (tmp_path / "runs.json").write_text("[1, 2]")
    with pytest.raises(DamagedFile, match="a JSON list, not an object"):
        read_runs(tmp_path)
    with caplog.at_level(logging.WARNING, logger="wdbench"):
        record_runs(tmp_path, {"x": ["seed=1"]})
    assert read_runs(tmp_path) == {"x": ["seed=1"]} and list(tmp_path.glob("runs.json.damaged-*"))
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(DamagedFile, match="checkpoint.pt: damaged"):
        load_checkpoint(tmp_path)


@pytest.mark.slow
def test_rerunning_a_sweep_retrains_a_run_whose_result_or_checkpoint_is_damaged(cli, tmp_path):
    args = ("-m", *TINY, "optim.epochs=1", "model.width=4,6", "name=s")
    assert cli(*args)[0] == 0
    first, second = results_under(tmp_path / "out" / "multirun" / "s")
    first.write_text(first.read_text()[:100])  # a half-written result
    running = json.loads(second.read_text()) | {"status": "running"}  # an interrupted run...
    second.write_text(json.dumps(running))
    (second.parent / "checkpoint.pt").write_bytes(b"not a checkpoint")  # ...with a damaged checkpoint
    code, out, err = cli(*args)
    assert code == 0
    assert json.loads(first.read_text())["status"] == "completed" and list(first.parent.glob("result.json.damaged-*"))
    assert json.loads(second.read_text())["status"] == "completed" and json.loads(second.read_text())["resumes"] == 0
    assert list(second.parent.glob("checkpoint.pt.damaged-*"))


def test_a_long_run_name_keeps_a_readable_prefix_and_a_hash_within_the_limit():
    from wdbench.app import MAX_DIRNAME, run_dirname

    short = "model.width=4,seed=1"
    assert run_dirname(short) == short and run_dirname("a/b c") == "a_b_c" and run_dirname("") == "defaults"
    long_a, long_b = "model.width=4," + "x" * 300 + "a", "model.width=4," + "x" * 300 + "b"
    assert len(run_dirname(long_a).encode()) == MAX_DIRNAME and run_dirname(long_a).startswith("model.width=4,xxx")
    assert run_dirname(long_a) != run_dirname(long_b) and run_dirname(long_a) == run_dirname(long_a)
    assert len(run_dirname("é" * 300).encode()) <= MAX_DIRNAME  # never cut inside a character


@pytest.mark.slow
def test_a_sweep_with_long_overrides_gets_short_directories_mapped_in_runs_json(cli, tmp_path):
    spelled_out = [
        "model.blocks=1",
        "model.small_input=true",
        "data.val_fraction=0.2",
        "data.split_seed=0",
        "optim.momentum=0.9",
        "optim.nesterov=false",
        "optim.schedule=cosine",
        "optim.warmup_epochs=0",
        "penalty.apply=coupled",
        "penalty.exclude=[bias,norm]",
        "penalty.log10_lam=-3.5",
        "optim.lr=0.05",
    ]
    assert cli("-m", *TINY, "optim.epochs=1", *spelled_out, "seed=0,1", "name=s")[0] == 0
    sweep = tmp_path / "out" / "multirun" / "s"
    runs = read_runs(sweep)
    assert len(runs) == 2 and all(
        len(name.encode()) <= 200 and (sweep / name / "result.json").is_file() for name in runs
    )
    assert all({"penalty.apply=coupled", "optim.schedule=cosine"} <= set(overrides) for overrides in runs.values())
    assert all(re.fullmatch(r"data\.split_seed=0,.*_[0-9a-f]{16}", name) for name in runs)  # prefix + hash


def test_files_that_vanish_or_lack_a_status_are_handled(tmp_path):
    from wdbench.results import set_aside

    assert set_aside(tmp_path / "result.json") == "set aside by another launch"  # moved by a racing launch
    (tmp_path / "result.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(DamagedFile, match="status None is none of running, completed, diverged, failed"):
        read_result(tmp_path)


def test_progress_from_result_files_counts_only_what_changed_since_the_launch(tmp_path):
    from wdbench.progress import ResultWatcher

    old = tmp_path / "old"
    old.mkdir()
    (old / "result.json").write_text(json.dumps({**FINISHED, "status": "failed"}))  # relaunched: not news yet
    os.utime(old / "result.json", (1, 1))
    watcher = ResultWatcher([old], total=1, skipped=0)
    watcher._poll()
    assert sum(watcher.progress.counts.values()) == 0
    (old / "result.json").write_text(json.dumps(FINISHED))
    watcher._poll()
    assert watcher.progress.counts == {"completed": 1}


def test_status_shows_a_requeued_run_as_queued(tmp_path, capsys, monkeypatch):
    import wdbench.status as status

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text(
        json.dumps({**FINISHED, "status": "running", "updated_at": "2026-01-01T00:00:00+00:00"})
    )
    monkeypatch.setattr(status, "queued_runs", lambda sweep_dir, manifest: {"r": "55_1"})
    assert status.main([str(tmp_path)]) == 0
    line = [text for text in capsys.readouterr().out.splitlines() if text.strip().startswith("queued")][0]
    assert "requeued: SLURM job 55_1 pending, resumes from its checkpoint" in line
