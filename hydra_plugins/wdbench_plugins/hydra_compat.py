"""Every use of Hydra's internals, in one place: the classes the plugins build on, the override
machinery the sweeper uses to compose configs fast, and JobReturn's private value. Hydra 1.3 has no
public API for these; hydra-core and hydra-submitit-launcher are pinned to the minor versions tested
(pyproject.toml, exact in requirements.lock), and a Hydra upgrade is checked here first."""

from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig

__all__ = [
    "BasicLauncher",
    "BasicSweeper",
    "ConfigLoaderImpl",
    "apply_overrides",
    "get_overrides_dirname",
    "job_return",
    "job_value",
    "set_job_value",
]


def apply_overrides(overrides: list, cfg: DictConfig) -> None:
    """Apply parsed overrides to a composed config in place (what Hydra does per job)."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def job_value(ret: JobReturn) -> Any:
    """What a job returned, without raising for a failed one (JobReturn.return_value would)."""
    return ret._return_value


def set_job_value(ret: JobReturn, value: Any) -> None:
    ret._return_value = value


def job_return(overrides: list, status: JobStatus, value: Any) -> JobReturn:
    """A JobReturn made here rather than by Hydra's run_job (a run whose worker died)."""
    return JobReturn(overrides=list(overrides), status=status, _return_value=value)
