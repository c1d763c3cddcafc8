"""The sweeper's hand-over to launchers (hydra_plugins/wdbench_plugins/_handover.py): a wdbench
launcher gets the planned SweepBatch, any other Hydra launcher the plain job list. Training is
faked here (a result file written from the job's config): what is tested is who gets what."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.wdbench_plugins._handover import PackingLauncher, SweepBatch
from hydra_plugins.wdbench_plugins.hydra_compat import BasicLauncher, job_return
from wdbench.results import write_result

SWEEP = ["-m", "model.width=4", "optim.epochs=1", "progress=false", "device=cpu", "name=h"]


def fake_training(cfg: DictConfig):
    """A completed result of the job's config, as a run that trained would leave it."""
    run_dir = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
    config = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "hydra"
    }
    write_result(run_dir, {"status": "completed", "config": config})
    return job_return(list(cfg.hydra.overrides.task), JobStatus.COMPLETED, "completed")


@pytest.fixture
def compositions(monkeypatch):
    """Hydra's own compositions of a job's config, counted."""
    from hydra_plugins.wdbench_plugins.hydra_compat import ConfigLoaderImpl

    calls, compose = [], ConfigLoaderImpl.load_sweep_config

    def counted(self, master_config, sweep_overrides):
        calls.append(list(sweep_overrides))
        return compose(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counted)
    return calls


def test_a_foreign_launcher_gets_the_plain_job_list_without_the_skipped_runs(cli, monkeypatch):
    received = []

    def launch(self, job_overrides, initial_job_idx):  # Hydra's basic launcher, training faked
        received.append(([list(o) for o in job_overrides], initial_job_idx))
        return [
            fake_training(self.hydra_context.config_loader.load_sweep_config(self.config, list(o)))
            for o in job_overrides
        ]

    Plugins.instance()  # its scan executes the plugin modules again: the class to patch is the one after it
    from hydra_plugins.wdbench_plugins.hydra_compat import BasicLauncher as HydrasBasicLauncher  # hydra/launcher=basic

    monkeypatch.setattr(HydrasBasicLauncher, "launch", launch)
    assert not isinstance(HydrasBasicLauncher(), PackingLauncher)
    assert cli(*SWEEP, "hydra/launcher=basic", "seed=0")[0] == 0
    code, out, err = cli(*SWEEP, "hydra/launcher=basic", "seed=0,1")
    assert code == 0 and "2 runs, 1 already finished (skipped), 1 to launch" in out + err
    assert [(len(jobs), first) for jobs, first in received] == [(1, 0), (1, 0)]
    assert [[o for o in jobs[0] if o.startswith("seed=")] for jobs, _ in received] == [["seed=0"], ["seed=1"]]


def test_the_local_launcher_gets_the_batch_the_sweeper_composed_without_the_skipped_runs(
    cli, monkeypatch, compositions
):
    Plugins.instance()  # its scan executes the plugin modules again: the class to patch is the one after it
    from hydra_plugins.wdbench_plugins import launcher

    batches = []

    def launch_planned(self, batch, initial_job_idx):  # training faked, from the batch's own configs
        batches.append(batch)
        return [fake_training(cfg) for cfg in batch.configs]

    monkeypatch.setattr(launcher.LocalLauncher, "launch_planned", launch_planned)
    monkeypatch.setattr(launcher.LocalLauncher, "launch", None)  # Hydra's entry is not the one taken
    assert cli(*SWEEP, "seed=0")[0] == 0
    del compositions[:]
    code, out, err = cli(*SWEEP, "seed=0,1,2")
    assert code == 0 and "3 runs, 1 already finished (skipped), 2 to launch" in out + err
    batch = batches[-1]
    assert [[o for o in job if o.startswith("seed=")] for job in batch.overrides] == [["seed=1"], ["seed=2"]]
    assert batch.skipped == 1 and [list(cfg.hydra.overrides.task) for cfg in batch.configs] == batch.overrides
    assert [cfg.seed for cfg in batch.configs] == [1, 2] and len(set(batch.pack_keys)) == 1  # seeds pack together
    assert len(compositions) == 1  # the sweeper's one Hydra composition; the launcher composed none


def test_a_wdbench_launcher_called_by_another_sweeper_composes_its_batch_itself(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from wdbench.app import CONF_DIR

    class Recording(PackingLauncher, BasicLauncher):
        def launch_planned(self, batch, initial_job_idx):
            self.got = batch, initial_job_idx
            return []

    jobs = [["model.width=4", "seed=0"], ["model.width=4", "seed=1"], ["model.width=8", "seed=0"]]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        launcher = Recording()
        launcher.hydra_context = SimpleNamespace(config_loader=loader)
        launcher.config = loader.load_configuration(
            "config", overrides=[f"out_dir={tmp_path}"], run_mode=RunMode.MULTIRUN
        )
        launcher.launch(jobs, initial_job_idx=5)
    batch, first = launcher.got
    assert first == 5 and batch.overrides == jobs and batch.skipped == 0
    assert [(cfg.model.width, cfg.seed) for cfg in batch.configs] == [(4, 0), (4, 1), (8, 0)]
    assert batch.pack_keys[0] == batch.pack_keys[1] != batch.pack_keys[2]


def test_the_slurm_launcher_submits_the_batchs_packs_as_one_array_without_composing(tmp_path, monkeypatch):
    from hydra_plugins.wdbench_plugins.slurm import PackedSlurmLauncher

    submitted = []

    class Job:
        def __init__(self, job_id, task):
            self.job_id, self.task = job_id, task

        def results(self):
            return [[job_return(overrides, JobStatus.COMPLETED, "completed") for _, overrides in self.task]]

    class Executor:
        def map_array(self, fn, tasks, dirs, states):
            submitted.extend(tasks)
            return [Job(f"77_{i}", task) for i, task in enumerate(tasks)]

    launcher = PackedSlurmLauncher(pack=2)
    launcher.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})  # no loader: none composed
    monkeypatch.setattr(launcher, "executor", Executor)
    jobs = [["seed=0"], ["seed=1"], ["width=8"], ["seed=2"]]
    batch = SweepBatch(jobs, [OmegaConf.create()] * 4, ["a", "a", "b", "a"], skipped=3)
    returns = launcher.launch_planned(batch, initial_job_idx=0)
    assert submitted == [[(0, ["seed=0"])], [(1, ["seed=1"]), (3, ["seed=2"])], [(2, ["width=8"])]]  # packs by key
    assert [r.overrides for r in returns] == jobs  # in the batch's order, whatever the packs
    from wdbench.results import submitted_record

    assert submitted_record(tmp_path, "77").is_file()  # each task's runs, for wdbench.status


def test_a_batch_has_one_config_and_pack_key_per_job():
    with pytest.raises(ValueError, match="one of each per job"):
        SweepBatch([["seed=0"], ["seed=1"]], [OmegaConf.create()], ["a", "a"])
