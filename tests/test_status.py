import json

import pytest

from conftest import TINY, results_under
from wdbench.status import main as status_main


@pytest.mark.slow
def test_status_shows_failed_running_and_missing_runs_with_the_error(cli, tmp_path, capsys):
    assert cli("-m", *TINY, "optim.epochs=1", "model.width=4,6,8", "name=s")[0] == 0
    failed, running, missing = results_under(tmp_path / "out" / "multirun" / "s")
    failed.write_text(json.dumps(json.loads(failed.read_text()) | {
        "status": "failed", "error": "RuntimeError: CUDA out of memory\nmore detail"}))
    running.write_text(json.dumps(json.loads(running.read_text()) | {"status": "running"}))
    missing.unlink()
    code = status_main([str(tmp_path / "out" / "multirun" / "s")])
    out = capsys.readouterr().out
    assert code == 1
    assert "3 runs: 1 failed, 0 damaged, 1 running, 0 queued, 1 missing, 0 diverged, 0 completed" in out
    lines = out.splitlines()
    assert any(l.split()[:2] == ["failed", failed.parent.name] and l.endswith("RuntimeError: CUDA out of memory")
               for l in lines)
    assert any(l.split()[:2] == ["missing", missing.parent.name] for l in lines)
    assert any(l.split()[:2] == ["running", running.parent.name] and "updated" in l for l in lines)
