"""Packed training: K runs as one stacked model, each member still the run it would be alone."""

import copy

import pytest
import torch

from hydra_plugins.wdbench_plugins.launcher import pack_jobs
from wdbench.train import Interrupted, Pack

from helpers import MEMBERS, TIMM_TOYS, _roundtrip, runs, tiny_run


def trained(pack: Pack, steps=None) -> Pack:
    """``pack`` trained to the end, or stopped after ``steps`` steps."""
    if steps is not None:
        pack.interrupt = lambda: pack.step == steps
    try:
        pack.fit()
    except Interrupted:
        pass
    return pack


def states(pack: Pack, k: int) -> dict:
    return pack.members[k].model.state_dict()


FAMILIES = [
    ["model.width=8"],
    ["model.width=8", "optim=adamw", "data.augment=true"],
    ["model.width=8", "optim.batch_size=320"],  # full batch: one shared batch, no gather
    ["model=vit", "model.width=16"],
    ["model=mixer", "model.width=16", "optim=adam"],
    [*TIMM_TOYS["convnext"], "optim=adamw"],
    TIMM_TOYS["efficientnet"],  # BatchNorm: per-member running statistics
    TIMM_TOYS["swin"],
]


@pytest.mark.parametrize(
    "overrides",
    FAMILIES,
    ids=["resnet-sgd", "resnet-adamw-augment", "resnet-full-batch", "vit", "mixer", *(f"timm-{k}" for k in TIMM_TOYS)],
)
def test_each_member_starts_as_it_would_alone_and_stays_within_rounding_of_it(overrides):
    """Same init bit for bit; after 2 steps equal up to float32 rounding: vmap's grouped kernels sum
    in another order (measured: at most ~2e-5 of a tensor's largest entry, and a few 1e-6 absolute
    where Adam normalises a gradient that is rounding noise, as in a mixer's token-MLP output bias)."""
    together, alone = Pack(runs(*overrides)), [Pack([run]) for run in runs(*overrides)]
    for k, single in enumerate(alone):
        for (name, ours), theirs in zip(states(together, k).items(), states(single, 0).values()):
            assert torch.equal(ours, theirs), name
    for pack in (together, *alone):
        trained(pack, steps=2)
    for k, single in enumerate(alone):
        for (name, ours), theirs in zip(states(together, k).items(), states(single, 0).values()):
            if ours.is_floating_point():
                torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4 * theirs.abs().max().item() + 1e-5, msg=name)
            else:
                assert torch.equal(ours, theirs), name  # BatchNorm's step counts


def test_a_model_that_draws_random_numbers_trains_each_run_alone_and_never_as_a_pack(caplog):
    """Swin's default drop path (0.1): under vmap no member could draw what it draws alone, so the runner
    trains each run alone (and says so in its log), a Pack of several refuses, and a pack of one trains."""
    import logging
    from types import SimpleNamespace

    import wdbench.runner as runner
    from wdbench.train import alone_only

    swin = [o for o in TIMM_TOYS["swin"] if "drop_path_rate" not in o]
    stochastic = runs(*swin, members=MEMBERS[:2])
    assert alone_only(runs(*TIMM_TOYS["swin"])[0]) is None
    reason = alone_only(stochastic[0])
    assert reason.startswith(
        "model.arch=swin_tiny_patch4_window7_224 draws random numbers in training (layers.1.blocks.0.drop_path1: dropout or drop path)"
    )
    jobs = [SimpleNamespace(run=run, log=logging.getLogger(f"wdbench.run.{k}")) for k, run in enumerate(stochastic)]
    with caplog.at_level("INFO", logger="wdbench"):
        assert runner._packs_that_fit(jobs, [0, 1], data_loaded=False) == [[0], [1]]
    assert [r.getMessage() for r in caplog.records] == [reason, reason]
    assert runner.cpu_pack_limits(stochastic[0])[0] == 1
    with pytest.raises(
        ValueError, match="^a pack's model must not draw random numbers in training; layers.1.blocks.0.drop_path1 does$"
    ):
        Pack(stochastic)
    assert trained(Pack(stochastic[:1]), steps=1).step == 1


def test_a_timm_sweep_trains_as_one_pack_records_its_arch_and_a_rerun_skips_it(cli, tmp_path):
    import json

    from helpers import TINY, results_under

    sweep = [
        "-m",
        *(o for o in TINY if not o.startswith("model.width")),
        *TIMM_TOYS["convnext"],
        "optim.epochs=1",
        "data.n_train=320",
        "seed=0,1",
        "hydra.launcher.n_jobs=1",
        "name=c",
    ]
    assert cli(*sweep)[0] == 0
    results = [json.loads(p.read_text()) for p in results_under(tmp_path / "out" / "multirun" / "c")]
    assert [(r["status"], r["provenance"]["pack"]["size"], r["model"]["arch"]) for r in results] == [
        ("completed", 2, "convnext_atto")
    ] * 2
    code, out, err = cli(*sweep)
    assert code == 0 and "2 runs, 2 already finished (skipped), 0 to launch" in out + err


def test_on_a_cpu_packs_hold_at_most_cpu_pack_bytes_and_each_run_s_log_says_so(monkeypatch, caplog):
    import logging
    from types import SimpleNamespace

    import wdbench.runner as runner
    from wdbench.train import member_bytes

    jobs = [
        SimpleNamespace(run=run, log=logging.getLogger(f"wdbench.run.{k}"))
        for k, run in enumerate(runs(members=[("-3", s) for s in range(7)]))
    ]
    assert runner._packs_that_fit(jobs, list(range(7)), data_loaded=False) == [list(range(7))]  # tiny: all fit
    monkeypatch.setattr(runner, "CPU_PACK_BYTES", int(3.5 * member_bytes(jobs[0].run, 1, 10, 8)))
    with caplog.at_level("INFO", logger="wdbench"):
        assert runner._packs_that_fit(jobs, list(range(7)), data_loaded=False) == [[0, 1], [2, 3], [4, 5, 6]]
    assert sorted(r.name for r in caplog.records) == sorted(job.log.name for job in jobs)
    assert "the 7 runs launched together train as 3 packs" in caplog.records[0].getMessage()


def test_a_member_computes_the_same_bits_whatever_its_pack_mates_do():
    """A member's slice never mixes with another's: next to a mate that diverges (NaN from epoch 1)
    it trains bit for bit as next to a benign one, and only the mate is recorded as diverged."""
    steady, benign, wild = runs("model.width=8", members=[("-3", 0), ("-2", 1), ("3", 1)])
    calm, stormy = Pack([steady, benign]), Pack([copy.deepcopy(steady), wild])
    assert calm.fit() == ["completed", "completed"] and stormy.fit() == ["completed", "diverged"]
    assert len(stormy.members[1].history) < len(stormy.members[0].history) == 2
    assert calm.members[0].history == stormy.members[0].history
    for (name, a), b in zip(states(calm, 0).items(), states(stormy, 0).values()):
        assert torch.equal(a, b), name


def test_a_pack_is_deterministic_on_the_cpu():
    first, second = trained(Pack(runs("data.augment=true"))), trained(Pack(runs("data.augment=true")))
    assert [m.history for m in first.members] == [m.history for m in second.members]


@pytest.mark.parametrize("stop_at", [3, 5])  # mid-epoch, at an epoch boundary
def test_a_pack_resumes_bit_for_bit_from_its_members_checkpoints(stop_at):
    overrides = ["optim=adamw", "data.augment=true", "model.width=6"]
    reference = trained(Pack(runs(*overrides)))
    first = Pack(runs(*overrides))
    first.interrupt = lambda: first.step == stop_at
    with pytest.raises(Interrupted, match=f"^interrupted at step {stop_at}$"):
        first.fit()
    saved = _roundtrip(first.state_dicts())
    for state in saved:  # each member's checkpoint holds its own slice, not the pack's tensors
        for tensor in state["model"].values():
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    resumed = Pack(runs(*overrides))
    resumed.load_state_dicts(saved)
    assert resumed.fit() == ["completed"] * 3 and resumed.step == reference.step
    for k in range(3):
        assert resumed.members[k].history == reference.members[k].history
        for a, b in zip(states(resumed, k).values(), states(reference, k).values()):
            assert torch.equal(a, b)


def test_a_member_checkpoint_is_a_run_checkpoint_and_continues_alone():
    overrides = ["optim=adam"]
    pack = trained(Pack(runs(*overrides)), steps=7)
    state = _roundtrip(pack.state_dicts())[1]
    alone = Pack([runs(*overrides)[1]])
    alone.load_state_dicts([state])
    for (name, a), b in zip(states(alone, 0).items(), states(pack, 1).values()):
        assert torch.equal(a, b), name
    optimizer = alone.optimizer.state_dict()["state"]
    for i, stacked in pack.optimizer.state_dict()["state"].items():
        assert torch.equal(optimizer[i]["exp_avg"][0], stacked["exp_avg"][1])
        assert torch.equal(optimizer[i]["step"], stacked["step"])
    assert alone.fit() == ["completed"] and len(alone.members[0].history) == 2 and alone.step == 10


def test_a_pack_refuses_runs_that_do_not_share_a_computation_or_a_step():
    with pytest.raises(ValueError, match="^a pack.s runs must share everything but"):
        Pack([tiny_run("seed=0"), tiny_run("seed=1", "optim.lr=0.1")])
    pack = Pack(runs())
    early, late = trained(Pack(runs()), steps=2).state_dicts(), trained(Pack(runs()), steps=4).state_dicts()
    with pytest.raises(ValueError, match=r"must resume at one step; got \(step, epochs\) \[\(2, 0\), \(4, 0\)\]"):
        pack.load_state_dicts([early[0], late[1], early[2]])


def test_runs_differing_in_norm_lambda_and_seed_share_a_pack_key_and_nothing_else_does():
    from wdbench.config import pack_key

    base = pack_key(tiny_run())
    for same in (
        ["seed=3"],
        ["penalty=mean", "penalty.lam=3"],
        ["penalty.log10_coef=-2"],
        ["name=x"],
        ["progress=true"],
    ):
        assert pack_key(tiny_run(*same)) == base, same
    for other in (
        ["optim.lr=0.1"],
        ["model.width=6"],
        ["penalty.apply=decoupled"],
        ["optim.epochs=3"],
        ["data.augment=true"],
        ["penalty.exclude=[bias]"],
        ["device=auto"],
        ["data.root=/elsewhere"],  # not a run's identity, but a pack reads one dataset, from one place
    ):
        assert pack_key(tiny_run(*other)) != base, other


def test_jobs_are_packed_by_key_evenly_and_split_to_keep_every_worker_busy():
    assert pack_jobs(["a"] * 5, 2) == [[0], [1, 2], [3, 4]]
    assert pack_jobs(["a", "b", "a", "b", "a"], 16) == [[0, 2, 4], [1, 3]]
    assert pack_jobs(["a"] * 40, 16) == [list(range(0, 13)), list(range(13, 26)), list(range(26, 40))]
    assert pack_jobs(["a"] * 6, 16, workers=2) == [[0, 1, 2], [3, 4, 5]]
    assert pack_jobs(["a"] * 3, 16, workers=8) == [[0], [1], [2]]
    assert pack_jobs(["a", "b"], 1) == [[0], [1]]


def test_workers_get_even_shares_of_packs_and_the_costliest_first():
    """24 runs whose packs may hold 8 on 2 workers: 4 packs of 6 (3 packs of 8 left one worker idle
    for a third of the sweep); a cap from memory counts as the size does; with several keys, the
    packs of the costlier runs are queued first."""
    assert pack_jobs(["a"] * 24, 8, workers=2) == [list(range(j, j + 6)) for j in range(0, 24, 6)]
    assert pack_jobs(["a"] * 24, 16, workers=2, caps={"a": 8}) == pack_jobs(["a"] * 24, 8, workers=2)
    assert [len(p) for p in pack_jobs(["a"] * 24, 8, workers=3)] == [8, 8, 8]
    packs = pack_jobs(["cheap"] * 4 + ["dear"] * 4, 16, workers=2, costs={"cheap": 1.0, "dear": 10.0})
    assert packs == [[4, 5, 6, 7], [0, 1, 2, 3]]  # the dearer first
    assert pack_jobs(["a"] * 5, 16, workers=1, caps={"a": 2}) == [[0], [1, 2], [3, 4]]
    assert pack_jobs(["a"] * 3, 1, workers=2) == [[0], [1], [2]]  # never an empty pack
    assert sorted(map(len, pack_jobs(["a"] * 5, 16, workers=2, caps={"a": 2}))) == [1, 1, 1, 2]
    many = [key for key in "abcdefgh" for _ in range(12)]  # 8 packs on 2 workers: whole, the queue evens them
    assert [len(p) for p in pack_jobs(many, 12, workers=2)] == [12] * 8


def test_a_mate_that_diverges_first_in_line_leaves_the_next_ones_recorded_and_is_handed_over():
    wild, steady = runs("model.width=8", members=[("3", 1), ("-3", 0)])
    pack = Pack([wild, steady])
    handed = list(pack.each_epoch())  # per epoch, the members that diverged in it
    assert [m.status or "completed" for m in pack.members] == ["diverged", "completed"]
    assert handed[0] == [pack.members[0]] and handed[1:] == [[]] and len(pack.members[1].history) == 2


def test_the_pack_clock_sums_every_epoch_and_the_time_after_the_last(monkeypatch):
    ticks = iter(range(0, 1000, 10))  # each reading of the clock is 10 s after the last
    monkeypatch.setattr("wdbench.train.time.perf_counter", lambda: next(ticks))
    pack = Pack(runs(members=MEMBERS[:1]))
    pack.fit()
    assert pack.timing()["wall_s"] == 30  # start, epoch 1, epoch 2, the end: three 10 s stretches


def test_a_pack_shares_the_data_it_is_given_unfuses_attention_and_keeps_each_runs_own_choices():
    from wdbench.data import load_dataset

    data = load_dataset(tiny_run().data, torch.device("cpu"))
    assert Pack(runs(), data).data is data  # read once for every pack of a sweep's worker
    vit = Pack(runs("model=vit", "model.width=16", members=MEMBERS[:2]))
    assert not any(getattr(m, "fused_attn", False) for m in vit.module.modules())  # vmap would loop over fused
    (member,) = Pack([tiny_run("penalty.exclude=[bias]")]).members
    (default,) = Pack([tiny_run()]).members
    assert member.n_decayed > default.n_decayed  # its norm weights decayed too: its own exclude, not the default
    constant = trained(Pack(runs("optim.schedule=constant", members=MEMBERS[:1])))
    assert [h["lr"] for h in constant.members[0].history] == [0.05, 0.05]


@pytest.mark.parametrize(
    "overrides",
    [[], ["model=vit", "model.width=16"], ["model=mixer", "model.width=16"]],
    ids=["resnet", "vit", "mixer"],
)
def test_a_members_memory_is_its_state_plus_the_larger_step(overrides, monkeypatch):
    """member_bytes = 4·P·(2 + optimizer slots) + max(training step, evaluation step): the training
    step's tensors grow linearly in the batch (its only batch-free part, BatchNorm's per-channel
    statistics, is a few kilobytes), the evaluation step's linearly in the evaluation batch."""
    import wdbench.train as train

    def estimate(*more):
        run = tiny_run(*overrides, *more)
        return train.member_bytes(run, 1, 10, 8), sum(p.numel() for p in Pack([run]).members[0].model.parameters())

    monkeypatch.setattr(train, "EVAL_BATCH", 1)  # the training step is the larger
    (b16, n_params), (b32, _), (b48, _) = (estimate(f"optim.batch_size={b}") for b in (16, 32, 48))
    assert b48 - b32 == b32 - b16 > 0  # affine in the batch
    state = 4 * n_params * 3  # parameters, gradients, SGD's momentum
    assert 0 <= (b16 - (b32 - b16)) - state < 4096
    assert estimate("optim.batch_size=32", "optim.momentum=0")[0] == b32 - 4 * n_params  # no momentum buffer
    assert estimate("optim.batch_size=32", "optim=adam")[0] == b32 + 2 * 4 * n_params  # Adam: m, v, sqrt(v)
    evaluation = []
    for eval_batch in (10**5, 2 * 10**5):  # the evaluation step is the larger
        monkeypatch.setattr(train, "EVAL_BATCH", eval_batch)
        evaluation.append(estimate("optim.batch_size=32")[0] - state)
    assert evaluation[1] == 2 * evaluation[0] > 0


@pytest.mark.parametrize(
    "overrides",
    [["model.width=8"], ["model=vit", "model.width=16"], ["model=mixer", "model.width=16"]],
    ids=["resnet", "vit", "mixer"],
)
def test_the_estimate_counts_what_a_real_packed_step_saves_for_backward(overrides, monkeypatch):
    """Bytes saved for backward by a real training step of a pack of 3, counted on the CPU with
    autograd's hooks, against member_bytes' count (a meta-device forward of a vmapped pair): equal
    per member within 1% (BatchNorm's statistics are per member, not per sample). The module alone
    saves less than a packed member does where vmap's BatchNorm rule keeps the normalised input."""
    import wdbench.train as train

    pack = Pack(runs(*overrides))
    seen: dict[int, int] = {}

    def count(tensor):
        seen.setdefault(tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        return tensor

    params = {t.untyped_storage().data_ptr() for t in pack.params.values()}
    x, y, _ = pack._batch(torch.stack([torch.arange(pack.n_train)] * pack.size), 0)
    with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
        pack._per_member(pack._member_loss, x, y, member_axis=(True, True))
    measured = sum(n for ptr, n in seen.items() if ptr not in params and ptr != x.untyped_storage().data_ptr())
    run, shape = pack.members[0].run, (pack.data.in_chans, pack.data.n_classes, pack.data.image_size)
    _, _, saved, _ = train._saved_bytes(run, *shape, members=train.FOOTPRINT_MEMBERS)
    assert saved == pytest.approx(measured / pack.size, rel=0.01)
    _, _, alone, _ = train._saved_bytes(run, *shape, members=1)
    if overrides[0] == "model.width=8":
        assert saved > 1.2 * alone  # vmap's BatchNorm: one more activation per layer
    monkeypatch.setattr(train, "EVAL_BATCH", 1)  # the training step is the larger
    assert (train.member_bytes(run, *shape) - train.member_bytes(run, *shape, packed=False) == saved - alone) == (
        saved > alone
    )


def test_a_pack_too_big_for_the_device_trains_as_even_packs_that_fit_and_says_so(monkeypatch, caplog):
    from types import SimpleNamespace

    import wdbench.runner as runner
    from wdbench.sources import split_sizes
    from wdbench.train import member_bytes

    jobs = [SimpleNamespace(run=run) for run in runs(members=[("-3", s) for s in range(7)])]
    each = member_bytes(jobs[0].run, 1, 10, 8)
    monkeypatch.setattr(runner, "resolve_device", lambda name: torch.device("cuda"))  # only _memory_budget asks it
    data = 4 * sum(split_sizes(jobs[0].run.data)) * 8 * 8  # float32 digits, 8x8 pixels, one channel
    monkeypatch.setattr(runner, "_memory_budget", lambda device: int(3.9 * each) + data)
    assert data > 0.1 * each  # so four fit once the data are on the device
    with caplog.at_level("WARNING", logger="wdbench"):
        assert runner._packs_that_fit(jobs, [0, 2, 4, 6], data_loaded=False) == [[0, 2], [4, 6]]
        assert runner._packs_that_fit(jobs, list(range(7)), data_loaded=False) == [[0, 1], [2, 3], [4, 5, 6]]
        assert runner._packs_that_fit(jobs, [0, 1, 2], data_loaded=False) == [[0, 1, 2]]
        assert runner._packs_that_fit(jobs, [0, 1, 2, 3], data_loaded=True) == [[0, 1, 2, 3]]  # the data's room
    assert len(caplog.records) == 2 and "a pack of 7 runs needs about" in caplog.records[1].getMessage()
    assert "training 3 packs of at most 3, one after another" in caplog.records[1].getMessage()
    monkeypatch.setattr(runner, "_memory_budget", lambda device: each // 2)  # not even one fits: one at a time
    assert runner._packs_that_fit(jobs, [0, 1], True) == [[0], [1]]

    def unknown(*args):
        raise RuntimeError("no meta kernel")

    monkeypatch.setattr(runner, "member_bytes", unknown)
    caplog.clear()
    with caplog.at_level("WARNING", logger="wdbench"):
        assert runner._packs_that_fit(jobs, [0, 1], True) == [[0, 1]]  # never stops training
    assert "could not be estimated (no meta kernel); training it whole" in caplog.records[0].getMessage()


def test_forked_workers_train_the_configs_the_sweeper_composed_instead_of_composing_again(cli, tmp_path, monkeypatch):
    import json
    import os

    from hydra_plugins.wdbench_plugins.hydra_compat import ConfigLoaderImpl

    from helpers import TINY, results_under

    log = tmp_path / "compositions"
    compose = ConfigLoaderImpl.load_sweep_config

    def counted(self, master_config, sweep_overrides):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return compose(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counted)
    assert (
        cli(
            "-m",
            *TINY,
            "optim.epochs=1",
            "data.n_train=320",
            "penalty.log10_coef=-3,-2",
            "seed=0,1",
            "hydra.launcher.n_jobs=2",
            "name=s",
        )[0]
        == 0
    )
    # the sweeper's one Hydra composition (the four jobs differ in plain values only), none in a worker
    assert log.read_text().split() == [str(os.getpid())]
    results = [json.loads(path.read_text()) for path in results_under(tmp_path / "out" / "multirun" / "s")]
    assert len(results) == 4 and all(
        r["status"] == "completed" and r["provenance"]["pack"]["size"] == 2 for r in results
    )


def test_a_rerun_skips_finished_members_and_packs_the_rest(cli, tmp_path):
    import json
    import shutil

    from helpers import TINY, results_under

    sweep = [
        "-m",
        *TINY,
        "optim.epochs=1",
        "data.n_train=320",
        "penalty.log10_coef=-3,-2,-1",
        "seed=0,1",
        "hydra.launcher.n_jobs=1",
        "name=s",
    ]
    assert cli(*sweep)[0] == 0
    paths = results_under(tmp_path / "out" / "multirun" / "s")
    assert [json.loads(p.read_text())["provenance"]["pack"]["size"] for p in paths] == [6] * 6
    before = {p: p.read_bytes() for p in paths}
    shutil.rmtree(paths[1].parent)  # one run lost, another interrupted before its first checkpoint
    result = json.loads(paths[4].read_text())
    paths[4].write_text(json.dumps({**result, "status": "running"}))
    code, out, err = cli(*sweep)
    assert code == 0 and "6 runs, 4 already finished (skipped), 2 to launch" in out + err
    for i, path in enumerate(paths):
        result = json.loads(path.read_text())
        if i in (1, 4):
            assert result["status"] == "completed" and result["provenance"]["pack"]["size"] == 2
        else:
            assert path.read_bytes() == before[path]


@pytest.mark.slow
def test_whole_runs_packed_and_alone_agree_within_the_stated_tolerance(cli, tmp_path):
    """The tolerance docs/running.md states, measured on the whole quickstart (scripts/pack_tolerance.py): in the
    basin (coef <= 10^-1.25), packed minus alone final val_loss is at most ~0.03 (95% of runs within
    0.02, the median 0.001; seeds differ by 0.036 at one coef). Here: width 8, two basin coefs, four seeds."""
    import json

    from helpers import results_under

    sweep = [
        "-m",
        "experiment=quickstart",
        "model.width=8",
        "penalty.log10_coef=-2.5,-1.5",
        "seed=0,1,2,3",
        "hydra.launcher.n_jobs=1",
        "progress=false",
    ]
    losses = {}
    for pack in (1, 8):
        assert cli(*sweep, f"hydra.launcher.pack={pack}", f"name=p{pack}")[0] == 0
        for path in results_under(tmp_path / "out" / "multirun" / f"p{pack}"):
            result = json.loads(path.read_text())
            assert result["provenance"]["pack"]["size"] == pack
            losses[pack, path.parent.name] = result["metrics"]["val_loss"]
    diffs = [abs(losses[8, name] - loss) for (pack, name), loss in losses.items() if pack == 1]
    assert len(diffs) == 8 and max(diffs) <= 0.03 and sorted(diffs)[4] <= 0.005


def test_a_worker_killed_mid_pack_costs_only_its_runs_which_report_it_and_a_rerun_resumes(cli, tmp_path, monkeypatch):
    import json
    import os
    import signal

    from wdbench.train import Pack as PackOfRuns

    from helpers import TINY, results_under

    train_epoch = PackOfRuns.train_epoch

    def killed_in_width_8s_second_epoch(self):  # as the out-of-memory killer would, after a checkpoint
        if self.members[0].run.model.width == 8 and self.epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return train_epoch(self)

    monkeypatch.setattr(PackOfRuns, "train_epoch", killed_in_width_8s_second_epoch)
    # three packs on two workers: width 8's dies, width 4's trains beside it, a fresh worker takes width 6's
    sweep = [
        "-m",
        *TINY,
        "data.n_train=320",
        "checkpoint_every_s=0",
        "model.width=8,4,6",
        "seed=0,1",
        "hydra.launcher.n_jobs=2",
        "name=k",
    ]
    code, out, err = cli(*sweep)
    assert code == 1 and err.splitlines()[-1].startswith(
        'wdbench: error: 2 of 6 runs failed (first: WorkerDied("worker process '
    )
    assert "died (SIGKILL: killed from outside, e.g. by the out-of-memory killer) while training this run's pack" in err
    assert (
        "died (SIGKILL: killed from outside, e.g. by the out-of-memory killer) while training 2 runs; a fresh "
        "worker takes the next pack" in out
    )
    results = {p: json.loads(p.read_text()) for p in results_under(tmp_path / "out" / "multirun" / "k")}
    assert sorted((r["model"]["width"], r["status"], len(r["history"])) for r in results.values()) == [
        (4, "completed", 2),
        (4, "completed", 2),
        (6, "completed", 2),
        (6, "completed", 2),
        (8, "running", 1),
        (8, "running", 1),
    ]
    assert all((p.parent / "checkpoint.pt").is_file() for p, r in results.items() if r["status"] == "running")

    monkeypatch.setattr(PackOfRuns, "train_epoch", train_epoch)
    code, out, err = cli(*sweep)
    assert code == 0 and "6 runs, 4 already finished (skipped), 2 to launch" in out + err
    resumed = [json.loads(p.read_text()) for p in results if results[p]["status"] == "running"]
    assert [(r["status"], r["resumes"], len(r["history"])) for r in resumed] == [("completed", 1, 2)] * 2


@pytest.mark.slow
def test_a_stopped_launcher_has_its_workers_checkpoint_their_packs_and_a_rerun_resumes_them(cli, tmp_path, monkeypatch):
    import json
    import os
    import signal

    from wdbench.train import Pack as PackOfRuns

    from helpers import TINY, results_under

    train_epoch = PackOfRuns.train_epoch

    def launcher_stopped_in_width_8s_second_epoch(self):  # kill <launcher>, as a user or a batch system would
        if self.members[0].run.model.width == 8 and self.epoch == 1:
            os.kill(os.getppid(), signal.SIGTERM)
        return train_epoch(self)

    monkeypatch.setattr(PackOfRuns, "train_epoch", launcher_stopped_in_width_8s_second_epoch)
    sweep = [
        "-m",
        *TINY,
        "data.n_train=320",
        "optim.epochs=3",
        "checkpoint_every_s=0",
        "model.width=8,4,6",
        "seed=0,1",
        "hydra.launcher.n_jobs=2",
        "name=t",
    ]
    code, out, err = cli(*sweep)
    assert code == 128 + signal.SIGTERM and err.splitlines()[-1] == (
        "wdbench: error: stopped by SIGTERM: the runs in training were checkpointed at their next step; rerun the "
        "same command to resume them"
    )
    results = {p: json.loads(p.read_text()) for p in results_under(tmp_path / "out" / "multirun" / "t")}
    stopped = {p: r for p, r in results.items() if r["status"] == "running"}
    assert sorted(r["model"]["width"] for r in stopped.values())[-2:] == [8, 8]  # its pack had not finished
    assert all(
        (p.parent / "checkpoint.pt").is_file() and r["preemptions"][0]["signal"] == "SIGTERM"
        for p, r in stopped.items()
    )

    monkeypatch.setattr(PackOfRuns, "train_epoch", train_epoch)
    code, out, err = cli(*sweep)
    assert code == 0
    finished = [json.loads(p.read_text()) for p in results_under(tmp_path / "out" / "multirun" / "t")]
    assert sorted((r["model"]["width"], r["status"], len(r["history"])) for r in finished) == [
        (4, "completed", 3),
        (4, "completed", 3),
        (6, "completed", 3),
        (6, "completed", 3),
        (8, "completed", 3),
        (8, "completed", 3),
    ]
    assert all(
        r["resumes"] == 1 for p, r in zip(results_under(tmp_path / "out" / "multirun" / "t"), finished) if p in stopped
    )


def test_an_epochs_augmentation_is_drawn_at_its_start_as_step_by_step_and_steps_do_no_host_work(monkeypatch):
    """Each member's crop/flip offsets are those a draw at every step from its generator gives (the
    numbers of every earlier run); within an epoch no step copies anything to the device nor draws
    on the host, whatever K (a copy to a GPU makes the host wait for it)."""
    import wdbench.data as data
    import wdbench.train as train
    from wdbench.data import crop_flip_offsets

    used, calls, per_step = [], {"to": 0, "randint": 0}, []
    real_crop, real_to, real_randint = train.crop_flip, torch.Tensor.to, torch.randint

    def crop(x, dy, dx, flip):
        used.append(torch.stack([dy, dx, flip]))
        return real_crop(x, dy, dx, flip)

    def counting(name, real):  # .to: only the calls that name a device (a dtype cast is a kernel, no copy)
        def call(*args, **kwargs):
            calls[name] += name != "to" or "device" in kwargs or any(isinstance(a, (str, torch.device)) for a in args)
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(train, "crop_flip", crop)
    monkeypatch.setattr(torch.Tensor, "to", counting("to", real_to))
    monkeypatch.setattr(data.torch, "randint", counting("randint", real_randint))
    for size in (1, 3):
        pack = Pack(runs("data.augment=true", members=MEMBERS[:size]))
        pack.interrupt = lambda: per_step.append(dict(calls)) and False
        pack.fit()
        steps = pack.steps_per_epoch
        for epoch in range(pack.epochs):  # the polls before steps 1.. of an epoch: nothing happened between them
            within = per_step[epoch * steps : (epoch + 1) * steps]
            assert all(poll == within[0] for poll in within), (size, epoch)
        per_step.clear()
        for k, member in enumerate(pack.members):
            rng = torch.Generator().manual_seed(member.run.seed)
            for epoch in range(pack.epochs):
                torch.randperm(pack.n_train, generator=rng)
                for i in range(steps):
                    drawn = torch.stack(crop_flip_offsets(pack.batch_size, rng)).to(torch.uint8)
                    assert torch.equal(used[epoch * steps + i].view(3, size, -1)[:, k], drawn), (size, k, epoch, i)
        used.clear()


def test_on_a_gpu_machine_the_local_launcher_starts_one_worker_per_gpu_each_pinned_to_it(cli, tmp_path, monkeypatch):
    """Two visible GPUs: two workers (not one per core), each given its own GPU before it touches
    CUDA, packs of up to GPU_PACK split evenly between them (here the runs still train on the CPU,
    which is all this machine has); a parent that initialised CUDA refuses to fork, in one line."""
    import json
    import os

    from helpers import TINY, results_under

    launching = os.getpid()  # (Hydra loads its plugins' modules anew: torch is what can be patched)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: os.getpid() == launching)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    sweep = [
        "-m",
        *TINY,
        "device=auto",
        "optim.epochs=1",
        "data.n_train=320",
        "penalty.log10_coef=-3,-2,-1",
        "seed=0,1",
    ]
    assert cli(*sweep, "name=g")[0] == 0
    results = [json.loads(p.read_text()) for p in results_under(tmp_path / "out" / "multirun" / "g")]
    assert sorted(r["provenance"]["cuda_visible_devices"] for r in results) == ["3"] * 3 + ["5"] * 3
    assert all(r["provenance"]["pack"]["size"] == 3 for r in results)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    code, _, err = cli(*sweep, "name=h")
    assert code == 1 and "CUDA was initialised in the launching process" in err
