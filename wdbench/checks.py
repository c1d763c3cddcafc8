"""The checks of a run's config that need its data's sizes or its model, on top of the schema's
(wdbench.config): what a run to be trained is checked with, before anything is written. Building the
model (on the meta device) is paid only for an exclude pattern or model=timm: validating a sweep of
the built-in models needs neither torch nor timm otherwise."""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from typing import Any

from omegaconf import DictConfig

from wdbench.config import (  # one check helper for both
    EXCLUDE_KINDS,
    ConfigError,
    RunConfig,
    TimmConfig,
    _check,
    parse_run_config,
    width_rule,
)
from wdbench.sources import data_fingerprint, input_shape, train_size


def checked_run_config(cfg: DictConfig | dict) -> RunConfig:
    """A composed config, parsed and checked against the schema, its data and its model."""
    run = parse_run_config(cfg)
    _fill_fingerprint(run)
    _check_patches(run)
    _check_batch_size(run)
    _check_timm(run)
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


def _meta_model(run: RunConfig, width: "int | None" = None):
    """The run's model (at ``width``: else its own) built on the meta device (no memory), once per
    distinct model and input."""
    side, in_chans, n_classes = input_shape(run)
    model = run.model if width is None else replace(run.model, width=width)
    key = (repr(model), side, in_chans, n_classes)
    if key not in _META_MODELS:
        import torch

        from wdbench.models import build_model

        with torch.device("meta"):
            _META_MODELS[key] = build_model(model, in_chans, n_classes, side)
    return _META_MODELS[key]


def _check_timm(run: RunConfig) -> None:
    """model=timm: the architecture builds with its rule (one line naming what timm refused), the rule
    changes some parameter's shape between model.width and twice that, a batch of the data's images
    passes through to (batch, classes) logits, and under μP every parameter's role can be read."""
    m = run.model
    if not isinstance(m, TimmConfig):
        return
    model = _meta_model(run)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    wider = {name: p.shape for name, p in _meta_model(run, 2 * m.width).named_parameters()}
    key = width_rule(m.arch, m.rules)
    _check(
        shapes != wider,
        f"model.rules.{key}={m.rules[key]}: does not change the width of model.arch={m.arch} (every parameter "
        f"has the same shape at model.width={m.width} and {2 * m.width}); name constructor arguments that set "
        "its channels or embedding size",
    )
    _check_forward(run, model)
    if m.param == "mup":
        from wdbench.parameterisation import model_scalings

        side, in_chans, n_classes = input_shape(run)
        model_scalings(m, model, in_chans, n_classes, side)  # a ConfigError where a role cannot be read


def _check_forward(run: RunConfig, model) -> None:
    """A training batch of the data's images through the model on the meta device (shapes only)."""
    import torch

    from wdbench.models import describe_error

    side, in_chans, n_classes = input_shape(run)
    try:
        out = model.train()(torch.empty(2, in_chans, side, side, device="meta"))
    except NotImplementedError:  # an operation the meta device lacks: the real run will tell
        return
    except Exception as err:
        if "meta" in str(err):
            return
        raise ConfigError(
            f"model.arch={run.model.arch}: a {side} px image does not pass through it ({describe_error(err)}); "
            "set data.image_size, or model.kwargs that fit the image (e.g. +model.kwargs.patch_size=1)"
        ) from None
    _check(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (2, n_classes),
        f"model.arch={run.model.arch}: in training it gives {_shape(out)} for a batch of 2, not (2, {n_classes}) "
        "logits; choose an architecture that returns logits",
    )


def _shape(out: Any) -> str:
    return f"shape {tuple(out.shape)}" if hasattr(out, "shape") else f"a {type(out).__name__}"


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
