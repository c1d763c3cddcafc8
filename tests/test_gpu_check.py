"""scripts/gpu_check.py at toy size on the CPU: the command a GPU machine runs first never rots."""

import json
import sys
from pathlib import Path

import pytest

import wdbench.train  # noqa: F401  (imported here: its first import sets torch's environment variables)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_and_reports_every_part(tmp_path, capsys):
    import gpu_check

    assert gpu_check.main(["--toy", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    checks = {row["check"]: row for row in report["correctness"]}
    assert {"pack vs alone", "checkpoint cpu->cpu", "two forked workers"} <= set(checks)
    assert checks["checkpoint cpu->cpu"]["exact"] and checks["two forked workers"]["runs_completed"] == 4
    assert all(row["ok"] for row in report["correctness"])
    rows = report["throughput"]
    assert {(r["model"], r["precision"], r["K"]) for r in rows} == {
        (m, p, k) for m in ("resnet", "vit") for p in ("fp32", "bf16") for k in (1, 4)
    }
    ran = [r for r in rows if not (r["precision"] == "bf16" and r["K"] > 1)]  # those run alone on a CPU
    assert all(r["status"] == "ok" and r["member_steps_per_s"] > 0 and r["estimate_mib_per_member"] > 0 for r in ran)
    assert all(r["status"].startswith("runs alone") for r in rows if r not in ran)
    assert (tmp_path / "gpu_check.md").read_text().startswith("# gpu_check: cpu")
    sys.modules.pop("gpu_check")
