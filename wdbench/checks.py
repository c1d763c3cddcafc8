"""The checks of a run's config that need its data's sizes or its model, on top of the schema's
(wdbench.config): what a run to be trained is checked with, before anything is written. Building the
model (on the meta device) is paid only for an exclude pattern: validating a sweep needs neither
torch nor timm otherwise."""

from __future__ import annotations

import fnmatch
from typing import Any

from omegaconf import DictConfig

from wdbench.config import EXCLUDE_KINDS, RunConfig, _check, parse_run_config  # one check helper for both
from wdbench.sources import data_fingerprint, input_shape, train_size


def checked_run_config(cfg: DictConfig | dict) -> RunConfig:
    """A composed config, parsed and checked against the schema, its data and its model."""
    run = parse_run_config(cfg)
    _fill_fingerprint(run)
    _check_patches(run)
    _check_batch_size(run)
    _check_exclude(run)
    return run


def _fill_fingerprint(run: RunConfig) -> None:
    """Your own data are read (a bad file is a config error here, before any run starts) and named by
    their fingerprint, which a run's identity holds: a sweep resumed on other data is not the same sweep."""
    d = run.data
    found = data_fingerprint(d)
    _check(
        d.fingerprint is None or d.fingerprint == found,
        f"data.fingerprint={d.fingerprint}: the data read are {found}; allowed: {found} or null",
    )
    d.fingerprint = found


def _check_patches(run: RunConfig) -> None:
    m = run.model
    if hasattr(m, "patch_size"):
        size = input_shape(run)[0]
        _check(size % m.patch_size == 0, f"model.patch_size={m.patch_size}: must divide the image size {size}")


def _check_batch_size(run: RunConfig) -> None:
    n_train = train_size(run.data)
    _check(
        1 <= run.optim.batch_size <= n_train,
        f"optim.batch_size={run.optim.batch_size}: must be in [1, n_train={n_train}]",
    )


_META_MODELS: dict[tuple, Any] = {}


def _meta_model(run: RunConfig):
    """The run's model built on the meta device (no memory), once per distinct model and input."""
    side, in_chans, n_classes = input_shape(run)
    key = (repr(run.model), side, in_chans, n_classes)
    if key not in _META_MODELS:
        import torch

        from wdbench.models import build_model

        with torch.device("meta"):
            _META_MODELS[key] = build_model(run.model, in_chans, n_classes, side)
    return _META_MODELS[key]


def _check_exclude(run: RunConfig) -> None:
    """penalty.exclude must leave something decayed, and each of its name patterns must match a
    parameter: a typo would decay what it meant to keep."""
    patterns = [e for e in run.penalty.exclude if e not in EXCLUDE_KINDS]
    if not patterns:  # every model here has conv or linear weights, which are neither biases nor norm parameters
        return
    from wdbench.penalty import split_decayed

    model = _meta_model(run)
    _check(
        bool(split_decayed(model, run.penalty.exclude)[0]),
        f"penalty.exclude={list(run.penalty.exclude)}: excludes every parameter of this model; nothing would "
        "be decayed",
    )
    names = [name for name, _ in model.named_parameters()]
    for entry in patterns:
        _check(
            any(fnmatch.fnmatchcase(n, entry) for n in names),
            f"penalty.exclude: {entry!r} matches no parameter of this model; allowed: "
            f"{', '.join(EXCLUDE_KINDS)}, or a name pattern that matches one (here e.g. {names[0]}, {names[-1]})",
        )
