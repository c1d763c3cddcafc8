"""The result writer: atomic, never replaces a finished result, stamps and records what it should."""

import json
import platform
import socket
from datetime import datetime, timezone

import pytest

from wdbench.results import (
    RESULT_FILE,
    RUNS_FILE,
    atomic_write,
    atomic_write_text,
    provenance,
    read_result,
    read_runs,
    record_runs,
    write_result,
)


@pytest.mark.parametrize("finished", ["completed", "diverged"])
def test_a_finished_result_is_never_replaced(tmp_path, finished):
    write_result(tmp_path, {"status": "running", "seed": 0})
    write_result(tmp_path, {"status": finished, "seed": 0})  # running -> finished is the normal path
    with pytest.raises(FileExistsError, match=f"refusing to replace a {finished} result"):
        write_result(tmp_path, {"status": "running", "seed": 1})
    assert read_result(tmp_path)["status"] == finished and read_result(tmp_path)["seed"] == 0


def test_a_failed_or_running_result_may_be_replaced_and_each_write_is_stamped(tmp_path):
    for status in ("failed", "running", "completed"):
        path = write_result(tmp_path, {"status": status, "loss": float("nan")})
    assert path == tmp_path / RESULT_FILE and path.read_text().endswith("}\n")
    result = json.loads(path.read_text())
    assert result["status"] == "completed" and result["loss"] != result["loss"]  # NaN kept, not dropped
    stamp = datetime.fromisoformat(result["updated_at"])
    assert stamp.tzinfo is not None and abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 3600
    assert read_result(tmp_path / "elsewhere") is None


def test_the_atomic_writer_leaves_no_half_file_and_no_temp_file_on_error(tmp_path):
    atomic_write_text(tmp_path / "sub" / "f.txt", "old")  # makes the directory

    def fail_halfway(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "sub" / "f.txt", fail_halfway)
    assert (tmp_path / "sub" / "f.txt").read_text() == "old"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.txt"]


def test_the_manifest_gathers_the_runs_of_every_launch(tmp_path):
    assert read_runs(tmp_path) == {}
    record_runs(tmp_path, {"b": ["x=2"], "a": ["x=1"]})
    record_runs(tmp_path, {"c": ["x=3"], "b": ["x=2"]})
    assert read_runs(tmp_path) == {"a": ["x=1"], "b": ["x=2"], "c": ["x=3"]}
    assert list(json.loads((tmp_path / RUNS_FILE).read_text())) == ["a", "b", "c"]  # sorted: diffs stay small


def test_provenance_names_the_code_libraries_and_machine(monkeypatch, tmp_path):
    from importlib import metadata

    monkeypatch.setenv("SLURM_JOB_ID", "77_3")
    monkeypatch.chdir(tmp_path)  # git is asked about the code's own checkout, wherever the run starts
    p = provenance("cpu")
    assert isinstance(p["git_commit"], str) and len(p["git_commit"]) == 40 and isinstance(p["git_dirty"], bool)
    assert p["packages"]["torch"] == metadata.version("torch") and p["packages"]["python"] == platform.python_version()
    assert set(p["packages"]) == {
        "python",
        "torch",
        "timm",
        "hydra-core",
        "omegaconf",
        "numpy",
        "scikit-learn",
        "submitit",
    } and all(p["packages"].values())
    assert (p["host"], p["device"], p["slurm_job_id"], p["platform"]) == (
        socket.gethostname(),
        "cpu",
        "77_3",
        platform.platform(),
    )


def test_a_damaged_file_is_kept_aside_under_a_utc_timestamp_and_unreadable_text_is_damage(tmp_path):
    import re

    from wdbench.results import DamagedFile, set_aside

    (tmp_path / RESULT_FILE).write_bytes(b"\xff\xfe{")  # not even UTF-8
    with pytest.raises(DamagedFile, match=rf"^{re.escape(str(tmp_path / RESULT_FILE))}: damaged \(not valid JSON: "):
        read_result(tmp_path)
    said = set_aside(tmp_path / RESULT_FILE)
    (kept,) = tmp_path.iterdir()
    assert said == f"kept as {kept.name}" and re.fullmatch(r"result\.json\.damaged-\d{8}T\d{12}Z", kept.name)
    assert kept.read_bytes() == b"\xff\xfe{"
    (tmp_path / "runs_dir").mkdir()
    (tmp_path / "runs_dir" / RESULT_FILE).mkdir()  # a directory where the file should be: no result
    assert read_result(tmp_path / "runs_dir") is None


def test_provenance_without_git_says_so_instead_of_guessing(monkeypatch):
    import subprocess

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    p = provenance("cpu")
    assert p["git_commit"] is None and p["git_dirty"] is None
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 128, "", "not a repo"))
    assert provenance("cpu")["git_commit"] is None


def test_provenance_reads_dirtiness_from_porcelain_status_and_marks_missing_packages(monkeypatch):
    from importlib import metadata

    import wdbench.results as results

    asked = []
    for status, dirty in (("", False), (" M wdbench/train.py", True), (None, None)):
        monkeypatch.setattr(
            results,
            "_git",
            lambda *args, status=status: asked.append(args) or (status if args[0] == "status" else "c" * 40),
        )
        assert results.provenance("cpu")["git_dirty"] is dirty
    assert ("status", "--porcelain", "--untracked-files=no") in asked and ("rev-parse", "HEAD") in asked
    real = metadata.version

    def without_submitit(name):
        if name == "submitit":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", without_submitit)
    packages = results.provenance("cpu")["packages"]
    assert packages["submitit"] is None and packages["torch"] == real("torch")


def test_a_set_aside_file_is_stamped_in_utc_whatever_the_local_zone(tmp_path, monkeypatch):
    import re
    import time

    from wdbench.results import set_aside

    monkeypatch.setenv("TZ", "XXX-9")  # nine hours east of UTC, in POSIX form: needs no tzdata
    time.tzset()
    try:
        (tmp_path / "f").write_text("x")
        before = datetime.now(timezone.utc)
        set_aside(tmp_path / "f")
        (kept,) = tmp_path.iterdir()
        stamp = datetime.strptime(re.search(r"damaged-(\S+)Z$", kept.name).group(1), "%Y%m%dT%H%M%S%f")
        assert abs((stamp.replace(tzinfo=timezone.utc) - before).total_seconds()) < 60
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_temporary_file_is_hidden_beside_its_target_so_the_rename_stays_on_one_filesystem(tmp_path):
    seen = []

    def write(fh):
        seen.extend(p.name for p in (tmp_path / "a" / "b").iterdir())
        fh.write(b"new")

    atomic_write(tmp_path / "a" / "b" / RESULT_FILE, write)  # makes the missing directories too
    (name,) = seen
    assert name.startswith(f".{RESULT_FILE}.") and name.endswith(".tmp")
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == [RESULT_FILE]


def test_a_result_with_an_unknown_status_is_damaged_and_says_which(tmp_path):
    from wdbench.results import DamagedFile

    (tmp_path / RESULT_FILE).write_text(json.dumps({"status": "finished"}))
    with pytest.raises(DamagedFile, match="status 'finished' is none of running, completed, diverged, failed"):
        read_result(tmp_path)
