"""Bad input: one line naming the field and what is allowed, exit code 2, no result touched."""

import copy
import functools
import importlib.util
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.wdbench_plugins.hydra_compat import apply_overrides
from wdbench.app import CONF_DIR, run_job
from wdbench.checks import checked_run_config
from wdbench.config import ConfigError, TimmConfig, parse_run_config
from wdbench.train import resolve_device  # imported here: its first import sets torch's environment variables

from helpers import TINY


def composed(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


GROUPS = ("model", "data", "optim", "penalty", "logger", "experiment")


@functools.lru_cache(maxsize=None)
def _composed_choices(choices: tuple) -> DictConfig:
    return composed(*choices)


def quickly_composed(*overrides):
    """``composed(*overrides)`` in milliseconds, not a tenth of a second: each choice of config groups is
    composed once, and the other overrides are parsed and applied to a copy by the code that Hydra's
    compose applies them with (checked against compose by a test below)."""
    choices = tuple(o for o in overrides if o.lstrip("~+").partition("=")[0] in GROUPS)
    cfg = copy.deepcopy(_composed_choices(choices))
    values = OverridesParser.create().parse_overrides([o for o in overrides if o not in choices])
    apply_overrides(values, cfg)  # what Hydra's compose applies them with (hydra_compat: its internals)
    return cfg


BAD = [
    (["penalty=summ"], "penalty=summ: unknown choice; allowed: mean, per_step, sum"),
    (["optim=null"], "optim=null: a config group needs a choice; allowed: adam, adamw, sgd"),
    (["model=vgg"], "model=vgg: unknown choice; allowed: linear, mixer, resnet, timm, vit"),
    (["data=mnist"], "data=mnist: unknown choice; allowed: arrays, cifar10, cifar100, digits, folder, ridge, teacher"),
    (["optim=lbfgs"], "optim=lbfgs: unknown choice; allowed: adam, adamw, sgd"),
    (["penalty.apply=sideways"], "penalty.apply='sideways': unknown choice; allowed: coupled, decoupled, independent"),
    (["penalty.lam=-0.1"], "penalty.lam=-0.1: must be in [0, 1e+30]"),
    (["penalty.lam=inf"], "penalty.lam=inf: must be in [0, 1e+30]"),
    (["penalty=per_step", "penalty.lam=1e308"], "penalty.lam=1e+308: must be in [0, 1e+30]"),
    (["penalty.log10_lam=nan"], "penalty.log10_lam=nan: must be in [-30, 30] or null"),
    (["penalty.log10_lam=400"], "penalty.log10_lam=400.0: must be in [-30, 30] or null"),
    (["penalty.log10_coef=-301"], "penalty.log10_coef=-301.0: must be in [-30, 30] or null"),
    (["penalty.exclude=bias"], "penalty.exclude=bias: expected a list, e.g. penalty.exclude=[bias,norm]"),
    (
        ["penalty.exclude=[bais,norm]"],
        "penalty.exclude: 'bais' matches no parameter of this model; allowed: bias, "
        "norm, or a name pattern that matches one (here e.g. conv1.0.weight, fc.bias)",
    ),
    (
        ["optim=adam", "optim.betas=[2,0.9]"],
        "optim.betas=[2.0, 0.9]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]",
    ),
    (
        ["optim=adam", "optim.betas=[0.9]"],
        "optim.betas=[0.9]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]",
    ),
    (["optim.betas=0.9"], "optim.betas=0.9: expected a list, e.g. optim.betas=[0.9,0.999]"),
    (["optim=adam", "optim.eps=0"], "optim.eps=0.0: must be in (0, 1]"),
    (["optim.lr=1e308"], "optim.lr=1e+308: must be in (0, 1e+30]"),
    (
        ["seed=100000000000000000000000"],
        "seed=100000000000000000000000: must be an integer in [0, 9223372036854775807]",
    ),
    (["data.split_seed=-5"], "data.split_seed=-5: must be an integer in [0, 4294967295]"),
    (["data.image_size=100000"], "data.image_size=100000: must be in [1, 1024] or null"),
    (
        ["model=vit", "model.mlp_ratio=0"],
        "model.mlp_ratio=0.0: must be > 0 and leave at least one hidden unit at width 32",
    ),
    (
        ["model=mixer", "model.tokens_mlp_ratio=-1"],
        "model.tokens_mlp_ratio=-1.0: must be > 0 and leave at least one hidden unit at width 32",
    ),
    (["threads=100000"], "threads=100000: must be in [0, 1024] (0 = automatic)"),
    (
        ["penalty.log10_lam=-2", "penalty.log10_coef=-2"],
        "penalty.log10_lam, penalty.log10_coef: set at most one (a grid in λ or in coef = λ·c)",
    ),
    (["model.width=0"], "model.width=0: must be an integer >= 1"),
    # a value of the wrong type: refused by the typed schema (Hydra's ConfigStore) while Hydra composes
    (["model.width=8.5"], "model.width: Value '8.5' of type 'float' could not be converted to Integer"),
    (["seed=1.5"], "seed: Value '1.5' of type 'float' could not be converted to Integer"),
    (
        ["~optim.nesterov"],
        "~optim.nesterov: a field of the schema cannot be removed; set it instead, e.g. "
        "optim.nesterov=null where it may be null",
    ),
    (["optim.epochs=1e9"], "optim.epochs: Value '1000000000.0' of type 'float' could not be converted to Integer"),
    (["data.augment=maybe"], "data.augment: Value 'maybe' is not a valid bool (type str)"),
    (["model=vit", "model.width=20"], "model.width=20: must be a multiple of model.head_dim=8"),
    (["optim.batch_size=0"], "optim.batch_size=0: must be in [1, n_train=1437]"),
    (["optim.batch_size=1438"], "optim.batch_size=1438: must be in [1, n_train=1437]"),
    (["optim.epochs=0"], "optim.epochs=0: must be an integer >= 1"),
    (["data=cifar10"], "data.root: required for data=cifar10 (a local directory; nothing is downloaded)"),
    (["data=cifar10", "data.root=/no/such/dir"], "data.root=/no/such/dir: directory not found"),
    (["model.widht=8"], "model.widht: unknown key; allowed: name, width, blocks, small_input, param, base_width"),
    (
        ["sed=1"],
        "sed: unknown key; allowed: hydra, model, data, optim, penalty, logger, seed, device, "
        "precision, cudnn_benchmark, deterministic, threads, name, "
        "out_dir, progress, checkpoint_every_s, predictions, diagnostics",
    ),
    (["-m", "model.width=8,-2"], "model.width=-2: must be an integer >= 1"),
    (["-m", "penalty=sum,meen"], "penalty=meen: unknown choice; allowed: mean, per_step, sum"),
    (
        ["-m", "hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=90"],
        "hydra.launcher.signal_delay_s=90: must be in (0, 60], at most half of hydra.launcher.timeout_min=2 minutes",
    ),
    # the sweeper's own check: the planted result was not made by this config ({out}: this test's out_dir)
    (
        ["-m", "model.width=64"],
        "{out}/multirun/default/model.width=64: holds a completed result of a different "
        "config (the experiment changed?); choose a new name=... for this sweep",
    ),
    # model=timm: an architecture timm lacks, a rule that does not widen it, an argument its constructor
    # refuses or its timm function sets itself, an image too small for it, roles μP cannot read
    (
        ["model=timm", "model.arch=convnext_atom"],
        "model.arch=convnext_atom: not a timm architecture; e.g. convnext_atto, convnext_atto_rms, convnextv2_atto",
    ),
    (
        ["model=timm", "+model.rules.convnext_atto={ls_init_value:0.5}"],
        "model.rules.convnext_atto={'ls_init_value': 0.5}: does not change the width of model.arch=convnext_atto "
        "(every parameter has the same shape at model.width=16 and 32); name constructor arguments that set its "
        "channels or embedding size",
    ),
    (
        ["model=timm", "+model.kwargs.depth=[1,1,1,1]"],
        "model.kwargs.depth: model.arch=convnext_atto takes no constructor argument 'depth' (ConvNeXt.__init__() "
        "got an unexpected keyword argument 'depth')",
    ),
    (
        ["model=timm", "model.rules.convnext.widths=[1,2,4,8]"],
        "model.rules.convnext.widths: not in the config yet; add it with +model.rules.convnext.widths=<value>",
    ),
    (
        ["model=timm", "model.arch=efficientnet_b0"],
        "model.rules.efficientnet.channel_multiplier: timm's efficientnet_b0 sets channel_multiplier itself, so "
        "model.arch=efficientnet_b0 cannot be widened through it; choose an architecture whose timm function leaves "
        "it free (docs/models.md)",
    ),
    (
        ["model=timm"],
        "model.arch=convnext_atto: a 8 px image does not pass through it (RuntimeError: Calculated padded input "
        "size per channel: (1 x 1). Kernel size: (2 x 2). Kernel size can't be greater than actual input size); "
        "set data.image_size, or model.kwargs that fit the image (e.g. +model.kwargs.patch_size=1)",
    ),
    (
        ["model=timm", "model.arch=resnet18", "model.param=mup", "model.base_width=32"],
        "model.param=mup: model.arch=resnet18 has other parameters at model.width than at base_width or "
        "2·base_width (e.g. layer1.0.downsample.0.weight), so they cannot be paired; μP reads each parameter's "
        "role off the model at model.base_width and twice that (docs/running.md, μP)",
    ),
    # what Hydra rejects before any config exists: a group force-added, an override it cannot parse
    (["++data=5"], "force-add of config groups is not supported: '++data=5'"),
    (
        ["penalty.exclude=[bias"],
        "no viable alternative at input '[bias'; "
        "See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details",
    ),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_touches_no_result(cli, tmp_path, args, message):
    finished = tmp_path / "out" / "multirun" / "default" / "model.width=64"
    finished.mkdir(parents=True)
    (finished / "result.json").write_text(json.dumps({"status": "completed"}))
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    code, _, err = cli(*args, "progress=false")
    assert code == 2
    assert err.strip().splitlines() == [f"wdbench: error: {message.replace('{out}', str(tmp_path / 'out'))}"]
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before
    assert json.loads((finished / "result.json").read_text()) == {"status": "completed"}


# Every other check in wdbench/config.py and the data checks it calls, hit through the task itself
# (wdbench.app.run_job, as Hydra calls it for a single run) without Hydra's start-up: the same one
# line on stderr, exit code 2, nothing written, at a fraction of the CLI's cost.
CHECKS = [
    # _typed: a key no schema has (+ adds what Hydra's struct mode would refuse), a value of the wrong type
    (["+model.depht=3"], "model.depht: unknown key; allowed: name, width, blocks, small_input, param, base_width"),
    (
        ["+seeds=1"],
        "seeds: unknown key; allowed: model, data, optim, penalty, logger, seed, device, "
        "precision, cudnn_benchmark, deterministic, threads, name, "
        "out_dir, progress, checkpoint_every_s, predictions, diagnostics",
    ),
    # parse_run_config: a model name set by hand
    (["model.name=vgg"], "model.name='vgg': unknown choice; allowed: vit, resnet, mixer, timm, linear"),
    # model
    (["model=vit", "model.depth=0"], "model.depth=0: must be an integer >= 1"),
    (["model=mixer", "model.depth=-1"], "model.depth=-1: must be an integer >= 1"),
    (["model.blocks=0"], "model.blocks=0: must be an integer >= 1"),
    # model=timm: the rule table's grammar and what wdbench sets itself
    (
        ["model=timm", "model.arch=deit_tiny_patch16_224"],
        "model.arch=deit_tiny_patch16_224: no rule in model.rules widens it (rules for: convnext, efficientnet, "
        "mobilenet, resnet, swin, test_efficientnet, tf_efficientnetv2, vit); add one, e.g. "
        "+model.rules.deit_tiny_patch16_224={embed_dim:1} (docs/models.md)",
    ),
    (
        ["model=timm", "model.arch=convnext_atto.d2_in1k"],
        "model.arch='convnext_atto.d2_in1k': must be a timm architecture name without a pretrained tag, e.g. "
        "convnext_atto",
    ),
    (
        ["model=timm", "model.rules.convnext.dims=[1,0,4,8]"],
        "model.rules.convnext.dims=[1, 0, 4, 8]: must be a number > 0 (a multiplier of model.width) or a list of them",
    ),
    (
        ["model=timm", "model.rules.convnext.dims=true"],
        "model.rules.convnext.dims=True: must be a number > 0 (a multiplier of model.width) or a list of them",
    ),
    (
        ["model=timm", "model.arch=deit_tiny_patch16_224", "+model.rules.deit=[1,2]"],
        "model.rules.deit=[1, 2]: expected a mapping from constructor argument to a multiplier of model.width "
        "or a list of them, e.g. {dims: [1, 2, 4, 8]}",
    ),
    (
        ["model=timm", "+model.kwargs.pretrained=true"],
        "model.kwargs.pretrained: set by wdbench (in_chans, num_classes and img_size from the data, never "
        "pretrained); remove it",
    ),
    (
        ["model=timm", "+model.rules.convnext.num_classes=1"],
        "model.rules.convnext.num_classes: set by wdbench (in_chans, num_classes and img_size from the data, never "
        "pretrained); remove it",
    ),
    (
        ["model=timm", "+model.kwargs.dims=[1,2,3,4]"],
        "model.kwargs.dims: also set from model.width by model.rules.convnext; remove one",
    ),
    (
        ["model=timm", "model.arch=vit_tiny_patch16_224", "+model.rules.vit_tiny={embed_dim:1,num_heads:0.1875}"],
        "model.arch=vit_tiny_patch16_224: timm cannot build it with embed_dim=16, num_heads=3: AssertionError: dim "
        "should be divisible by num_heads",
    ),
    # the ridge check: its model and data go together, and its problem's sizes and scales
    (
        ["model=linear"],
        "model=linear, data=digits: model=linear and data=ridge go together (the closed-form ridge check)",
    ),
    (["data=ridge"], "model=resnet, data=ridge: model=linear and data=ridge go together (the closed-form ridge check)"),
    (["model=linear", "data=ridge", "data.n_train=null"], "data.n_train=None: data=ridge needs an integer >= 1"),
    (["model=linear", "data=ridge", "data.n_val=0"], "data.n_val=0: data=ridge needs an integer >= 1"),
    (["model=linear", "data=ridge", "data.noise=-1"], "data.noise=-1.0: must be finite and >= 0"),
    (["model=linear", "data=ridge", "data.signal=0"], "data.signal=0.0: must be finite and > 0"),
    (
        ["model=linear", "data=ridge", "data.augment=true"],
        "data.augment, data.image_size: data=ridge has no images to crop, flip or resize",
    ),
    (["data.n_val=100"], "data.n_val=100: data=ridge and data=teacher only; data=digits holds out data.val_fraction"),
    # the teacher task: drawn sizes, a label-noise fraction, a data seed torch can take
    (["data=teacher", "data.n_val=null"], "data.n_val=None: data=teacher needs an integer >= 1"),
    # an experiment file's laws: who, which λ*, which axis
    (
        ["predictions=[{source:x,norm:l1,axis:width,exponent:1}]"],
        "predictions[0].norm='l1': unknown choice; allowed: coef, sum, mean, per_step",
    ),
    (
        ["predictions=[{source:x,axis:depth}]"],
        "predictions[0].axis='depth': unknown choice; allowed: width, n_train, batch_size",
    ),
    (["predictions=[{source:' ',axis:width}]"], "predictions[0].source: empty; name who predicts it"),
    (["data=teacher", "data.n_train=0"], "data.n_train=0: data=teacher needs an integer >= 1"),
    (["data=teacher", "data.label_noise=1"], "data.label_noise=1.0: must be in [0, 1)"),
    (["data=teacher", "data.label_noise=-0.1"], "data.label_noise=-0.1: must be in [0, 1)"),
    (["data=teacher", "data.seed=-1"], "data.seed=-1: must be an integer in [0, 9223372036854775807]"),
    (
        ["model=vit", "data=teacher", "data.image_size=12", "model.patch_size=8"],
        "model.patch_size=8: must divide the image size 12",
    ),
    (["model=vit", "model.patch_size=0"], "model.patch_size=0: must be an integer >= 1"),
    (["model=vit", "model.head_dim=0"], "model.head_dim=0: must be an integer >= 1"),
    (
        ["model=vit", "model.mlp_ratio=inf"],
        "model.mlp_ratio=inf: must be > 0 and leave at least one hidden unit at width 32",
    ),
    (
        ["model=vit", "model.mlp_ratio=0.01"],
        "model.mlp_ratio=0.01: must be > 0 and leave at least one hidden unit at width 32",
    ),
    (
        ["model=vit", "model.mlp_ratio=0.02"],  # 0.64 units: timm's int() gives 0, then silently the width
        "model.mlp_ratio=0.02: must be > 0 and leave at least one hidden unit at width 32",
    ),
    (
        ["model=mixer", "model.channels_mlp_ratio=nan"],
        "model.channels_mlp_ratio=nan: must be > 0 and leave at least one hidden unit at width 32",
    ),
    (["model=vit", "model.head_dim=12"], "model.width=32: must be a multiple of model.head_dim=12"),
    (["model.width=7"], "model.width=7: must be even for resnet (stem width w/2)"),
    (["model.param=ntk"], "model.param='ntk': unknown choice; allowed: sp, mup"),
    (["model.base_width=0"], "model.base_width=0: must be an integer >= 1"),
    (["model.base_width=5"], "model.base_width=5: must be even for resnet (stem width w/2)"),
    (["model=vit", "model.base_width=12"], "model.base_width=12: must be a multiple of model.head_dim=8"),
    (["model=vit", "model.patch_size=3"], "model.patch_size=3: must divide the image size 8"),
    (["model=mixer", "data.image_size=10", "model.patch_size=4"], "model.patch_size=4: must divide the image size 10"),
    # data
    (
        ["data.name=mnist"],
        "data.name='mnist': unknown choice; allowed: digits, cifar10, cifar100, ridge, teacher, folder, arrays",
    ),
    (["data.val_fraction=0"], "data.val_fraction=0.0: must be in (0, 1)"),
    (["data.val_fraction=1"], "data.val_fraction=1.0: must be in (0, 1)"),
    (["data.val_fraction=nan"], "data.val_fraction=nan: must be in (0, 1)"),
    (["data.image_size=0"], "data.image_size=0: must be in [1, 1024] or null"),
    (["data.split_seed=4294967296"], "data.split_seed=4294967296: must be an integer in [0, 4294967295]"),
    (["data.n_train=5"], "data.n_train=5: must be in [10, 1427], 1437 (all) or null"),
    (["data.n_train=1438"], "data.n_train=1438: must be in [10, 1427], 1437 (all) or null"),
    (["data.n_train=1430"], "data.n_train=1430: must be in [10, 1427], 1437 (all) or null"),  # 7 left: < 1/class
    (
        ["data.val_fraction=0.001"],
        "data.val_fraction=0.001: holds out 2 of 1797 images; each side of the split needs at least one per class (10)",
    ),
    (
        ["data.val_fraction=0.999", "optim.batch_size=1"],
        "data.val_fraction=0.999: holds out 1796 of 1797 images; "
        "each side of the split needs at least one per class (10)",
    ),
    (
        ["penalty=mean", "penalty.exclude=[*]"],
        "penalty.exclude=['*']: excludes every parameter of this model; nothing would be decayed",
    ),
    # optim
    (["optim.name=lbfgs"], "optim.name='lbfgs': unknown choice; allowed: sgd, adam, adamw"),
    (["optim.schedule=step"], "optim.schedule='step': unknown choice; allowed: constant, cosine"),
    (["optim.lr=0"], "optim.lr=0.0: must be in (0, 1e+30]"),
    (["optim.lr=-0.1"], "optim.lr=-0.1: must be in (0, 1e+30]"),
    (["optim.lr=nan"], "optim.lr=nan: must be in (0, 1e+30]"),
    (["optim.lr=inf"], "optim.lr=inf: must be in (0, 1e+30]"),
    (
        ["optim=adam", "optim.betas=[0.9,0.999,0.5]"],
        "optim.betas=[0.9, 0.999, 0.5]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]",
    ),
    (["optim=adam", "optim.betas=[]"], "optim.betas=[]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]"),
    (
        ["optim=adam", "optim.betas=[0.9,1]"],
        "optim.betas=[0.9, 1.0]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]",
    ),
    (
        ["optim=adam", "optim.betas=[0.9,nan]"],
        "optim.betas=[0.9, nan]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]",
    ),
    (["optim=adam", "optim.eps=2"], "optim.eps=2.0: must be in (0, 1]"),
    (["optim=adam", "optim.eps=-1e-8"], "optim.eps=-1e-08: must be in (0, 1]"),
    (["optim.epochs=-3"], "optim.epochs=-3: must be an integer >= 1"),
    (["optim.warmup_epochs=-1"], "optim.warmup_epochs=-1.0: must be in [0, optim.epochs)"),
    (["optim.warmup_epochs=10"], "optim.warmup_epochs=10.0: must be in [0, optim.epochs)"),
    (["optim.epochs=2", "optim.warmup_epochs=2.5"], "optim.warmup_epochs=2.5: must be in [0, optim.epochs)"),
    (["optim.warmup_epochs=nan"], "optim.warmup_epochs=nan: must be in [0, optim.epochs)"),
    (["optim.momentum=1"], "optim.momentum=1.0: must be in [0, 1)"),
    (["optim.momentum=-0.1"], "optim.momentum=-0.1: must be in [0, 1)"),
    (["optim.momentum=nan"], "optim.momentum=nan: must be in [0, 1)"),
    (["data.n_train=100", "optim.batch_size=200"], "optim.batch_size=200: must be in [1, n_train=100]"),
    (["data.val_fraction=0.9", "optim.batch_size=200"], "optim.batch_size=200: must be in [1, n_train=179]"),
    # penalty
    (["penalty.norm=l1"], "penalty.norm='l1': unknown choice; allowed: sum, mean, per_step"),
    (["penalty.log10_lam=-inf"], "penalty.log10_lam=-inf: must be in [-30, 30] or null"),
    (["penalty.log10_coef=31"], "penalty.log10_coef=31.0: must be in [-30, 30] or null"),
    (["penalty.log10_coef=nan"], "penalty.log10_coef=nan: must be in [-30, 30] or null"),
    (["penalty.lam=nan"], "penalty.lam=nan: must be in [0, 1e+30]"),
    (["penalty.lam=1.1e30"], "penalty.lam=1.1e+30: must be in [0, 1e+30]"),
    (
        ["model=vit", "penalty.exclude=[bias,norm,pos_embd]"],
        "penalty.exclude: 'pos_embd' matches no parameter of this model; allowed: bias, norm, or a name pattern that "
        "matches one (here e.g. pos_embed, head.bias)",
    ),
    # where and how it runs
    (["logger.name=wandb"], "logger.name='wandb': unknown choice; allowed: none, tensorboard, mlflow"),
    (["device=tpu"], "device='tpu': unknown choice; allowed: auto, cpu, cuda"),
    (["threads=-1"], "threads=-1: must be in [0, 1024] (0 = automatic)"),
    (["seed=-1"], "seed=-1: must be an integer in [0, 9223372036854775807]"),
    (["checkpoint_every_s=-1"], "checkpoint_every_s=-1.0: must be >= 0"),
    (["checkpoint_every_s=nan"], "checkpoint_every_s=nan: must be >= 0"),
]


@pytest.fixture
def job(tmp_path, monkeypatch, capsys):
    """``run_job(cfg)`` as Hydra's single run calls it: its run directory made (.hydra/ only) beside a
    finished run's result; returns (exit code, stderr lines, every path under out/ after)."""
    out = tmp_path / "out"
    finished = out / "runs" / "finished"
    finished.mkdir(parents=True)
    (finished / "result.json").write_text(json.dumps({"status": "completed"}))
    run_dir = out / "runs" / "this"
    hc = SimpleNamespace(runtime=SimpleNamespace(output_dir=str(run_dir)), mode=RunMode.RUN, launcher={})
    monkeypatch.setattr("wdbench.app.HydraConfig", SimpleNamespace(get=lambda: hc))

    def accepted(run_dir):  # fail at once, not after training a run the config should have stopped
        raise AssertionError("the config was accepted")

    monkeypatch.setattr("wdbench.app.Claim", SimpleNamespace(acquire=accepted))

    def call(cfg):
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra" / "config.yaml").write_text("{}")
        with pytest.raises(SystemExit) as exit_:
            run_job(cfg)
        assert json.loads((finished / "result.json").read_text()) == {"status": "completed"}
        return (
            exit_.value.code,
            capsys.readouterr().err.splitlines(),
            sorted(str(p.relative_to(out)) for p in out.rglob("*")),
        )

    return call


UNTOUCHED = ["runs", "runs/finished", "runs/finished/result.json"]  # and the rejected run's directory gone


@pytest.mark.parametrize("overrides,message", CHECKS, ids=[" ".join(o) for o, _ in CHECKS])
def test_each_check_refuses_a_bad_value_in_one_exact_line_with_exit_2(job, overrides, message):
    assert job(quickly_composed(*overrides)) == (2, [f"wdbench: error: {message}"], UNTOUCHED)


def test_a_cifar_root_without_readable_batches_is_refused(job, tmp_path):
    root = tmp_path / "cifar"
    root.mkdir()
    assert job(quickly_composed("data=cifar10", f"data.root={root}")) == (
        2,
        [f"wdbench: error: data.root={root}: no CIFAR python-pickle files (cifar-10-batches-py/data_batch_1 missing)"],
        UNTOUCHED,
    )
    (root / "cifar-10-batches-py").mkdir()
    for i in range(1, 6):  # all there, none a pickle: a download that saved the server's error page
        (root / "cifar-10-batches-py" / f"data_batch_{i}").write_text("<!DOCTYPE html><title>Not Found</title>")
    assert job(quickly_composed("data=cifar10", f"data.root={root}")) == (
        2,
        [f"wdbench: error: data.root={root}: cannot read cifar-10-batches-py/data_batch_1: invalid load key, '<'."],
        UNTOUCHED,
    )


def test_a_choice_this_machine_cannot_run_is_refused(job, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args, **kwargs: None if name == "mlflow" else real_find_spec(name, *args, **kwargs),
    )
    assert job(quickly_composed("logger=mlflow")) == (
        2,
        [
            "wdbench: error: logger=mlflow: needs the mlflow package (pip install -e '.[loggers]'); allowed "
            "without it: none"
        ],
        UNTOUCHED,
    )


def test_device_cuda_is_checked_where_the_run_trains_not_where_it_is_launched(monkeypatch):
    """A login node without a GPU launches device=cuda runs (SLURM's GPU nodes train them); a node
    that trains one without a GPU records it as failed, naming the node."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    parse_run_config(quickly_composed("device=cuda"))  # valid on the launching host
    with pytest.raises(RuntimeError, match=r"^device=cuda: no CUDA device on .+; allowed on this node: auto, cpu$"):
        resolve_device("cuda")
    monkeypatch.setenv("WDBENCH_AUTO_DEVICE", "cuda")  # a SLURM task that asked for a GPU: auto must be one
    with pytest.raises(RuntimeError, match=r"^device=cuda: no CUDA device on "):
        resolve_device("auto")


def test_a_recorded_config_whose_group_is_not_a_mapping_is_one_error():
    """Only a config that Hydra did not compose (a result.json's, read back by made_by) can hold one."""
    recorded = OmegaConf.to_container(quickly_composed(), resolve=True)
    recorded["data"] = 5
    with pytest.raises(ConfigError) as err:
        parse_run_config(recorded)
    assert str(err.value) == "data: expected a mapping, got 5"


def test_quickly_composed_is_what_compose_makes():
    overrides = [
        "optim=adamw",
        "model.mlp_ratio=inf",
        "model=vit",
        "+model.depht=3",
        "optim.betas=[0.9,1]",
        "~seed",
        "++threads=2",
        "penalty.exclude=[bias]",
        "penalty.log10_coef=-301",
        "data.image_size=null",
    ]
    fast, slow = quickly_composed(*overrides), composed(*overrides)
    assert OmegaConf.to_yaml(fast) == OmegaConf.to_yaml(slow)
    assert OmegaConf.is_struct(fast) and OmegaConf.is_struct(slow)
    with pytest.raises(Exception, match="widht") as fast_err:
        quickly_composed(*overrides, "model.widht=8")
    with pytest.raises(Exception, match="widht") as slow_err:
        composed(*overrides, "model.widht=8")
    assert type(fast_err.value) is type(slow_err.value)


def test_an_exclude_pattern_that_matches_is_accepted_and_decays_what_it_should():
    run = parse_run_config(composed("model=vit", "penalty.exclude=[bias,norm,*pos_embed]"))
    assert run.penalty.exclude == ["bias", "norm", "*pos_embed"]


def test_lam_is_resolved_in_one_place_and_adamw_means_decoupled():
    from wdbench.config import configured_lam, run_identity

    run = parse_run_config(composed("penalty.log10_lam=-2"))
    assert run.penalty.lam == 1e-4 and configured_lam(run.penalty) == 10**-2  # the config stays as composed
    assert run_identity(run) == run_identity(parse_run_config(composed(f"penalty.lam={10**-2}")))
    assert configured_lam(parse_run_config(composed("penalty.log10_coef=-2")).penalty) is None  # from the sizes
    assert parse_run_config(composed("optim=adamw")).penalty.apply == "decoupled"
    assert parse_run_config(composed("optim=adamw", "penalty.apply=coupled")).penalty.apply == "coupled"
    assert parse_run_config(composed("optim=adam")).penalty.apply == "coupled"


def test_a_timm_runs_identity_holds_the_rule_of_its_arch_only_and_survives_its_recorded_config():
    """The rule table is shared by every arch: adding a family leaves a run's identity (and so its
    directory's finished result) alone; changing its own rule, arch or fixed arguments does not."""
    from wdbench.config import pack_key, run_identity

    toy = ["model=timm", "+model.kwargs.patch_size=1"]
    run = parse_run_config(composed(*toy))
    same = run_identity(run)
    assert same["model"]["rules"] == {"convnext": {"dims": [1, 2, 4, 8]}}
    assert same["model"]["arch"] == "convnext_atto" and same["model"]["kwargs"] == {"patch_size": 1}
    recorded = json.loads(json.dumps(OmegaConf.to_container(composed(*toy), resolve=True)))  # as result.json holds it
    assert run_identity(parse_run_config(recorded)) == same
    assert run_identity(parse_run_config(composed(*toy, "+model.rules.deit={embed_dim:1}"))) == same
    for change in ("model.rules.convnext.dims=[1,2,4,4]", "model.arch=convnext_nano", "model.kwargs.patch_size=2"):
        assert run_identity(parse_run_config(composed(*toy, change))) != same, change
    assert pack_key(parse_run_config(composed(*toy, "seed=3", "penalty.lam=0.1"))) == pack_key(run)


def test_a_timm_model_that_does_not_give_logits_in_training_is_refused():
    from torch import nn

    from wdbench.checks import _check_forward

    class TwoHeads(nn.Module):  # as a distilled or auxiliary-head model in training
        def forward(self, x):
            return x.flatten(1)[:, :10], x.flatten(1)[:, :10]

    run = parse_run_config(composed("model=timm"))
    with pytest.raises(ConfigError) as err:
        _check_forward(run, TwoHeads())
    assert str(err.value) == (
        "model.arch=convnext_atto: in training it gives a tuple for a batch of 2, not (2, 10) logits; choose an "
        "architecture that returns logits"
    )
    with pytest.raises(ConfigError, match=r"^model.arch=convnext_atto: in training it gives shape \(2, 64\) for a"):
        _check_forward(run, nn.Flatten())  # 8 x 8 digits flattened, not 10 classes
    _check_forward(run, nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))


def test_every_shipped_choice_validates():
    for model in ("vit", "resnet", "mixer", "timm"):
        for penalty in ("sum", "mean", "per_step"):
            for optim in ("sgd", "adam", "adamw"):
                parse_run_config(composed(f"model={model}", f"penalty={penalty}", f"optim={optim}"))


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_files_sweep_validates_at_both_ends_of_every_axis(experiment):
    """Each experiment's first and last value of every swept field, together: a bad value in a shipped
    file fails here, not hours into its sweep."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        params = compose("config", [f"experiment={experiment}"], return_hydra_config=True).hydra.sweeper.params
    parser = OverridesParser.create()
    ends = [
        [f"{key}={'null' if v is None else v}" for v in (values[0], values[-1])]
        for key, values in (
            (key, list(parser.parse_override(f"{key}={value}").sweep_iterator())) for key, value in params.items()
        )
    ]
    for end in range(2):
        run = checked_run_config(quickly_composed(f"experiment={experiment}", *(pair[end] for pair in ends)))
        assert run.name == experiment


def test_wrong_type_in_a_group_is_caught_by_the_schema_when_composed_and_when_read_back():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="optim.nesterov"):
        composed("optim.nesterov=maybe")
    recorded = OmegaConf.to_container(composed())
    recorded["optim"]["nesterov"] = "maybe"  # a hand-edited or damaged recorded config
    with pytest.raises(ConfigError, match="optim.nesterov"):
        parse_run_config(recorded)
    del recorded["optim"]
    with pytest.raises(ConfigError, match="^optim: missing; choose one with optim=<name>$"):
        parse_run_config(recorded)


def test_cfg_job_shows_the_resolved_config_and_help_lists_groups(cli):
    code, out, _ = cli("--cfg", "job", *TINY, "penalty=mean")
    assert code == 0 and "norm: mean" in out and "width: 4" in out
    code, out, _ = cli("--help")
    assert code == 0
    for group in (
        "model: linear, mixer, resnet, timm, vit",
        "penalty: mean, per_step, sum",
        "optim: adam, adamw, sgd",
        "data: arrays, cifar10, cifar100, digits, folder, ridge",
    ):
        assert group in out


def test_validating_a_sweep_and_answering_without_training_import_neither_torch_nor_timm(tmp_path):
    """--help, --cfg, a config error and a rerun with nothing left to train cost well under a second
    only while the entry point, the sweeper and every config check stay free of torch, timm and
    scikit-learn (3–5 s to import): a fresh interpreter checks what they pull in."""
    script = f"""
import sys
import hydra_plugins.wdbench_plugins.launcher, hydra_plugins.wdbench_plugins.slurm, hydra_plugins.wdbench_plugins.sweeper
import wdbench.__main__, wdbench.app, wdbench.status
from hydra import compose, initialize_config_dir
from wdbench.config import ConfigError, parse_run_config, pack_key
with initialize_config_dir({str(CONF_DIR)!r}, version_base="1.3"):
    for overrides in (["model=vit"], ["model=mixer", "penalty=mean"], ["optim=adamw", "penalty.log10_coef=-2"]):
        pack_key(parse_run_config(compose("config", overrides=overrides)))
    try:
        parse_run_config(compose("config", overrides=["penalty.log10_lam=400"]))
    except ConfigError:
        pass
print(sorted(m for m in ("torch", "timm", "sklearn") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


SWEEP_JOBS = [  # (the command's overrides, one job's overrides): jobs of every kind a sweep makes
    (["experiment=quickstart"], ["model.width=2", "penalty.log10_coef=null", "seed=3"]),
    (["experiment=quickstart"], ["model.width=32", "penalty.log10_coef=-1.25", "seed=0"]),
    ([], ["model=vit", "model.width=64", "penalty=mean", "penalty.log10_lam=-2.5", "seed=1"]),
    ([], ["optim=adamw", "model=mixer", "penalty.exclude=[bias]", "data.n_train=400", "progress=false"]),
    ([], ["+model.tag=x", "seed=2", "+hydra.job.env_set.A=1", "~hydra.job.env_set.A"]),
    (
        [],
        ["seed=5", "++seed=7", "optim.nesterov=true", "++optim.nesterov=false", "optim.momentum=0.5"],
    ),  # kept in order
    (["hydra.launcher.pack=2"], ["hydra.launcher.n_jobs=1", "name=s", "out_dir=/tmp/x", "penalty.lam=0.5"]),
]


@pytest.mark.parametrize("command,job", SWEEP_JOBS, ids=[" ".join(j) for _, j in SWEEP_JOBS])
def test_the_sweepers_composer_gives_hydras_own_config_for_every_job(command, job):
    from hydra.core.global_hydra import GlobalHydra

    from hydra_plugins.wdbench_plugins.sweeper import SweepComposer

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=command, run_mode=RunMode.MULTIRUN)
        composer = SweepComposer(loader, master)
        for _ in range(2):  # composed by Hydra the first time, from the cached base the second
            ours, hydras = composer([*command, *job]), loader.load_sweep_config(master, [*command, *job])
            assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras)
            assert ours.hydra.sweep.subdir == hydras.hydra.sweep.subdir
            assert OmegaConf.is_struct(ours) and not OmegaConf.is_readonly(ours.hydra)
    assert len(composer.bases) == 1


def test_the_composer_lets_hydra_compose_once_per_group_choice_and_not_per_value():
    from hydra.core.global_hydra import GlobalHydra

    from hydra_plugins.wdbench_plugins.sweeper import SweepComposer

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        composer = SweepComposer(loader, loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN))
        for model in ("vit", "mixer"):
            for width in (16, 32):
                for seed in (0, 1):
                    composer([f"model={model}", f"model.width={width}", f"seed={seed}", "+model.tag=x"])
    assert sorted(composer.bases) == [("model=mixer", "+model.tag=x"), ("model=vit", "+model.tag=x")]


def test_a_run_with_device_cuda_trained_here_without_a_gpu_is_one_line_exit_2_and_nothing_written(
    cli, tmp_path, monkeypatch
):
    from helpers import TINY

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for mode in (["-m", "hydra/launcher=basic"], []):
        code, _, err = cli(*mode, *TINY, "device=cuda", "name=gpu")
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert err.startswith("wdbench: error: device=cuda: no CUDA device on ")
        assert not list((tmp_path / "out").rglob("result.json")) and not list((tmp_path / "out").rglob("claim*"))


def test_what_names_a_run_directory_is_its_identity_from_one_list():
    """exclude_keys is derived from NOT_IDENTITY (wdbench.config.dirname_excluded), not typed again."""
    from wdbench.config import NOT_IDENTITY

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        hydra_cfg = compose("config", return_hydra_config=True)
    excluded = list(hydra_cfg.hydra.job.config.override_dirname.exclude_keys)
    assert set(excluded) == {
        *NOT_IDENTITY,
        "logger.name",
        "logger.tracking_uri",
        "logger.experiment",
        "data.root",
        "data.path",
        "data.cache_dir",
        "hydra/launcher",
    } - {"hydra"}


def test_each_default_is_written_once_in_the_schema_and_no_option_restates_one():
    """conf/<group>/*.yaml hold only what differs from wdbench.config's dataclasses (registered with
    Hydra's ConfigStore by hydra_plugins/wdbench_plugins/schemas.py), and the schema is what composes."""
    from dataclasses import asdict

    from wdbench.config import DataConfig, LoggerConfig, OptimConfig, PenaltyConfig, RunConfig

    schemas = {"data": DataConfig, "optim": OptimConfig, "penalty": PenaltyConfig, "logger": LoggerConfig}
    restated = []
    for group in schemas:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            node = OmegaConf.to_container(OmegaConf.load(path)) or {}
            sections = (
                {k: v for k, v in node.items() if k in schemas}
                if group == "optim" and "optim" in node
                else {group: node}
            )
            for section, values in sections.items():
                default = asdict(schemas[section]())
                restated += [
                    f"{path.name}: {section}.{k}" for k, v in values.items() if k in default and default[k] == v
                ]
    top = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))
    restated += [f"config.yaml: {k}" for k in top if k in asdict(RunConfig())]
    assert not restated
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):  # a model option is its schema, nothing more
        assert set(OmegaConf.load(path)) == ({"defaults", "rules"} if path.stem == "timm" else {"defaults"}), path.name
    assert TimmConfig().rules == {}  # timm's rule table is written once: in conf/model/timm.yaml
    assert OmegaConf.to_container(composed().optim) == asdict(OptimConfig())
