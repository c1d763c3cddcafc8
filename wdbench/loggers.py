"""Optional experiment loggers (``logger=tensorboard|mlflow``): each run's config and per-epoch
metrics through the library's own API. result.json stays the one thing the analysis reads; a
logger is a window on the runs, never their record."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from wdbench.config import LoggerConfig

METRICS = ("train_loss", "val_loss", "val_acc", "decayed_norm", "lr")


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = str(value)
    return out


class TensorBoardLogger:
    """Event files in <run_dir>/tensorboard: a scalar per metric per epoch, the config as text."""

    def __init__(self, run_dir: Path, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in _flat(config).items()))

    def log(self, record: dict) -> None:
        for name in METRICS:
            self.writer.add_scalar(name, record[name], record["epoch"])
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.close()


def mlflow_experiment(client, name: str, store: Optional[Path]) -> str:
    """The id of the MLflow experiment ``name``, created if missing. A sweep's workers start together;
    a tracking server or database refuses a second experiment of one name, but a file store (``store``)
    does not, so there they take turns under a lock."""
    if store is None:
        return _get_or_create_experiment(client, name)
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".wdbench-experiments.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _get_or_create_experiment(client, name)


def _get_or_create_experiment(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    for _ in range(5):
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name)
        except MlflowException:  # another worker created it first
            time.sleep(0.2)
    raise RuntimeError(f"logger=mlflow: could not create or find experiment {name!r}")


class MLflowLogger:
    """One MLflow run per wdbench run: its config as params, a metric per epoch. The MLflow run id
    is kept in result.json, so a resumed run goes on logging into the same MLflow run."""

    def __init__(
        self, cfg: LoggerConfig, config: dict, run_name: str, out_dir: str, sweep: str, run_id: Optional[str] = None
    ):
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = cfg.tracking_uri or (Path(out_dir).resolve() / "mlruns").as_uri()
        from mlflow.utils.file_utils import local_file_uri_to_path

        # a file store: file:... or a plain path (MLflow reads both as one); its path decoded as MLflow does
        store = Path(local_file_uri_to_path(uri)) if urlparse(uri).scheme in ("", "file") else None
        if store is not None:  # a directory per run: safe for many writers; MLflow 3 wants an opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        experiment_id = mlflow_experiment(self.client, cfg.experiment or sweep, store)
        if run_id is None:
            run_id = self.client.create_run(experiment_id, run_name=run_name[:250]).info.run_id
            params = [Param(k[:250], v[:6000]) for k, v in _flat(config).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(run_id, params=params[i : i + 100])
        self.run_id = run_id

    def log(self, record: dict) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(name, float(record[name]), stamp, record["epoch"]) for name in METRICS]
        )

    def close(self, status: str) -> None:
        self.client.set_terminated(
            self.run_id, {"completed": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}.get(status, "KILLED")
        )


def open_logger(
    cfg: LoggerConfig,
    run_dir: Path,
    config: dict,
    run_name: str,
    out_dir: str,
    sweep: str,
    mlflow_run_id: Optional[str] = None,
):
    """The run's experiment logger, or None for ``logger=none``."""
    if cfg.name == "tensorboard":
        return TensorBoardLogger(run_dir, config)
    if cfg.name == "mlflow":
        return MLflowLogger(cfg, config, run_name, out_dir, sweep, mlflow_run_id)
    return None
