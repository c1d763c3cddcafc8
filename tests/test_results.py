"""The result writer: atomic, never replaces a finished result, stamps and records what it should."""
import json
import platform
import socket
from datetime import datetime, timezone

import pytest

from wdbench.results import (RESULT_FILE, RUNS_FILE, atomic_write, atomic_write_text, provenance, read_result,
                             read_runs, record_runs, write_result)


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
    record_runs(tmp_path, {"a": ["x=1"], "b": ["x=2"]})
    record_runs(tmp_path, {"b": ["x=2"], "c": ["x=3"]})
    assert read_runs(tmp_path) == {"a": ["x=1"], "b": ["x=2"], "c": ["x=3"]}
    assert list(json.loads((tmp_path / RUNS_FILE).read_text())) == ["a", "b", "c"]  # sorted: diffs stay small


def test_provenance_names_the_code_libraries_and_machine(monkeypatch):
    from importlib import metadata

    monkeypatch.setenv("SLURM_JOB_ID", "77_3")
    p = provenance("cpu")
    assert len(p["git_commit"]) == 40 and isinstance(p["git_dirty"], bool)
    assert p["packages"]["torch"] == metadata.version("torch") and p["packages"]["python"] == platform.python_version()
    assert set(p["packages"]) == {"python", "torch", "timm", "hydra-core", "omegaconf", "numpy", "scikit-learn",
                                  "submitit"} and all(p["packages"].values())
    assert (p["host"], p["device"], p["slurm_job_id"], p["platform"]) == (socket.gethostname(), "cpu", "77_3",
                                                                          platform.platform())
