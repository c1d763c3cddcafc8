"""SLURM through submitit, a pack of compatible runs per array task (wdbench.train: one stacked
model), so a 300-run study is tens of GPU jobs, not 300. Everything else is the submitit plugin's
SlurmLauncher: the job array, its parameters, and requeueing on the timeout/preemption signal
(``checkpoint`` resubmits the same pack; its members resume from their checkpoints and finished
ones are skipped)."""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from hydra_plugins.wdbench_plugins.launcher import pack_jobs, pack_keys, run_pack

log = logging.getLogger(__name__)


@dataclass
class PackedSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.wdbench_plugins.slurm.PackedSlurmLauncher"
    pack: int = 32  # at most this many compatible runs per array task, trained as one stacked model; 1: each alone


ConfigStore.instance().store(group="hydra/launcher", name="wdbench_slurm", node=PackedSlurmConf, provider="wdbench")


class PackedSlurmLauncher(SlurmLauncher):
    def __init__(self, pack: int = 32, **params: Any) -> None:
        super().__init__(**params)
        self.pack = pack
        self.pack_keys: Optional[List[str]] = None  # of the jobs to launch, when the sweeper knows them

    def __call__(self, jobs: List[tuple], job_dir_key: str, singleton_state) -> List[JobReturn]:
        """One array task: its pack of (number, overrides) jobs, prepared and trained together."""
        import submitit

        Singleton.set_state(singleton_state)
        setup_globals()
        return run_pack(self.hydra_context, self.config, jobs, job_dir_key, job_id=submitit.JobEnvironment().job_id)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        keys = self.pack_keys or pack_keys(self, job_overrides)
        packs = pack_jobs(keys, self.pack)
        # The executor as the plugin's own launch builds it: its init keys, then generic and slurm_ parameters.
        params = dict(self.params)
        executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        generic = BaseQueueConf.__dataclass_fields__
        executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitit 'slurm' sweep output dir: {sweep_dir}; {len(job_overrides)} runs in {len(packs)} "
                 f"array tasks of at most {self.pack}")
        tasks = [[(initial_job_idx + i, list(job_overrides[i])) for i in pack] for pack in packs]
        for task in tasks:
            log.info("\t" + "; ".join(f"#{idx}: {' '.join(filter_overrides(o))}" for idx, o in task))
        state = Singleton.get_state()
        array = executor.map_array(self, tasks, ["hydra.sweep.dir"] * len(tasks), [state] * len(tasks))
        returns: List[Optional[JobReturn]] = [None] * len(job_overrides)
        for pack, job in zip(packs, array):
            for i, ret in zip(pack, job.results()[0]):
                returns[i] = ret
        return returns
