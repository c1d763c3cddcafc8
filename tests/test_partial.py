"""scripts/partial.sh: a sweep's finished runs kept in the repository and put back, never over a run."""

import json
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "partial.sh"


def _partial(tmp_path, *args):
    env = {**os.environ, "OUT_DIR": str(tmp_path / "out"), "PARTIAL_DIR": str(tmp_path / "kept")}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True)


def _run(sweep, name, status):
    (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / name / ".hydra" / "overrides.yaml").write_text(f"- {name}\n")
    (sweep / name / "result.json").write_text(json.dumps({"status": status, "seed": 0}, indent=2))
    (sweep / name / "checkpoint.pt").write_bytes(b"weights")


def test_save_keeps_finished_runs_only_and_restore_never_overwrites(tmp_path):
    sweep = tmp_path / "out" / "multirun" / "s"
    for name, status in (("a", "completed"), ("b", "diverged"), ("c", "running"), ("d", "failed")):
        _run(sweep, name, status)
    (sweep / "runs.json").write_text("{}")
    saved = _partial(tmp_path, "save", "s")
    assert saved.returncode == 0 and "2 finished runs" in saved.stdout
    first = (tmp_path / "kept" / "s.tar.gz").read_bytes()
    assert _partial(tmp_path, "save", "s").returncode == 0 and (tmp_path / "kept" / "s.tar.gz").read_bytes() == first

    (sweep / "a" / "result.json").write_text('{"status": "completed", "seed": 1}')  # a run trained again since
    for name in ("b", "c", "d"):
        subprocess.run(["rm", "-r", str(sweep / name)], check=True)
    assert _partial(tmp_path, "restore", "s").returncode == 0
    assert json.loads((sweep / "a" / "result.json").read_text())["seed"] == 1  # not overwritten
    assert json.loads((sweep / "b" / "result.json").read_text())["status"] == "diverged"
    assert (sweep / "b" / ".hydra" / "overrides.yaml").is_file() and not (sweep / "b" / "checkpoint.pt").exists()
    assert not (sweep / "c").exists() and not (sweep / "d").exists()


def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path):
    for args, message in (
        (("save",), "usage:"),
        (("keep", "s"), "usage:"),
        (("save", "../x"), "NAME=../x"),
        (("save", ".."), "may not start with ."),
        (("save", "s"), "no such sweep directory"),
        (("restore", "s"), "no such archive"),
    ):
        done = _partial(tmp_path, *args)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "kept").exists() and not (tmp_path / "out").exists()
    _run(tmp_path / "out" / "multirun" / "s", "r", "running")  # nothing finished: nothing to keep
    done = _partial(tmp_path, "save", "s")
    assert done.returncode == 2 and "no completed or diverged run to keep" in done.stderr
    assert not (tmp_path / "kept").exists()


def test_a_failing_archive_step_fails_the_command_and_leaves_no_partial_file(tmp_path):
    sweep = tmp_path / "out" / "multirun" / "s"
    _run(sweep, "a", "completed")
    subprocess.run(["rm", "-r", str(sweep / "a" / ".hydra")], check=True)  # tar cannot read what it lists
    done = _partial(tmp_path, "save", "s")
    assert done.returncode != 0 and "finished runs" not in done.stdout
    assert list((tmp_path / "kept").iterdir()) == []
