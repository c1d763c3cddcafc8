"""Training runs: reproducibility, every model family, and what a run leaves behind."""
import json
import math

import pytest
from hydra import compose, initialize_config_dir

from conftest import TINY, results_under
from wdbench.app import CONF_DIR
from wdbench.config import parse_run_config
from wdbench.train import Trainer


def tiny_run(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return parse_run_config(compose("config", overrides=[*TINY, "device=cpu", *overrides]))


def test_same_config_and_seed_give_identical_metrics_on_cpu():
    histories = []
    for _ in range(2):
        trainer = Trainer(tiny_run("penalty.lam=1e-3"))
        assert trainer.fit() == "completed"
        histories.append(trainer.history)
    assert histories[0] == histories[1]
    other = Trainer(tiny_run("penalty.lam=1e-3", "seed=1"))
    other.fit()
    assert other.history != histories[0]


@pytest.mark.parametrize("model", ["resnet", "vit", "mixer"])
def test_each_model_family_trains_and_scales_with_width(model):
    small, large = (Trainer(tiny_run(f"model={model}", f"model.width={w}", "optim.epochs=1")) for w in (8, 16))
    assert large.n_params > 2 * small.n_params and large.n_decayed > 2 * small.n_decayed
    assert small.fit() == "completed" and math.isfinite(small.history[-1]["val_loss"])


def test_penalty_shrinks_the_decayed_norm_and_uses_the_right_sizes():
    loose = Trainer(tiny_run("penalty.lam=0"))
    tight = Trainer(tiny_run("penalty.lam=0.05"))
    loose.fit(), tight.fit()
    assert tight.history[-1]["decayed_norm"] < 0.8 * loose.history[-1]["decayed_norm"]
    per_step = Trainer(tiny_run("penalty=per_step", "penalty.lam=0.5"))
    assert per_step.penalty.coef == 0.5 * (64 / 1437)
    mean = Trainer(tiny_run("penalty=mean", "penalty.lam=0.5"))
    assert mean.penalty.coef == 0.5 / mean.n_decayed
    assert mean.n_decayed == sum(p.numel() for n, p in mean.model.named_parameters()
                                 if n.endswith("weight") and "bn" not in n and p.dim() > 1)


@pytest.mark.slow
def test_single_run_writes_a_complete_result(cli, tmp_path):
    code, _, _ = cli(*TINY, "penalty=mean", "penalty.log10_lam=-1")
    assert code == 0
    (path,) = results_under(tmp_path / "out" / "runs")
    r = json.loads(path.read_text())
    assert r["status"] == "completed" and r["seed"] == 0
    assert r["model"]["name"] == "resnet" and r["model"]["width"] == 4
    assert r["model"]["n_decayed"] < r["model"]["n_params"]
    assert r["penalty"] == {"norm": "mean", "apply": "coupled", "lam": pytest.approx(0.1),
                            "coef": pytest.approx(0.1 / r["model"]["n_decayed"]), "exclude": ["bias", "norm"]}
    assert r["data"]["n_train"] == 1437 and r["data"]["batch_size"] == 64
    assert r["config"]["penalty"]["lam"] == pytest.approx(0.1) and r["config"]["model"]["width"] == 4
    assert len(r["history"]) == 2 and r["metrics"]["val_loss"] == r["history"][-1]["val_loss"]
    assert {"best_epoch", "best_val_loss", "decayed_norm", "val_acc", "train_loss"} <= set(r["metrics"])
    assert r["timing"]["steps"] == 2 * (1437 // 64) and r["timing"]["samples_per_s"] > 0
    assert r["provenance"]["packages"]["torch"] and "git_commit" in r["provenance"]


@pytest.mark.slow
def test_a_diverged_run_is_recorded_not_dropped(cli, tmp_path):
    code, _, _ = cli(*TINY, "optim.lr=1e6", "optim.schedule=constant", "penalty.lam=0")
    assert code == 0  # diverged is a result, not an error
    (path,) = results_under(tmp_path / "out")
    r = json.loads(path.read_text())
    assert r["status"] == "diverged" and not math.isfinite(r["metrics"]["train_loss"])


@pytest.mark.slow
def test_a_crashing_run_is_recorded_as_failed(cli, tmp_path, monkeypatch):
    def explode(self):
        raise RuntimeError("out of cheese")
    monkeypatch.setattr(Trainer, "train_epoch", explode)
    with pytest.raises(RuntimeError, match="out of cheese"):
        cli(*TINY)
    (path,) = results_under(tmp_path / "out")
    r = json.loads(path.read_text())
    assert r["status"] == "failed" and r["error"] == "RuntimeError: out of cheese"


@pytest.mark.slow
def test_a_run_that_fails_before_training_still_leaves_a_failed_result(cli, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("model too large")
    monkeypatch.setattr("wdbench.train.build_model", broken)
    code, _, err = cli("-m", "hydra/launcher=basic", *TINY, "name=broken")
    assert code == 1 and "1 of 1 runs failed (first: MemoryError('model too large'))" in err
    (path,) = results_under(tmp_path / "out")
    r = json.loads(path.read_text())
    assert r["status"] == "failed" and r["error"] == "MemoryError: model too large"
    from analysis.table import collect
    (row,) = collect([str(tmp_path / "out")]).to_dict("records")
    assert row["status"] == "failed" and row["width"] == 4 and row["norm"] == "sum"


@pytest.mark.slow
def test_multirun_runs_the_cross_product_then_skips_finished_and_reruns_failed(cli, tmp_path):
    sweep = ["-m", *TINY, "optim.epochs=1", "model.width=4,8", "penalty=sum,mean", "penalty.log10_lam=-3",
             "name=grid"]
    code, _, _ = cli(*sweep)
    assert code == 0
    paths = results_under(tmp_path / "out" / "multirun" / "grid")
    assert len(paths) == 4
    seen = set()
    for path in paths:
        r = json.loads(path.read_text())
        assert r["status"] == "completed"
        assert f"model.width={r['model']['width']}" in path.parent.name
        assert f"penalty={r['penalty']['norm']}" in path.parent.name
        assert r["penalty"]["lam"] == pytest.approx(1e-3)
        seen.add((r["model"]["width"], r["penalty"]["norm"]))
    assert seen == {(4, "sum"), (4, "mean"), (8, "sum"), (8, "mean")}

    failed = json.loads(paths[0].read_text()) | {"status": "failed", "error": "RuntimeError: preempted"}
    paths[0].write_text(json.dumps(failed))
    before = {p: p.read_text() for p in paths[1:]}
    code, out, err = cli(*sweep)
    assert code == 0 and "4 runs, 3 already finished (skipped), 1 to launch" in out + err
    assert json.loads(paths[0].read_text())["status"] == "completed"
    assert {p: p.read_text() for p in paths[1:]} == before


@pytest.mark.slow
def test_a_sweep_refuses_to_skip_runs_whose_config_changed(cli, tmp_path):
    sweep = ["-m", *TINY, "optim.epochs=1", "model.width=4", "name=grid"]
    assert cli(*sweep)[0] == 0
    (path,) = results_under(tmp_path / "out")
    r = json.loads(path.read_text())
    r["config"]["optim"]["lr"] = 0.5  # as if the experiment file had been edited since
    path.write_text(json.dumps(r))
    code, _, err = cli(*sweep)
    assert code == 2 and "holds a completed result of a different config" in err
