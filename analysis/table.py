"""``collect``: every ``result.json`` under some sweep directories -> one tidy table, one row per run
(its columns: docs/analysis.md#the-results-table)."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from wdbench.config import MODEL_SCHEMAS, DataConfig, OptimConfig, PenaltyConfig, identity
from wdbench.results import RESULT_FILE, DamagedFile, device_type, read_result

COLUMNS = [
    "model",
    "width",
    "n_params",
    "n_decayed",
    "norm",
    "apply",
    "lam",
    "coef",
    "optimizer",
    "lr",
    "batch_size",
    "n_train",
    "epochs",
    "seed",
    "status",
    "val_loss",
    "val_acc",
    "train_loss",
    "decayed_norm",
    "run_dir",
]
EXTRA = ["dataset", "best_val_loss", "best_val_acc", "error", "predictions", "device"]
CONFIG = "config."  # prefix of the columns that hold a run's identity fields, flattened (config.optim.lr, ...)


class AnalysisError(ValueError):
    """Bad input to an analysis verb; the message is one line."""


def config_columns(config: dict) -> dict:
    """The run's identity fields (what it computes, per ``wdbench.config.identity``) as flat columns;
    lists become JSON text so that they can be compared and grouped."""
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = json.dumps(value) if isinstance(value, list) else value

    walk(identity(with_defaults(config)), CONFIG)
    return flat


def with_defaults(config: dict) -> dict:
    """A recorded config with the schema's defaults under it: a field added after a run was recorded
    takes the value the run had (its default), so that old and new runs compare."""
    schemas = {
        "data": DataConfig,
        "optim": OptimConfig,
        "penalty": PenaltyConfig,
        "model": MODEL_SCHEMAS.get((config.get("model") or {}).get("name")),
    }
    return {
        **config,
        **{
            section: {**asdict(schema()), **(config.get(section) or {})}
            for section, schema in schemas.items()
            if schema is not None and section in config
        },
    }


def row(result: dict, path: Path) -> dict:
    """One table row; a run that failed before training has only its config to go by."""
    metrics, config = result.get("metrics") or {}, result.get("config") or {}
    model = result.get("model") or {
        "name": config.get("model", {}).get("name"),
        "width": config.get("model", {}).get("width"),
    }
    pen = result.get("penalty") or config.get("penalty", {})
    opt = result.get("optim") or config.get("optim", {})
    data = result.get("data") or {**config.get("data", {}), "batch_size": opt.get("batch_size")}
    return {
        "model": model["name"],
        "width": model["width"],
        "n_params": model.get("n_params", np.nan),
        "n_decayed": model.get("n_decayed", np.nan),
        "norm": pen.get("norm"),
        "apply": pen.get("apply"),
        "lam": pen.get("lam", np.nan),
        "coef": pen.get("coef", np.nan),
        "optimizer": opt.get("name"),
        "lr": opt.get("lr", np.nan),
        "batch_size": data.get("batch_size"),
        "n_train": data.get("n_train"),
        "epochs": opt.get("epochs"),
        "seed": result["seed"],
        "status": result["status"],
        "val_loss": metrics.get("val_loss", np.nan),
        "val_acc": metrics.get("val_acc", np.nan),
        "train_loss": metrics.get("train_loss", np.nan),
        "decayed_norm": metrics.get("decayed_norm", np.nan),
        "run_dir": str(path.parent),
        "dataset": data.get("name"),
        "best_val_loss": metrics.get("best_val_loss", np.nan),
        "best_val_acc": metrics.get("best_val_acc", np.nan),
        "error": result.get("error", ""),
        "predictions": json.dumps(config.get("predictions") or [], sort_keys=True),
        "device": "+".join(result.get("device_types") or [device_type(result.get("provenance") or {})]),
        **config_columns(config),
    }


def warn_mixed_devices(df: pd.DataFrame) -> None:
    """One line per setting whose runs trained on different kinds of device (or a run on several):
    their float rounding differs, which a fit would treat as seed noise."""
    configs = [
        c for c in df.columns if c.startswith(CONFIG) and not c.startswith(CONFIG + "penalty.") and c != CONFIG + "seed"
    ]
    for _, runs in df.groupby(configs, dropna=False, sort=True) if configs else []:
        devices = sorted(set(runs["device"].dropna()))
        if len(devices) > 1:
            where = runs["run_dir"].iloc[0]
            print(
                f"analysis: warning: {len(runs)} runs of one setting trained on {', '.join(devices)} (e.g. {where}); "
                "their rounding differs: rerun them on one kind of device to compare like with like",
                file=sys.stderr,
            )


def collect(dirs: Iterable[str]) -> pd.DataFrame:
    """Every readable result under ``dirs``; a damaged one is skipped with one warning line naming it."""
    rows, damaged = [], 0
    for d in dirs:
        if not Path(d).is_dir():
            raise AnalysisError(f"{d}: directory not found")
        for path in sorted(Path(d).rglob(RESULT_FILE)):
            try:
                rows.append(row(read_result(path.parent), path))
            except DamagedFile as err:
                damaged += 1
                print(f"analysis: warning: skipped {err}", file=sys.stderr)
    if damaged:
        print(
            f"analysis: warning: {damaged} damaged result file(s) skipped; rerunning their sweep trains them again",
            file=sys.stderr,
        )
    if not rows:
        raise AnalysisError(f"no result.json under {', '.join(map(str, dirs))}")
    configs = sorted({c for r in rows for c in r if c.startswith(CONFIG)})
    df = pd.DataFrame(rows, columns=COLUMNS + EXTRA + configs).sort_values(
        ["model", "norm", "apply", "optimizer", "width", "lam", "seed"], ignore_index=True
    )
    warn_mixed_devices(df)
    return df


def write_table(df: pd.DataFrame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if str(path).endswith(".parquet"):
        if importlib.util.find_spec("pyarrow") is None:
            raise AnalysisError(f"--out {path}: .parquet needs pyarrow (pip install pyarrow); .csv needs nothing")
        df.to_parquet(path, index=False)
    elif str(path).endswith(".csv"):
        df.to_csv(path, index=False)
    elif str(path).endswith(".csv.gz"):  # no time stamp in the header: the same table gives the same bytes
        df.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
    else:
        raise AnalysisError(f"--out {path}: unknown table format; allowed: .csv, .csv.gz, .parquet")


def read_table(path: str) -> pd.DataFrame:
    if not Path(path).is_file():
        raise AnalysisError(f"{path}: table not found")
    df = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise AnalysisError(f"{path}: missing columns: {', '.join(missing)}")
    if not any(c.startswith(CONFIG) for c in df.columns):
        raise AnalysisError(
            f"{path}: no {CONFIG}* columns (the runs' configs), so settings cannot be told apart; "
            "collect it again with this version: python -m analysis collect DIR --out TABLE"
        )
    if df.empty:
        raise AnalysisError(f"{path}: the table has no rows")
    return df
