"""Training runs: reproducibility, every model family, and what a run leaves behind."""

import json
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from wdbench.data import load_dataset
from wdbench.models import build_model
from wdbench.optim import lr_multiplier
from wdbench.penalty import split_decayed
from wdbench.train import Pack, evaluate, l2_norm, resolve_device

from helpers import TINY, results_under, tiny_run


def alone(*overrides) -> Pack:
    """tiny_run trained alone: a pack of one."""
    return Pack([tiny_run(*overrides)])


def test_same_config_and_seed_give_identical_metrics_on_cpu():
    histories = []
    for _ in range(2):
        pack = alone("penalty.lam=1e-3")
        assert pack.fit() == ["completed"]
        histories.append(pack.members[0].history)
    assert histories[0] == histories[1]
    other = alone("penalty.lam=1e-3", "seed=1")
    other.fit()
    assert other.members[0].history != histories[0]


@pytest.mark.parametrize("model", ["resnet", "vit", "mixer"])
def test_each_model_family_trains_and_scales_with_width(model):
    small, large = (alone(f"model={model}", f"model.width={w}", "optim.epochs=1") for w in (8, 16))
    assert large.members[0].n_params > 2 * small.members[0].n_params
    assert large.members[0].n_decayed > 2 * small.members[0].n_decayed
    assert small.fit() == ["completed"] and math.isfinite(small.members[0].history[-1]["val_loss"])


def test_penalty_shrinks_the_decayed_norm_and_uses_the_right_sizes():
    loose, tight = alone("penalty.lam=0"), alone("penalty.lam=0.2")
    loose.fit(), tight.fit()
    assert tight.members[0].history[-1]["decayed_norm"] < 0.8 * loose.members[0].history[-1]["decayed_norm"]
    (per_step,) = alone("penalty=per_step", "penalty.lam=0.5").members
    assert per_step.penalty.coef == 0.5 * (64 / 320)
    (mean,) = alone("penalty=mean", "penalty.lam=0.5").members
    assert mean.penalty.coef == 0.5 / mean.n_decayed
    assert mean.n_decayed == sum(
        p.numel() for n, p in mean.model.named_parameters() if n.endswith("weight") and "bn" not in n and p.dim() > 1
    )


@pytest.mark.slow
def test_single_run_writes_a_complete_result(cli, tmp_path):
    code, _, _ = cli(*TINY, "penalty=mean", "penalty.log10_lam=-1")
    assert code == 0
    (path,) = results_under(tmp_path / "out" / "runs")
    r = json.loads(path.read_text())
    assert r["status"] == "completed" and r["seed"] == 0
    assert r["model"]["name"] == "resnet" and r["model"]["width"] == 4
    assert r["model"]["n_decayed"] < r["model"]["n_params"]
    assert r["penalty"] == {
        "norm": "mean",
        "apply": "coupled",
        "lam": pytest.approx(0.1),
        "coef": pytest.approx(0.1 / r["model"]["n_decayed"]),
        "exclude": ["bias", "norm"],
    }
    assert r["data"]["n_train"] == 1437 and r["data"]["batch_size"] == 64
    assert r["config"]["penalty"]["log10_lam"] == -1 and r["config"]["model"]["width"] == 4  # as composed
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

    monkeypatch.setattr(Pack, "train_epoch", explode)
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
    sweep = ["-m", *TINY, "optim.epochs=1", "model.width=4,8", "penalty=sum,mean", "penalty.log10_lam=-3", "name=grid"]
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


# --- The trainer's wiring against torch's own optimizers and hand-computed values -------------------

WIRING = [
    "data.n_train=256",
    "optim.batch_size=64",
    "optim.epochs=3",
    "optim.warmup_epochs=1",
    "optim.schedule=cosine",
    "penalty.lam=0.02",
]  # 4 steps an epoch: 4 of warmup, then 8 of cosine


def reference_schedule(step: int, total: int, warmup: int) -> float:
    """Written out again here, independently of wdbench.optim: linear warmup from 1/warmup, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def train_with_torch_decay(run, make_optimizer):
    """The run trained by a plain loop whose weight decay is torch's own (``weight_decay`` on the decayed
    group): the same init, data order and schedule as the Trainer, none of its penalty code."""
    torch.manual_seed(run.seed)
    data = load_dataset(run.data, torch.device("cpu"))
    model = build_model(run.model, data.in_chans, data.n_classes, data.image_size)
    decayed, kept = split_decayed(model, run.penalty.exclude)
    optimizer = make_optimizer(
        [{"params": [p for _, p in decayed]}, {"params": [p for _, p in kept], "weight_decay": 0.0}]
    )
    rng, batch = torch.Generator().manual_seed(run.seed), run.optim.batch_size
    steps = len(data.y_train) // batch
    total, warmup = run.optim.epochs * steps, round(run.optim.warmup_epochs * steps)
    model.train()
    epoch_losses = []
    for epoch in range(run.optim.epochs):
        order = torch.randperm(len(data.y_train), generator=rng)
        losses = []
        for i in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = run.optim.lr * reference_schedule(epoch * steps + i, total, warmup)
            idx = order[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        epoch_losses.append(sum(losses) / steps)
    return model, epoch_losses


@pytest.mark.parametrize(
    "optim,apply,torch_optimizer",
    [
        ("sgd", "coupled", lambda lr, wd: partial(torch.optim.SGD, lr=lr, momentum=0.9, weight_decay=wd)),
        ("adam", "coupled", lambda lr, wd: partial(torch.optim.Adam, lr=lr, weight_decay=wd)),
        ("adam", "decoupled", lambda lr, wd: partial(torch.optim.AdamW, lr=lr, weight_decay=wd)),
        ("adam", "independent", lambda lr, wd: partial(torch.optim.AdamW, lr=lr, weight_decay=wd / lr)),
    ],
)
@pytest.mark.parametrize("norm", ["sum", "mean"])
def test_trainer_equals_torch_weight_decay_of_2_coef(optim, apply, torch_optimizer, norm):
    """coupled = SGD/Adam(weight_decay=2·coef); decoupled = AdamW(weight_decay=2·coef); independent =
    AdamW(weight_decay=2·coef/lr_max) — with warmup and cosine, inside the Trainer."""
    run = tiny_run(*WIRING, f"optim={optim}", f"penalty.apply={apply}", f"penalty={norm}")
    pack = Pack([run])
    assert pack.total_steps == 12 and pack.warmup_steps == 4
    pack.fit()
    (member,) = pack.members
    coef = 0.02 * (1.0 if norm == "sum" else 1 / member.n_decayed)
    assert member.penalty.coef == pytest.approx(coef, rel=1e-12)
    reference, epoch_losses = train_with_torch_decay(run, torch_optimizer(run.optim.lr, 2 * coef))
    for (name, ours), theirs in zip(member.model.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6), name
    assert [h["train_loss"] for h in member.history] == pytest.approx(epoch_losses, rel=1e-5)
    assert [h["epoch"] for h in member.history] == [1, 2, 3]


def test_lr_multiplier_at_hand_computed_steps():
    assert [lr_multiplier(t, 14, 4, "cosine") for t in range(4)] == [0.25, 0.5, 0.75, 1.0]  # warmup from 1/4
    assert lr_multiplier(4, 14, 4, "cosine") == 1.0  # the cosine starts at the peak
    assert lr_multiplier(9, 14, 4, "cosine") == pytest.approx(0.5)  # its midpoint
    assert lr_multiplier(6, 14, 4, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    assert lr_multiplier(14, 14, 4, "cosine") == pytest.approx(0.0, abs=1e-15)  # ends at 0
    assert lr_multiplier(0, 10, 0, "cosine") == 1.0 and lr_multiplier(5, 10, 0, "cosine") == pytest.approx(0.5)
    assert [lr_multiplier(t, 14, 4, "constant") for t in (0, 3, 4, 13)] == [0.25, 1.0, 1.0, 1.0]
    assert lr_multiplier(0, 1, 0, "cosine") == 1.0  # a one-step run: no division by zero


def test_the_lr_a_trainer_records_is_the_schedule_at_its_last_step():
    pack = alone(*WIRING)
    pack.fit()
    assert [h["lr"] for h in pack.members[0].history] == pytest.approx(
        [0.05 * reference_schedule(t, 12, 4) for t in (3, 7, 11)]
    )


def test_evaluate_uses_the_running_statistics_and_leaves_them_alone():
    model = torch.nn.BatchNorm1d(2)
    model.running_mean.fill_(1.0)
    model.running_var.fill_(4.0)
    x, y = torch.tensor([[3.0, 1.0], [1.0, 5.0], [0.0, 0.0]]), torch.tensor([0, 1, 0])
    model.eval()
    (loss,), _ = evaluate(lambda x: model(x)[None], x, y, batch=2)
    assert loss == pytest.approx(F.cross_entropy((x - 1) / math.sqrt(4 + 1e-5), y).item(), rel=1e-6)
    assert torch.equal(model.running_mean, torch.ones(2))


def test_device_auto_is_the_gpu_when_there_is_one_and_a_named_device_is_kept():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("meta") == torch.device("meta") and resolve_device("cpu") == torch.device("cpu")
    assert alone("optim.epochs=1").state_dicts()[0]["cuda_rng"] is None  # nothing of a GPU on the CPU


def test_evaluate_averages_over_samples_when_the_batch_does_not_divide_n():
    logits = torch.tensor([[4.0, 0.0], [0.0, 1.0], [3.0, 2.5], [0.0, 0.0], [9.0, -9.0], [1.0, 5.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0, 1, 1, 0])

    def members(x):  # the second member's logits swap the classes
        return torch.stack([x, x.flip(1)])

    loss, acc = evaluate(members, logits, labels, batch=3)  # batches of 3, 3 and 1
    assert loss == pytest.approx(
        [F.cross_entropy(logits, labels).item(), F.cross_entropy(logits.flip(1), labels).item()], rel=1e-6
    )
    assert acc == pytest.approx([5 / 7, 3 / 7])  # rows 2, 4 wrong, then 2, 3, 4 right; a tie goes to class 0


def test_metrics_report_the_final_epoch_and_the_best_by_val_loss():
    (trainer,) = alone("optim.epochs=1").members
    rows = [
        (1, 2.0, 1.5, 0.4, 10.0),
        (2, 1.0, 0.7, 0.8, 11.0),
        (3, 0.5, 0.9, 0.75, 12.0),
        (4, 0.4, float("nan"), 0.1, 13.0),
    ]
    trainer.history = [dict(zip(("epoch", "train_loss", "val_loss", "val_acc", "decayed_norm"), r)) for r in rows]
    m = trainer.metrics()
    assert (m["best_epoch"], m["best_val_loss"], m["best_val_acc"], m["best_train_loss"], m["best_decayed_norm"]) == (
        2,
        0.7,
        0.8,
        1.0,
        11.0,
    )  # the NaN epoch is never "best"
    assert math.isnan(m["val_loss"]) and (m["val_acc"], m["train_loss"], m["decayed_norm"]) == (0.1, 0.4, 13.0)
    trainer.history = [dict(trainer.history[-1])]
    assert trainer.metrics()["best_epoch"] == 4  # nothing finite: the final epoch stands in


def test_decayed_norm_is_the_norm_of_the_decayed_tensors_concatenated():
    pack = alone("optim.epochs=1")
    pack.fit()
    (trainer,) = pack.members
    flat = torch.cat([p.detach().flatten() for p in trainer.decayed()])
    assert trainer.history[-1]["decayed_norm"] == pytest.approx(flat.norm().item(), rel=1e-6)
    assert l2_norm([torch.tensor([3.0]), torch.tensor([[4.0, 12.0]])]) == pytest.approx(13.0)


def test_steps_timing_and_a_diverged_run_stop_where_they_should():
    trainer = alone("data.n_train=200", "optim.batch_size=64", "optim.epochs=2")
    epochs_seen = [trainer.epoch for _ in trainer.each_epoch()]
    assert [m.status or "completed" for m in trainer.members] == ["completed"]
    assert trainer.steps_per_epoch == 3 and trainer.step == 6 and epochs_seen == [1, 2]  # 200 // 64: drop_last
    assert [h["epoch"] for h in trainer.members[0].history] == [1, 2] and trainer.total_steps == 6
    timing = trainer.timing()
    assert timing["steps"] == 6 and timing["wall_s"] > 0 and timing["pack_size"] == 1
    assert timing["samples_per_s"] == pytest.approx(6 * 64 / timing["wall_s"])
    diverging = alone("optim.lr=1e12", "optim.epochs=5")
    assert diverging.fit() == ["diverged"] and len(diverging.members[0].history) < 5


def test_each_optimizer_gets_its_own_hyper_parameters_and_no_weight_decay():
    from wdbench.config import OptimConfig
    from wdbench.optim import build_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(OptimConfig(name="sgd", lr=0.3, momentum=0.5, nesterov=True), params)
    assert type(sgd) is torch.optim.SGD
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.3, 0.5, True, 0)
    for name in ("adam", "adamw"):  # adamw is Adam's update: its decay is penalty.apply=decoupled
        adam = build_optimizer(OptimConfig(name=name, lr=0.01, betas=[0.8, 0.95], eps=1e-6), params)
        group = adam.param_groups[0]
        assert type(adam) is torch.optim.Adam
        assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (0.01, (0.8, 0.95), 1e-6, 0)


def test_a_coef_space_run_trains_that_coef_and_records_the_lambda_it_means():
    (trainer,) = alone("penalty=mean", "penalty.log10_coef=-3", "penalty.apply=decoupled").members
    assert trainer.penalty.coef == 1e-3 and trainer.penalty.apply == "decoupled"
    assert trainer.penalty.lam == pytest.approx(1e-3 * trainer.n_decayed, rel=1e-12)  # what the result records
    assert trainer.run.penalty.lam == 1e-4  # the run's config is left as composed
    (per_step,) = alone("penalty=per_step", "penalty.log10_coef=-2").members
    assert per_step.penalty.coef == 1e-2 and per_step.penalty.lam == pytest.approx(1e-2 * 320 / 64)


def test_timing_of_a_run_that_has_not_trained_has_no_rate():
    assert alone("optim.epochs=1").timing() == {"wall_s": 0.0, "steps": 0, "pack_size": 1, "samples_per_s": None}


def test_a_gpu_run_saves_and_restores_the_generator_of_the_gpu_it_uses_only(monkeypatch):
    """One state, of the run's own device (a state per visible GPU failed to resume where fewer are
    visible); an older checkpoint's list gives its first; a GPU state resumed on a CPU is ignored."""
    saved, restored = torch.tensor([1, 2], dtype=torch.uint8), []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: saved)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: None)
    trainer = alone("optim.epochs=1")
    trainer.device = torch.device("cuda")  # as if it ran there: only the generators are asked about
    states = trainer.state_dicts()
    assert states[0]["cuda_rng"] is saved
    trainer.load_state_dicts(states)
    trainer.load_state_dicts([{**states[0], "cuda_rng": [saved, "a second GPU's"]}])
    assert restored == [(saved, trainer.device)] * 2
    trainer.device = torch.device("cpu")
    trainer.load_state_dicts(states)
    assert len(restored) == 2


def test_angles_are_exact_for_small_and_large_rotations_and_ignore_scale():
    from wdbench.train import angles

    for theta in (1e-4, 0.3, 2.0):
        before = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        after = torch.tensor([[math.cos(theta), math.sin(theta), 0.0], [0.0, 5 * math.cos(theta), 5 * math.sin(theta)]])
        torch.testing.assert_close(angles([before], [after]), torch.full((1, 2), theta), rtol=1e-4, atol=0)


def test_diagnostics_record_each_tensors_norm_and_its_last_step_rotation_without_changing_training():
    """Full batch, one step an epoch: the angular update of epoch 1 is the angle between the initial
    and final weights; the norms are the final ones; metrics equal a run without diagnostics."""
    from wdbench.train import angles

    common = ["optim.batch_size=320", "optim.epochs=1", "optim=adamw", "penalty.lam=1e-2"]
    plain, watched = alone(*common), alone(*common, "diagnostics=true")
    initial = [p.detach().clone() for p in watched.decayed]
    for pack in (plain, watched):
        pack.fit()
    record, names = watched.members[0].history[0], watched.members[0].decayed_names
    expected = angles(initial, [p.detach() for p in watched.decayed])[:, 0].tolist()
    assert list(record["angular_update"]) == names and list(record["tensor_norm"]) == names
    assert [record["angular_update"][n] for n in names] == pytest.approx(expected, rel=1e-6)
    assert [record["tensor_norm"][n] for n in names] == pytest.approx(
        [p.detach()[0].norm().item() for p in watched.decayed], rel=1e-6
    )
    assert (
        record["val_loss"] == plain.members[0].history[0]["val_loss"]
        and "tensor_norm" not in plain.members[0].history[0]
    )


def test_rotational_equilibrium_predictions_follow_kosson_et_al_with_torchs_decay_twice_coef():
    """scripts/equilibrium.py: norm sqrt(η·C/(2·λ_t)) and angle sqrt(2·η·λ_t·(1 − β₁)/(1 + β₁)), λ_t = 2·coef."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from equilibrium import predicted

    norm, angle = predicted(lr=0.01, coef=0.5, beta1=0.9, elements=100)
    assert norm == pytest.approx(math.sqrt(0.5)) and angle == pytest.approx(math.sqrt(2 * 0.01 * 1.0 * 0.1 / 1.9))


def test_precision_is_part_of_a_run_and_bf16_autocasts_its_forward_pass_on_the_cpu_too():
    """precision=bf16 trains (autocast works on a CPU) to other numbers than fp32, and is recorded;
    each pack sets every numerics switch, so a bf16 pack leaves nothing behind for the next one."""
    from wdbench.config import run_identity

    fp32, bf16 = alone("optim.epochs=1"), alone("optim.epochs=1", "precision=bf16")
    assert run_identity(fp32.members[0].run) != run_identity(bf16.members[0].run)
    for pack in (fp32, bf16):
        pack.fit()
    assert fp32.members[0].history[0]["val_loss"] != bf16.members[0].history[0]["val_loss"]
    assert math.isfinite(bf16.members[0].history[0]["val_loss"])
    assert bf16.numerics == {
        "precision": "bf16",
        "gpu_tf32_matmul": True,
        "gpu_tf32_conv": True,
        "autocast": "bfloat16",
        "cudnn_benchmark": False,
        "deterministic": False,
    }
    again = alone("optim.epochs=1")
    assert torch.backends.cudnn.allow_tf32 is False and again.numerics["autocast"] is None
    again.fit()
    assert again.members[0].history == fp32.members[0].history  # same config and seed, same numbers


def test_numerics_switches_and_the_gpu_versions_recorded(monkeypatch):
    from types import SimpleNamespace

    from wdbench.numerics import autocast, gpu_versions, set_numerics

    for precision, tf32 in (("fp32", False), ("tf32", True), ("bf16", True)):
        run = SimpleNamespace(precision=precision, cudnn_benchmark=precision == "tf32", deterministic=False)
        recorded = set_numerics(run)
        assert torch.backends.cuda.matmul.allow_tf32 is tf32 and torch.backends.cudnn.allow_tf32 is tf32
        assert torch.backends.cudnn.benchmark is (precision == "tf32") and recorded["gpu_tf32_conv"] is tf32
    set_numerics(SimpleNamespace(precision="fp32", cudnn_benchmark=False, deterministic=True))
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    set_numerics(SimpleNamespace(precision="fp32", cudnn_benchmark=False, deterministic=False))
    assert not torch.are_deterministic_algorithms_enabled()
    with autocast("bf16", torch.device("cpu")):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast("fp32", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    assert gpu_versions(torch.device("cpu")) == {}
    gpu = torch.device("cuda", 1)  # the run's own GPU is asked about, not the current one
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: device == gpu and "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: device == gpu and (9, 0))
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    assert gpu_versions(gpu) == {
        "gpu": "NVIDIA H100 80GB HBM3",
        "capability": [9, 0],
        "cuda": torch.version.cuda,
        "cudnn": 91002,
    }
