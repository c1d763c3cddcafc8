"""Typed run configuration: dataclass schemas for every config group, and the checks that turn a
composed Hydra config into a ``RunConfig`` or one clear ``ConfigError`` line. The bottom layer: it
imports nothing of wdbench; the checks that need the data's sizes or a model are wdbench.checks'."""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A bad configuration value; its message is one line naming the field and what is allowed."""


@dataclass
class ViTConfig:
    name: str = "vit"
    width: int = 32  # embed_dim
    depth: int = 2
    head_dim: int = 8  # num_heads = width / head_dim
    patch_size: int = 2
    mlp_ratio: float = 2.0
    param: str = "sp"  # sp: as built (timm's init, one lr) | mup: μP relative to base_width (wdbench.parameterisation)
    base_width: int = 32  # mup: the width at which μP is SP


@dataclass
class ResNetConfig:
    name: str = "resnet"
    width: int = 16  # stage channels (w, 2w, 4w, 8w); deep stem of width w/2 -> w
    blocks: int = 1  # BasicBlocks per stage
    small_input: bool = True  # drop the stem max-pool so 8-32 px inputs keep spatial extent
    param: str = "sp"  # as ViTConfig.param
    base_width: int = 16


@dataclass
class MixerConfig:
    name: str = "mixer"
    width: int = 32  # embed_dim
    depth: int = 2
    patch_size: int = 2
    tokens_mlp_ratio: float = 0.5
    channels_mlp_ratio: float = 4.0
    param: str = "sp"  # as ViTConfig.param
    base_width: int = 32


@dataclass
class LinearConfig:
    name: str = "linear"
    width: int = 32  # d: the input features of data=ridge, mapped to one output without a bias


@dataclass
class TimmConfig:
    """Any timm architecture whose width is set by constructor arguments: ``rules`` (conf/model/timm.yaml)
    says which, as multiples of ``width``; docs/models.md."""

    name: str = "timm"
    arch: str = "convnext_atto"  # a timm architecture name (timm.list_models()); never pretrained
    width: int = 16  # through the rule whose key is the longest prefix of arch
    kwargs: Dict[str, Any] = field(default_factory=dict)  # fixed constructor arguments, e.g. {depths: [1, 1, 1, 1]}
    # arch-name prefix -> {constructor argument: multiplier of width, or a list of multipliers}
    rules: Dict[str, Any] = field(default_factory=dict)
    param: str = "sp"  # as ViTConfig.param
    base_width: int = 16


PARAMS = ("sp", "mup")
MODEL_SCHEMAS = {
    "vit": ViTConfig,
    "resnet": ResNetConfig,
    "mixer": MixerConfig,
    "timm": TimmConfig,
    "linear": LinearConfig,
}
# Constructor arguments wdbench sets itself (from the data; never pretrained): not for a rule or model.kwargs
TIMM_RESERVED = (
    "pretrained",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
    "checkpoint_path",
    "cache_dir",
    "features_only",
    "in_chans",
    "num_classes",
    "img_size",
)
DATASETS = ("digits", "cifar10", "cifar100", "ridge", "teacher", "folder", "arrays")
DRAWN = ("ridge", "teacher")  # generated, not read: n_train and n_val are drawn, nothing is split
OWN_DATA = ("folder", "arrays")  # the user's own, read from data.root or data.path (wdbench.owndata, docs/data.md)
FOLDER_CHANNELS = (1, 3)  # data.channels: grayscale (Pillow's mode L) or RGB
# what data.root names, for the datasets that need one
ROOT_HOLDS = {
    "cifar10": "a local directory; nothing is downloaded",
    "cifar100": "a local directory; nothing is downloaded",
    "folder": "a directory with one subdirectory of images per class",
}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")
NORMS = ("sum", "mean", "per_step")  # of the L2 penalty (wdbench.penalty)
APPLIES = ("coupled", "decoupled", "independent")
EXCLUDE_KINDS = {"bias": "every parameter named *.bias", "norm": "every normalisation-layer parameter"}
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "tf32", "bf16")  # wdbench.numerics
# lr and λ·c end up as factors in float32 tensor ops (max 3.4e38): keep them far below that
LARGEST = 1e30
LOG10_RANGE = (-30, 30)  # 10**x: at most LARGEST, and a factor float32 does not round to 0
MAX_IMAGE_SIZE = 1024
MAX_THREADS = 1024
SEED_RANGE = (0, 2**63 - 1)  # torch's generators
SPLIT_SEED_RANGE = (0, 2**32 - 1)  # scikit-learn's random_state
LIST_FIELDS = {"penalty.exclude": "[bias,norm]", "optim.betas": "[0.9,0.999]"}
# The study's axes (the analysis fits λ*'s exponent in each) and the config field each one is
STUDY_AXES = {"width": "model.width", "n_train": "data.n_train", "batch_size": "optim.batch_size"}


@dataclass
class DataConfig:
    name: str = "digits"
    root: Optional[str] = None  # CIFAR: directory in the python-pickle layout (never downloaded); folder: its directory
    val_fraction: float = 0.2  # stratified hold-out of the training set
    split_seed: int = 0  # the split does not move with the run seed
    n_train: Optional[int] = None  # stratified subsample of the training split
    image_size: Optional[int] = None  # resize (bilinear) to this many pixels a side
    augment: bool = False  # random crop (pad 4) + horizontal flip, on tensors
    # ridge (model=linear): x ~ N(0, I_d), y = x·β + noise·ε, β ~ N(0, signal²/d·I), all drawn from the run seed
    n_val: Optional[int] = None  # ridge, teacher: held-out samples (the others: val_fraction of the images)
    noise: float = 1.0  # ridge: σ
    signal: float = 1.0  # ridge: r
    # teacher: smooth random images labelled by a random network, all drawn from data.seed (not the run's)
    seed: int = 0  # teacher: its images, network and label noise; every run of a sweep sees the same data
    label_noise: float = 0.0  # teacher: fraction of training labels replaced by a uniformly drawn class
    # your own data (docs/data.md): folder reads data.root, arrays reads data.path
    path: Optional[str] = None  # arrays: an .npz file of x_train, y_train and optionally x_val, y_val
    channels: Optional[int] = None  # folder: 1 (grayscale) or 3 (RGB); null: 1 when every image is grayscale, else 3
    cache_dir: Optional[str] = None  # folder: where its cache goes when data.root is not writable (null: not cached)
    # folder, arrays: a hash of what was read (files' bytes, or the arrays), filled in when the config is
    # checked (wdbench.checks); part of a run's identity, so another folder at the same place is another run.
    # Set it (e.g. in an experiment file) to refuse any other data.
    fingerprint: Optional[str] = None


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # adam, adamw
    eps: float = 1e-8  # adam, adamw
    schedule: str = "cosine"  # constant | cosine (to 0 at the last step)
    warmup_epochs: float = 0.0  # linear warmup, then the schedule
    epochs: int = 10
    batch_size: int = 128


@dataclass
class PenaltyConfig:
    norm: str = "sum"  # sum (c = 1) | mean (c = 1/N decayed scalars) | per_step (c = B/N_train)
    lam: float = 1e-4  # λ in this normalisation; the loss gains λ·c·Σw²
    log10_lam: Optional[float] = None  # when set, lam = 10**log10_lam: penalty.log10_lam=range(-5,-1,0.5)
    # When set, the coefficient on Σw² is exactly 10**log10_coef whatever the normalisation, and
    # lam = coef/c follows at the run's start: a grid in coef space runs each coefficient once.
    log10_coef: Optional[float] = None
    apply: str = "coupled"  # coupled (its gradient) | decoupled (w *= 1 - lr_t·2λc) | independent (w *= 1 - s_t·2λc)
    # bias, norm (normalisation-layer parameters) or name patterns; [] decays everything
    exclude: List[str] = field(default_factory=lambda: ["bias", "norm"])


LOGGERS = {"none": None, "tensorboard": "tensorboard", "mlflow": "mlflow"}  # name -> module it needs


@dataclass
class LoggerConfig:
    name: str = "none"  # none | tensorboard | mlflow
    tracking_uri: Optional[str] = None  # mlflow: None = a local file store in ${out_dir}/mlruns
    experiment: Optional[str] = None  # mlflow: None = the sweep's name


@dataclass
class PredictionConfig:
    """A published or closed-form law λ* ∝ axis^exponent that ``analysis fit`` prints beside the
    measured exponent (an experiment file's, not a run's: not part of what a run computes)."""

    source: str = ""  # who predicts it, e.g. "Wang & Aitchison 2025"
    norm: str = "coef"  # the λ* it is about: coef (= λ_sum, torch's AdamW weight_decay / 2), sum, mean, per_step
    axis: str = "width"  # width, n_train or batch_size
    exponent: float = 0.0


@dataclass
class RunConfig:
    model: Any = None  # one of MODEL_SCHEMAS, chosen by model.name
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)  # where per-epoch metrics also go
    seed: int = 0  # init, data order and augmentation
    device: str = "auto"  # auto: cuda where the training node has one, else cpu; cuda: fail there without one
    precision: str = "fp32"  # fp32 | tf32 (GPU matmuls and convolutions) | bf16 (autocast forward); wdbench.numerics
    cudnn_benchmark: bool = False  # let cuDNN time its algorithms (faster convolutions, rounding may vary by run)
    deterministic: bool = False  # deterministic GPU kernels only (torch.use_deterministic_algorithms; slower)
    threads: int = 0  # torch intra-op threads; 0: 1 per local multirun worker, else torch's default
    name: str = "default"  # the sweep's directory name
    out_dir: str = "outputs"
    progress: bool = True
    checkpoint_every_s: float = 60.0  # at most this often at an epoch end (0: every epoch); always on a stop signal
    predictions: List[PredictionConfig] = field(default_factory=list)  # laws the fit tests this sweep against
    diagnostics: bool = False  # per epoch, each decayed tensor's norm and angular update (rotational equilibrium)


@functools.lru_cache(maxsize=None)
def _structured(schema: type) -> DictConfig:
    return OmegaConf.structured(schema)  # slow to build, and merge() leaves it unchanged


def _typed(section: str, schema: type, node: Any) -> Any:
    """Merge ``node`` into ``schema``: unknown keys and wrong types become one-line errors."""
    if not isinstance(node, (dict, DictConfig)):
        raise ConfigError(f"{section}: expected a mapping, got {node!r}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(_structured(schema), node))
    except OmegaConfBaseException as err:
        key = getattr(err, "key", None)
        key = section if not key else key if section == "config" else f"{section}.{key}"
        allowed = ", ".join(f.name for f in fields(schema))
        if "not in" in str(err) or "Key" in type(err).__name__:
            raise ConfigError(f"{key}: unknown key; allowed: {allowed}") from None
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{key}: {reason}") from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _in_range(key: str, value: int, bounds: tuple) -> None:
    _check(bounds[0] <= value <= bounds[1], f"{key}={value}: must be an integer in [{bounds[0]}, {bounds[1]}]")


def _choice(key: str, value: str, allowed: tuple) -> None:
    _check(value in allowed, f"{key}={value!r}: unknown choice; allowed: {', '.join(allowed)}")


def parse_run_config(cfg: DictConfig | dict) -> RunConfig:
    """Parse and check a composed config (the Hydra job config, without its ``hydra`` node), or a
    recorded one; what also needs the data or the model: wdbench.checks.checked_run_config."""
    raw = {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "hydra"
    }  # cfg[key] access resolves interpolations
    for section in ("model", "data", "optim", "penalty"):
        _check(section in raw, f"{section}: missing; choose one with {section}=<name>")
    model_name = raw["model"].get("name") if isinstance(raw["model"], dict) else None
    _choice("model.name", model_name, tuple(MODEL_SCHEMAS))
    sections = {"model": MODEL_SCHEMAS[model_name], "data": DataConfig, "optim": OptimConfig, "penalty": PenaltyConfig}
    for key, example in LIST_FIELDS.items():  # a scalar where a list belongs: say so, with an example
        section, name = key.split(".")
        value = raw[section].get(name) if isinstance(raw[section], dict) else None
        _check(
            value is None or isinstance(value, (list, tuple)), f"{key}={value}: expected a list, e.g. {key}={example}"
        )
    run = _typed("config", RunConfig, {k: v for k, v in raw.items() if k not in sections and k != "logger"})
    if "logger" in raw:  # absent from results recorded before the logger group existed
        run.logger = _typed("logger", LoggerConfig, raw["logger"])
    for section, schema in sections.items():
        setattr(run, section, _typed(section, schema, raw[section]))
    _validate(run)
    return run


# Fields that say where or how fast a run runs, or how its λ was written, not what it computes.
NOT_IDENTITY = (
    "device",
    "cudnn_benchmark",
    "deterministic",
    "threads",
    "name",
    "out_dir",
    "progress",
    "checkpoint_every_s",
    "logger",
    "hydra",
    "predictions",
    "diagnostics",
)
# Where a run's data live, not what they are: data.root stays in an identity as None (old results
# record it), the newer fields are dropped. Folder and arrays data are named by data.fingerprint instead.
DATA_PLACES = ("data.root", "data.path", "data.cache_dir")


def dirname_excluded() -> list[str]:
    """The overrides that do not name a run's directory (conf/config.yaml's exclude_keys, through the
    wdbench.not_identity resolver): what is not its identity, each logger field, where the data live
    and the launcher; so a directory names a run by what it computes, from this one list."""
    logger = [f"logger.{f.name}" for f in fields(LoggerConfig)]
    return [key for key in NOT_IDENTITY if key != "hydra"] + logger + [*DATA_PLACES, "hydra/launcher"]


def identity(config: dict) -> dict:
    """What makes two runs the same run, from a plain (recorded or validated) config: everything but
    where and how fast it runs. λ counts once: as ``lam`` (``log10_lam`` resolved into it) or, for a
    coef-space run, as ``log10_coef`` (its ``lam`` is derived from it)."""
    same = {k: v for k, v in config.items() if k not in NOT_IDENTITY}
    data = {k: v for k, v in same.get("data", {}).items() if f"data.{k}" not in DATA_PLACES}
    same["data"] = {**data, "root": None}
    model = same.get("model") or {}
    if isinstance(model.get("rules"), dict):  # timm: of the rule table, only the rule that widens its arch
        key = width_rule(str(model.get("arch")), model["rules"])
        same["model"] = {**model, "rules": {} if key is None else {key: model["rules"][key]}}
    penalty = same.get("penalty", {})
    same["penalty"] = {**penalty, "lam": configured_lam(penalty), "log10_lam": None}
    return same


def width_rule(arch: str, rules: dict) -> Optional[str]:
    """The key of ``rules`` whose rule widens ``arch``: the longest that the name starts with (None: none)."""
    keys = [key for key in rules if arch.startswith(str(key))]
    return max(keys, key=len) if keys else None


def width_kwargs(m: TimmConfig, width: Optional[int] = None) -> dict:
    """The constructor arguments m's rule sets at ``width`` (default: m.width): each multiplier times the
    width, an int where that is whole (channel counts), else a float (e.g. timm's channel_multiplier)."""
    width = m.width if width is None else width

    def scaled(multiplier: float) -> "int | float":
        value = multiplier * width
        return round(value) if abs(value - round(value)) <= 1e-9 * max(1.0, abs(value)) else value

    rule = m.rules[width_rule(m.arch, m.rules)]
    return {arg: [scaled(x) for x in v] if isinstance(v, list) else scaled(v) for arg, v in rule.items()}


def configured_lam(penalty: "dict | PenaltyConfig") -> Optional[float]:
    """λ as a config gives it, resolved here only: 10**log10_lam when set, else lam; None for a run
    in coef space, whose λ = coef/c follows from the model's sizes (wdbench.penalty.penalty_for)."""
    p = penalty if isinstance(penalty, dict) else asdict(penalty)
    if p.get("log10_coef") is not None:
        return None
    return 10.0 ** p["log10_lam"] if p.get("log10_lam") is not None else p.get("lam")


def run_identity(run: RunConfig) -> dict:
    return identity(asdict(run))


def pack_key(run: RunConfig) -> str:
    """What runs trained together in one pack must share: the run's identity without its seed (but
    for data=ridge) and its penalty coefficient (λ in whichever normalisation, or coef), plus the
    device it runs on, and where its data are read from (a pack reads them once, for all its members)."""
    same = run_identity(run)
    same["data"].update(root=run.data.root, path=run.data.path)
    if run.data.name != "ridge":  # ridge's data are drawn from the seed: one dataset per seed
        del same["seed"]
    same["penalty"] = {key: same["penalty"][key] for key in ("apply", "exclude")}
    return json.dumps({**same, "device": run.device}, sort_keys=True)


def made_by(result: dict, run: RunConfig) -> bool:
    """Whether a recorded result (or checkpointed run) is of this very run. Where its data lived is not
    its identity, and may be gone (moved): the recorded config is checked with this run's places."""
    config = result.get("config")
    if not isinstance(config, dict):
        return False
    if isinstance(config.get("data"), dict):
        here = {key.split(".")[1]: getattr(run.data, key.split(".")[1]) for key in DATA_PLACES}
        config = {**config, "data": {**config["data"], **here}}
    return run_identity(parse_run_config(config)) == run_identity(run)


def _validate(run: RunConfig) -> None:
    """Every check of a parsed run that needs neither its data nor its model, group by group; the
    first failure is one ConfigError line."""
    _validate_model(run.model)
    _validate_data(run)
    _validate_optim(run)
    _validate_penalty(run.penalty)
    _validate_run(run)


def _validate_model(m: Any) -> None:
    _check(m.width >= 1, f"model.width={m.width}: must be an integer >= 1")
    for key in ("depth", "blocks", "patch_size", "head_dim"):
        if hasattr(m, key):
            _check(getattr(m, key) >= 1, f"model.{key}={getattr(m, key)}: must be an integer >= 1")
    for key in ("mlp_ratio", "tokens_mlp_ratio", "channels_mlp_ratio"):
        if hasattr(m, key):
            value = getattr(m, key)
            # timm sizes the hidden layer int(ratio·width) and silently uses the width itself for 0
            _check(
                math.isfinite(value) and value > 0 and int(value * m.width) >= 1,
                f"model.{key}={value}: must be > 0 and leave at least one hidden unit at width {m.width}",
            )
    if hasattr(m, "param"):  # the image models: μP or SP
        _choice("model.param", m.param, PARAMS)
        _check(m.base_width >= 1, f"model.base_width={m.base_width}: must be an integer >= 1")
    if isinstance(m, TimmConfig):
        _validate_timm(m)
    for key in ("width", "base_width"):
        value = getattr(m, key, None)
        if isinstance(m, ViTConfig):
            _check(value % m.head_dim == 0, f"model.{key}={value}: must be a multiple of model.head_dim={m.head_dim}")
        if isinstance(m, ResNetConfig):
            _check(value % 2 == 0, f"model.{key}={value}: must be even for resnet (stem width w/2)")


def _validate_timm(m: TimmConfig) -> None:
    """The rule that widens model.arch, checked for its grammar; whether it builds and widens the
    model is wdbench.checks' (it needs timm)."""
    _check(
        bool(m.arch) and "." not in m.arch,
        f"model.arch={m.arch!r}: must be a timm architecture name without a pretrained tag, e.g. convnext_atto",
    )
    key = width_rule(m.arch, m.rules)
    _check(
        key is not None,
        f"model.arch={m.arch}: no rule in model.rules widens it (rules for: {', '.join(sorted(map(str, m.rules)))}); "
        f"add one, e.g. +model.rules.{m.arch}={{embed_dim:1}} (docs/models.md)",
    )
    rule, where = m.rules[key], f"model.rules.{key}"
    _check(
        isinstance(rule, dict) and bool(rule),
        f"{where}={rule}: expected a mapping from constructor argument to a multiplier of model.width or a "
        "list of them, e.g. {dims: [1, 2, 4, 8]}",
    )
    for arg, multiplier in rule.items():
        multipliers = multiplier if isinstance(multiplier, list) else [multiplier]
        _check(
            bool(multipliers) and all(_positive_number(x) for x in multipliers),
            f"{where}.{arg}={multiplier}: must be a number > 0 (a multiplier of model.width) or a list of them",
        )
    for arg in [*rule, *m.kwargs]:
        _check(
            arg not in TIMM_RESERVED,
            f"{f'{where}.{arg}' if arg in rule else f'model.kwargs.{arg}'}: set by wdbench (in_chans, num_classes "
            "and img_size from the data, never pretrained); remove it",
        )
    both = sorted(set(rule) & set(m.kwargs))
    _check(not both, f"model.kwargs.{both[0] if both else ''}: also set from model.width by {where}; remove one")


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _validate_data(run: RunConfig) -> None:
    m, d = run.model, run.data
    _choice("data.name", d.name, DATASETS)
    _check(
        (d.name == "ridge") == isinstance(m, LinearConfig),
        f"model={m.name}, data={d.name}: model=linear and data=ridge go together (the closed-form ridge check)",
    )
    if d.name in DRAWN:
        _check(
            d.n_train is not None and d.n_train >= 1, f"data.n_train={d.n_train}: data={d.name} needs an integer >= 1"
        )
        _check(d.n_val is not None and d.n_val >= 1, f"data.n_val={d.n_val}: data={d.name} needs an integer >= 1")
    else:
        _check(
            d.n_val is None,
            f"data.n_val={d.n_val}: data=ridge and data=teacher only; data={d.name} holds out data.val_fraction",
        )
    if d.name == "teacher":
        _check(0.0 <= d.label_noise < 1.0, f"data.label_noise={d.label_noise}: must be in [0, 1)")
        _in_range("data.seed", d.seed, SEED_RANGE)
    if d.name == "ridge":
        _check(math.isfinite(d.noise) and d.noise >= 0, f"data.noise={d.noise}: must be finite and >= 0")
        _check(math.isfinite(d.signal) and d.signal > 0, f"data.signal={d.signal}: must be finite and > 0")
        _check(
            not d.augment and d.image_size is None,
            "data.augment, data.image_size: data=ridge has no images to crop, flip or resize",
        )
    _check(0.0 < d.val_fraction < 1.0, f"data.val_fraction={d.val_fraction}: must be in (0, 1)")
    if d.image_size is not None:
        _check(
            1 <= d.image_size <= MAX_IMAGE_SIZE,
            f"data.image_size={d.image_size}: must be in [1, {MAX_IMAGE_SIZE}] or null",
        )
    _in_range("data.split_seed", d.split_seed, SPLIT_SEED_RANGE)
    if d.name in ROOT_HOLDS:
        _check(d.root is not None, f"data.root: required for data={d.name} ({ROOT_HOLDS[d.name]})")
        _check(os.path.isdir(d.root), f"data.root={d.root}: directory not found")
    _validate_own_data(d)


def _validate_own_data(d: DataConfig) -> None:
    """The fields of data=folder and data=arrays (what their files hold: wdbench.checks)."""
    if d.name == "arrays":
        _check(
            d.path is not None,
            "data.path: required for data=arrays (an .npz file of x_train, y_train and optionally x_val, y_val)",
        )
        _check(os.path.isfile(d.path), f"data.path={d.path}: file not found")
    _check(d.path is None or d.name == "arrays", f"data.path={d.path}: used by data=arrays only, not data={d.name}")
    _check(
        d.channels is None or d.name == "folder",
        f"data.channels={d.channels}: used by data=folder only; data={d.name} has its own channels",
    )
    _check(
        d.channels is None or d.channels in FOLDER_CHANNELS,
        f"data.channels={d.channels}: must be 1 (grayscale), 3 (RGB) or null (1 when every image is grayscale, else 3)",
    )
    _check(
        d.fingerprint is None or d.name in OWN_DATA,
        f"data.fingerprint={d.fingerprint}: used by data=folder and data=arrays only, not data={d.name}",
    )


def _validate_optim(run: RunConfig) -> None:
    o = run.optim
    _choice("optim.name", o.name, OPTIMIZERS)
    _choice("optim.schedule", o.schedule, SCHEDULES)
    _check(0 < o.lr <= LARGEST, f"optim.lr={o.lr}: must be in (0, {LARGEST:g}]")
    _check(
        len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
        f"optim.betas={list(o.betas)}: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]",
    )
    _check(0 < o.eps <= 1, f"optim.eps={o.eps}: must be in (0, 1]")
    _check(o.epochs >= 1, f"optim.epochs={o.epochs}: must be an integer >= 1")
    _check(0 <= o.warmup_epochs < o.epochs, f"optim.warmup_epochs={o.warmup_epochs}: must be in [0, optim.epochs)")
    _check(0 <= o.momentum < 1, f"optim.momentum={o.momentum}: must be in [0, 1)")


def _validate_penalty(p: PenaltyConfig) -> None:
    _choice("penalty.norm", p.norm, NORMS)
    _choice("penalty.apply", p.apply, APPLIES)
    _check(
        p.log10_lam is None or p.log10_coef is None,
        "penalty.log10_lam, penalty.log10_coef: set at most one (a grid in λ or in coef = λ·c)",
    )
    for key in ("log10_lam", "log10_coef"):
        value = getattr(p, key)
        _check(
            value is None or LOG10_RANGE[0] <= value <= LOG10_RANGE[1],
            f"penalty.{key}={value}: must be in [{LOG10_RANGE[0]}, {LOG10_RANGE[1]}] or null",
        )
    _check(0 <= p.lam <= LARGEST, f"penalty.lam={p.lam}: must be in [0, {LARGEST:g}]")


def _validate_run(run: RunConfig) -> None:
    for i, law in enumerate(run.predictions):
        _check(bool(law.source.strip()), f"predictions[{i}].source: empty; name who predicts it")
        _choice(f"predictions[{i}].norm", law.norm, ("coef", *NORMS))
        _choice(f"predictions[{i}].axis", law.axis, tuple(STUDY_AXES))
        _check(math.isfinite(law.exponent), f"predictions[{i}].exponent={law.exponent}: must be finite")
    _choice("logger.name", run.logger.name, tuple(LOGGERS))
    module = LOGGERS[run.logger.name]
    if module:
        import importlib.util

        _check(
            importlib.util.find_spec(module) is not None,
            f"logger={run.logger.name}: needs the {module} package (pip install -e '.[loggers]'); allowed without "
            "it: none",
        )
    _choice("device", run.device, DEVICES)  # whether the node that trains has a GPU is checked there (runner)
    _choice("precision", run.precision, PRECISIONS)
    _check(0 <= run.threads <= MAX_THREADS, f"threads={run.threads}: must be in [0, {MAX_THREADS}] (0 = automatic)")
    _in_range("seed", run.seed, SEED_RANGE)
    _check(run.checkpoint_every_s >= 0, f"checkpoint_every_s={run.checkpoint_every_s}: must be >= 0")
