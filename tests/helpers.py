"""What several test files share: tiny run configs for the trainer's tests and planted tables for the
analysis's. Fixtures stay in conftest.py; test files import helpers from here only."""

import functools
import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from analysis.equilibrium import COLUMNS as TENSOR_COLUMNS
from analysis.planted import Scenario, planted
from wdbench.app import CONF_DIR
from wdbench.config import parse_run_config

# --- Runs of the trainer --------------------------------------------------------------------------

TINY = ["model.width=4", "optim.epochs=2", "optim.batch_size=64", "progress=false", "device=cpu"]  # cpu: a GPU runner
# would otherwise train these on CUDA, where exact-equality checks need not hold


# Toy timm models of three families beyond the built-in ones (model=timm; conf/model/timm.yaml's rules), for
# 8 px digits: ConvNeXt (LayerNorm, depthwise convolutions, layer scale), an EfficientNet (BatchNorm, SiLU,
# squeeze-excite) and a Swin transformer (windowed attention, relative position bias, patch merging).
TIMM_TOYS = {
    "convnext": [
        "model=timm",
        "model.arch=convnext_atto",
        "model.width=8",
        "+model.kwargs.depths=[1,1,1,1]",
        "+model.kwargs.patch_size=1",  # 8 -> 4 -> 2 -> 1 px through its stages
    ],
    "efficientnet": ["model=timm", "model.arch=test_efficientnet", "model.width=8"],  # channel_multiplier 0.5
    "swin": [
        "model=timm",
        "model.arch=swin_tiny_patch4_window7_224",
        "model.width=32",  # heads of 32 dims: 1, 2
        "+model.kwargs.depths=[1,1]",
        "+model.kwargs.patch_size=2",
        "+model.kwargs.window_size=2",
        "+model.kwargs.drop_path_rate=0",  # swin's default 0.1 draws random numbers: runs would train alone
    ],
}


def results_under(root: Path):
    return sorted(Path(root).rglob("result.json"))


@functools.lru_cache(maxsize=None)
def _composed(overrides: tuple):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def tiny_run(*overrides):
    """A fresh run config of TINY on 320 digits (5 steps an epoch), on the CPU; later overrides of a
    key win. Each distinct config is composed once (a tenth of a second each) and parsed anew."""
    by_key = {o.split("=", 1)[0]: o for o in [*TINY, "device=cpu", "data.n_train=320", *overrides]}
    return parse_run_config(_composed(tuple(by_key.values())))


MEMBERS = [("-3", 0), ("-1.5", 1), (None, 2)]  # (log10_coef, seed); None: λ = 0


def runs(*overrides, members=MEMBERS):
    """tiny_run configs that can share a pack: one per (log10_coef, seed) in ``members``."""
    return [
        tiny_run(*overrides, f"seed={seed}", *([f"penalty.log10_coef={c}"] if c else ["penalty.lam=0"]))
        for c, seed in members
    ]


def _roundtrip(state):
    """``state`` through torch.save and torch.load, as a checkpoint on disk would come back."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# --- Planted tables for the analysis --------------------------------------------------------------

QUIET = dict(
    sigma=0.01, seed_sd=0.02, seed_jitter=0.0, misfit=0.0, diverge=0.0, curvature=(0.8, 0.8), asymmetry=(3.0, 3.0)
)


def planted_table(rng=0, **scenario):
    """(results table, truth) of a planted sweep (analysis.planted) with these Scenario fields."""
    return planted(Scenario(**scenario), np.random.default_rng(rng))


def write_csv(df, path):
    df.to_csv(path, index=False)
    return str(path)


def stars_table(widths, coef_star, se=0.05, **columns):
    """A hand-written coef* table (one setting, N_train 1437, B 64) as coef_star_table writes it."""
    n_decayed = 1000 * np.asarray(widths) ** 2
    stars = pd.DataFrame(
        {
            "setting": "all",
            "width": widths,
            "n_train": 1437,
            "batch_size": 64,
            "status": "ok",
            "coef_star": coef_star,
            "se": se,
            "n_seeds": 5,
            "n_decayed": n_decayed,
            "elsewhere": 0.0,
            "n_diverged_near": 0,
            **columns,
        }
    )
    stars["lam_star_sum"] = stars["coef_star"]
    stars["lam_star_mean"] = stars["coef_star"] * n_decayed
    stars["lam_star_per_step"] = stars["coef_star"] * 1437 / 64
    return stars


COEFS = (0.1, 0.18, 0.32, 0.56, 1.0)
TENSORS = {"conv1.weight": 432, "layer1.0.conv1.weight": 2304, "layer2.0.conv1.weight": 4608}


def planted_tensors(
    rng,
    norm_ratio=0.74,
    angle_ratio=0.97,
    norm_exponent=-0.5,
    angle_exponent=0.5,
    size_exponent=0.0,
    seeds=5,
    run_sd=0.03,
    tensor_sd=0.05,
) -> pd.DataFrame:
    """A per-tensor equilibrium table (analysis.equilibrium): measured = predicted × ratio ×
    coef^(e − e_predicted) × (C/432)^size_exponent (the norm only) × a run's noise (shared by its
    tensors) × a tensor's own noise (log-normal, in dex): the per-run geometric mean is what the
    intervals see."""
    rows = []
    for seed in range(seeds):
        for coef in COEFS:
            run = rng.normal(0, run_sd, 2)
            for tensor, elements in TENSORS.items():
                norm_p, angle_p = np.sqrt(0.01 * elements / (4 * coef)), np.sqrt(2 * 0.01 * 2 * coef * 0.1 / 1.9)
                own = rng.normal(0, tensor_sd, 2)
                rows.append(
                    {
                        "seed": seed,
                        "coef": coef,
                        "width": 16,
                        "lr": 0.01,
                        "epochs": 60,
                        "averaged_epochs": 10,
                        "tensor": tensor,
                        "elements": elements,
                        "norm_predicted": norm_p,
                        "angle_predicted": angle_p,
                        "norm": norm_p
                        * norm_ratio
                        * coef ** (norm_exponent + 0.5)
                        * (elements / 432) ** size_exponent
                        * 10 ** (run[0] + own[0]),
                        "angle": angle_p * angle_ratio * coef ** (angle_exponent - 0.5) * 10 ** (run[1] + own[1]),
                    }
                )
    return pd.DataFrame(rows)[TENSOR_COLUMNS]
