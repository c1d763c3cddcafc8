"""The SLURM presets as sbatch renders them (no cluster needed): what a GPU array task asks for."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from hydra_plugins.wdbench_plugins.slurm import check_gpu_request, gpus_requested
from wdbench.app import CONF_DIR


@pytest.fixture(autouse=True)
def srun_found(monkeypatch):
    """submitit's executor wants srun on the PATH; rendering a script needs none."""
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))


def sbatch(tmp_path, *overrides) -> tuple:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra.sweep.dir={tmp_path}", *overrides], return_hydra_config=True)
    launcher = instantiate({**cfg.hydra.launcher, "submitit_folder": str(tmp_path / "%j")})
    text = launcher.executor()._executor._make_submission_file_text(command="true", uid="x")
    return launcher, [line for line in text.splitlines() if line.startswith("#SBATCH")]


def test_the_gpu_preset_asks_for_one_gpu_per_pack_and_the_cpu_preset_for_none(tmp_path):
    launcher, lines = sbatch(tmp_path, "hydra/launcher=slurm", "hydra.launcher.constraint=h100")
    for want in (
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=32GB",
        "--signal=USR2@120",
        "--time=120",
        "--constraint=h100",
        "--ntasks-per-node=1",
    ):
        assert f"#SBATCH {want}" in lines
    assert launcher.gpus == 1 and launcher.pack == 128
    launcher, lines = sbatch(tmp_path, "hydra/launcher=slurm_cpu")
    assert (
        not any("--gpus" in line or "--gres" in line for line in lines) and launcher.gpus == 0 and launcher.pack == 32
    )
    launcher, lines = sbatch(
        tmp_path,
        "hydra/launcher=slurm",
        "hydra.launcher.gpus_per_node=null",
        "hydra.launcher.gres=gpu:a100:1",
        "hydra.launcher.pack=64",
    )
    assert "#SBATCH --gres=gpu:a100:1" in lines and launcher.gpus == 1 and launcher.pack == 64


@pytest.mark.parametrize(
    "params, message",
    [
        ({"gpus_per_node": 2}, "hydra.launcher.gpus_per_node=2: a pack trains on one GPU; allowed: 1 or null"),
        ({"gpus_per_task": 4}, "hydra.launcher.gpus_per_task=4: a pack trains on one GPU; allowed: 1 or null"),
        ({"gres": "gpu:h100:2"}, "hydra.launcher.gres=gpu:h100:2: a pack trains on one GPU; allowed: gpu:1"),
        ({"gpus_per_node": 1, "tasks_per_node": 2}, "hydra.launcher.tasks_per_node, hydra.launcher.nodes: one task"),
    ],
)
def test_an_array_task_that_asks_for_more_than_one_gpu_is_refused_in_one_line(params, message):
    with pytest.raises(ValueError) as err:  # (Hydra loads its plugins anew: the class is not this one)
        check_gpu_request(params)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert gpus_requested({"gres": "gpu"}) == gpus_requested({"gres": "gpu:h100"}) == 1
    assert gpus_requested({"gres": "gpu:1,tmpfs:10"}) == 1 and gpus_requested({"gres": "tmpfs:10G"}) == 0


def test_a_sweep_asking_for_two_gpus_per_task_exits_2_before_submitting(cli, tmp_path):
    from helpers import TINY

    code, _, err = cli("-m", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=2", *TINY, "seed=0,1", "name=two")
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        "wdbench: error: hydra.launcher.gpus_per_node=2: a pack trains on one GPU"
    )
    assert not (tmp_path / "out" / "multirun" / "two" / ".submitit").exists()
