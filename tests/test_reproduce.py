"""What reproduces bit for bit, exactly as docs/results.md states it ("Same numbers"): on one kind of
device and one software stack, the same sweep rerun from scratch with the same launcher settings, a
run resumed from its checkpoint (tests/test_resume.py), and a run trained alone."""

import json

import pytest

from helpers import TINY, results_under

SWEEP = ["-m", *TINY, "data.n_train=320", "penalty.log10_coef=-3,-1.5", "seed=0,1,2", "hydra.launcher.pack=3"]


def _runs(root):
    """Each run's history and final metrics, and the runs it trained with, by directory name."""
    out = {}
    for path in results_under(root):
        result = json.loads(path.read_text())
        mates = sorted(p.rsplit("/", 1)[-1] for p in result["provenance"]["pack"]["members"])
        out[path.parent.name] = (result["history"], result["metrics"], mates)
    return out


@pytest.mark.slow
def test_the_same_sweep_rerun_from_scratch_gives_the_same_bits(cli, tmp_path):
    for name in ("first", "again"):
        code, _, err = cli(*SWEEP, f"name={name}")
        assert code == 0, err
    first, again = _runs(tmp_path / "out" / "multirun" / "first"), _runs(tmp_path / "out" / "multirun" / "again")
    assert len(first) == 6 and first == again  # every float of every epoch, and the same pack mates
    assert {len(mates) for _, _, mates in first.values()} == {3}  # packed: what replays a run is its pack


@pytest.mark.slow
def test_a_run_alone_gives_the_same_bits_whatever_sweep_it_is_in(cli, tmp_path):
    alone = [*SWEEP[:-1], "hydra.launcher.pack=1"]
    assert cli(*alone, "name=all")[0] == 0
    assert cli(*alone[:-3], "penalty.log10_coef=-3", "seed=1", "hydra.launcher.pack=1", "name=one")[0] == 0
    everything, one = _runs(tmp_path / "out" / "multirun" / "all"), _runs(tmp_path / "out" / "multirun" / "one")
    ((name, (history, metrics, _)),) = one.items()
    assert everything[name][:2] == (history, metrics)
