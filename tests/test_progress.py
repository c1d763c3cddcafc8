"""One progress display per sweep instead of a line per run."""

import io

import pytest

from wdbench import progress
from wdbench.progress import SweepProgress

from helpers import TINY, results_under


def test_the_line_counts_outcomes_and_estimates_what_is_left(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bar = SweepProgress(total=10, skipped=4, stream=io.StringIO(), live=False)
    now[0] = 10.0
    bar.update("completed")  # 1 of the 6 launched runs ended in 10 s: 5 left, 10 s each
    assert bar.line() == (
        "sweep: 5/10 runs done (1 completed, 0 diverged, 0 failed, 4 skipped) | elapsed 0m10s | ETA 0m50s"
    )
    now[0] = 4000.0
    assert bar.line().endswith("elapsed 1h06m | ETA 5h33m")


def test_off_a_terminal_it_prints_a_plain_line_every_period_and_at_the_end(monkeypatch):
    monkeypatch.setattr(progress, "PERIOD_S", 0.0)
    out = io.StringIO()
    bar = SweepProgress(total=3, stream=out, live=False)
    for outcome in ("completed", "diverged", "elsewhere"):
        bar.update(outcome)
    bar.show(final=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[-1].startswith("sweep: 3/3 runs done (1 completed, 1 diverged, 0 failed, 1 elsewhere, 0 skipped)")


def test_on_a_terminal_it_rewrites_one_line():
    out = io.StringIO()
    bar = SweepProgress(total=2, stream=out, live=True)
    bar.update("completed")
    bar.update("failed")
    bar.show(final=True)
    assert out.getvalue().count("\r") == 3 and out.getvalue().count("\n") == 1


@pytest.mark.slow
def test_a_local_sweep_shows_progress_and_keeps_each_runs_lines_in_its_directory(cli, tmp_path):
    code, out, err = cli("-m", *TINY, "optim.epochs=1", "model.width=4,6", "seed=0,1", "name=s")
    assert code == 0 and "completed: val_loss" not in out + err
    assert "sweep: 4/4 runs done (4 completed, 0 diverged, 0 failed, 0 skipped)" in err
    for path in results_under(tmp_path / "out" / "multirun" / "s"):
        assert "completed: val_loss" in (path.parent / "app.log").read_text()


@pytest.mark.slow
def test_a_launcher_without_its_own_display_gets_the_same_counts_from_the_result_files(cli, monkeypatch):
    monkeypatch.setattr(progress, "PERIOD_S", 0.05)
    code, out, err = cli("-m", "hydra/launcher=basic", *TINY, "optim.epochs=1", "model.width=4,6", "name=s")
    lines = [line for line in err.splitlines() if line.startswith("sweep: ")]
    assert code == 0 and lines[-1].startswith("sweep: 2/2 runs done (2 completed, 0 diverged, 0 failed, 0 skipped)")
