"""SLURM through submitit, a pack of compatible runs per array task (wdbench.train: one stacked
model), so a 300-run study is tens of GPU jobs, not 300. Everything else is the submitit plugin's
SlurmLauncher: the job array, its parameters, and requeueing on the timeout/preemption signal
(``checkpoint`` resubmits the same pack; its members resume from their checkpoints and finished
ones are skipped)."""

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, setup_globals

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from hydra_plugins.wdbench_plugins._handover import PackingLauncher, SweepBatch
from hydra_plugins.wdbench_plugins.launcher import GPU_PACK, pack_jobs, run_pack
from wdbench.results import atomic_write_text, submitted_record

log = logging.getLogger(__name__)


CPU_TASK_PACK = 32  # runs per array task without a GPU


@dataclass
class PackedSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.wdbench_plugins.slurm.PackedSlurmLauncher"
    # at most this many compatible runs per array task, trained as one stacked model (1: each alone);
    # null: 128 with a GPU (the node's free memory splits it further), 32 without
    pack: Optional[int] = None


class SlurmConfigError(ValueError):
    """A launcher setting this plugin cannot honour; one line naming the field and what is allowed."""


def gpus_requested(params: dict) -> int:
    """GPUs each array task asks for (gpus_per_node, gpus_per_task or a gres of gpu[:type]:n)."""
    from_gres = 0
    for entry in str(params.get("gres") or "").split(","):  # gpu, gpu:2, gpu:h100, gpu:h100:1, tmpfs:10G, ...
        parts = entry.strip().split(":")
        if parts[0] == "gpu":
            from_gres += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return max(int(params.get("gpus_per_node") or 0), int(params.get("gpus_per_task") or 0), from_gres)


def check_gpu_request(params: dict) -> None:
    """A pack trains on one GPU: an array task that asks for more (or runs several tasks, which
    submitit would give the same pack) would leave GPUs idle; more array tasks is the way to more GPUs."""
    for key in ("gpus_per_node", "gpus_per_task"):
        if (params.get(key) or 0) > 1:
            raise SlurmConfigError(
                f"hydra.launcher.{key}={params[key]}: a pack trains on one GPU; allowed: 1 or null "
                "(more GPUs: more array tasks at once, hydra.launcher.array_parallelism)"
            )
    if gpus_requested(params) > 1:
        raise SlurmConfigError(
            f"hydra.launcher.gres={params['gres']}: a pack trains on one GPU; allowed: gpu:1, gpu:<type>:1 or null"
        )
    if (params.get("tasks_per_node") or 1) > 1 or (params.get("nodes") or 1) > 1:
        raise SlurmConfigError(
            "hydra.launcher.tasks_per_node, hydra.launcher.nodes: one task on one node per array "
            "task (a pack); allowed: 1"
        )


ConfigStore.instance().store(group="hydra/launcher", name="wdbench_slurm", node=PackedSlurmConf, provider="wdbench")


class PackedSlurmLauncher(PackingLauncher, SlurmLauncher):
    # shows_progress stays False: it waits on the array without a line; the sweeper reads the result files

    def __init__(self, pack: Optional[int] = None, **params: Any) -> None:
        super().__init__(**params)
        self.gpus = gpus_requested(self.params)
        self.pack = pack or (GPU_PACK if self.gpus else CPU_TASK_PACK)

    def __call__(self, jobs: List[tuple], job_dir_key: str, singleton_state) -> List[JobReturn]:
        """One array task: its pack of (number, overrides) jobs, prepared and trained together."""
        import submitit

        Singleton.set_state(singleton_state)
        setup_globals()
        if self.gpus:  # a task given a GPU trains on it: device=auto on a node without one fails, saying so
            os.environ["WDBENCH_AUTO_DEVICE"] = "cuda"
        return run_pack(self.hydra_context, self.config, jobs, job_dir_key, job_id=submitit.JobEnvironment().job_id)

    def executor(self):
        """The executor as the plugin's own launch builds it: its init keys, then generic and slurm_ parameters."""
        import submitit

        params = dict(self.params)
        executor = submitit.AutoExecutor(
            cluster="slurm", folder=params.pop("submitit_folder"), slurm_max_num_timeout=params.pop("max_num_timeout")
        )
        generic = BaseQueueConf.__dataclass_fields__
        executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
        return executor

    def launch_planned(self, batch: SweepBatch, initial_job_idx: int) -> Sequence[JobReturn]:
        """The batch's packs as one job array. Its composed configs are not sent: each array task
        composes its own pack's on its node (``__call__``)."""
        try:
            check_gpu_request(self.params)
        except SlurmConfigError as err:
            print(f"wdbench: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        packs = pack_jobs(batch.pack_keys, self.pack)
        executor = self.executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            f"Submitit 'slurm' sweep output dir: {sweep_dir}; {len(batch)} runs in {len(packs)} "
            f"array tasks of at most {self.pack}"
        )
        tasks = [[(initial_job_idx + i, list(batch.overrides[i])) for i in pack] for pack in packs]
        for task in tasks:
            log.info("\t" + "; ".join(f"#{idx}: {' '.join(filter_overrides(o))}" for idx, o in task))
        state = Singleton.get_state()
        array = executor.map_array(self, tasks, ["hydra.sweep.dir"] * len(tasks), [state] * len(tasks))
        submitted = {job.job_id: [overrides for _, overrides in task] for job, task in zip(array, tasks)}
        record = submitted_record(sweep_dir, array[0].job_id.split("_")[0]) if array else None
        if record:  # what wdbench.status reads, not submitit's pickles
            atomic_write_text(record, json.dumps(submitted, indent=1) + "\n")
        returns: List[Optional[JobReturn]] = [None] * len(batch)
        for pack, job in zip(packs, array):
            for i, ret in zip(pack, job.results()[0]):
                returns[i] = ret
        return returns
