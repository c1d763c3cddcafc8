"""The sweeper's hand-over to a launcher. The wdbench sweeper composes and validates every run
before launching any, so it already holds what a launcher needs to pack runs: it passes them as a
``SweepBatch`` to a ``PackingLauncher`` (``launch_planned``). Any other Hydra launcher (Hydra's
basic launcher, the submitit plugin's) gets Hydra's plain job list (``launch``); the sweeper tells
them apart with ``isinstance``.

The leading underscore keeps Hydra's plugin scan out of this module: the scan executes every other
module under hydra_plugins/ again, which would define a second ``PackingLauncher`` that launchers
defined before it are not instances of."""

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar, List, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig


@dataclass(frozen=True)
class SweepBatch:
    """The runs to launch, in launch order (the job numbered ``initial_job_idx + i`` is entry i of
    each list), and how many of the sweep's runs are not in it."""

    overrides: List[List[str]]  # each job's overrides, as Hydra's launch takes them
    configs: List[DictConfig]  # each job's composed config: a launcher need not compose it again
    pack_keys: List[str]  # each job's wdbench.config.pack_key: runs of one key may train as one pack
    skipped: int = 0  # the sweep's runs left out (finished, or being trained by another launch)

    def __post_init__(self) -> None:
        if not len(self.overrides) == len(self.configs) == len(self.pack_keys):
            raise ValueError(
                f"SweepBatch: {len(self.overrides)} overrides, {len(self.configs)} configs and "
                f"{len(self.pack_keys)} pack keys: one of each per job"
            )

    def __len__(self) -> int:
        return len(self.overrides)

    @classmethod
    def compose(cls, config_loader, master_config: DictConfig, job_overrides: Sequence[Sequence[str]]) -> "SweepBatch":
        """The batch of jobs that came without one (a sweeper other than wdbench's), each composed by Hydra."""
        from wdbench.config import pack_key, parse_run_config

        configs = [config_loader.load_sweep_config(master_config, list(overrides)) for overrides in job_overrides]
        return cls([list(o) for o in job_overrides], configs, [pack_key(parse_run_config(c)) for c in configs])


class PackingLauncher(Launcher):
    """A Hydra launcher that packs compatible runs and takes the wdbench sweeper's ``SweepBatch``.
    Listed before the Hydra launcher it extends, so that Hydra's ``launch`` (another sweeper's call)
    composes the batch here and goes the same way."""

    # True: the launcher shows the sweep's progress line itself (counting batch.skipped); False: the
    # sweeper shows it from the launched runs' result files while the launcher waits
    shows_progress: ClassVar[bool] = False

    @abstractmethod
    def launch_planned(self, batch: SweepBatch, initial_job_idx: int) -> Sequence[JobReturn]:
        """Launch every job of ``batch`` and wait for them; one JobReturn per job, in batch order."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        batch = SweepBatch.compose(self.hydra_context.config_loader, self.config, job_overrides)
        return self.launch_planned(batch, initial_job_idx)
