"""Rotational equilibrium, measured against predicted (Kosson et al., "Rotational Equilibrium: How
Weight Decay Balances Learning Across Neural Networks", ICML 2024), from a sweep run with
diagnostics=true and AdamW's decoupled decay (conf/experiment/equilibrium.yaml).

    python scripts/equilibrium.py SWEEP_DIR [--last 10] [--out paper/results/equilibrium/tensors.csv]

For a scale-invariant weight tensor of C elements (here every convolution, each followed by
BatchNorm) trained by AdamW at learning rate η with torch weight decay λ_t = 2·coef (wdbench's
decoupled w ·= 1 − η·2·coef), the equilibrium norm is sqrt(η·C/(2·λ_t)) and the angular update per
step sqrt(2·η·λ_t·(1 − β₁)/(1 + β₁)). Measured: each run's per-epoch tensor norm and angular update
(sampled at the epoch's last step), averaged over the last ``--last`` epochs: a row per (run, tensor),
kept for the paper (``python -m analysis paper`` draws the figure and the ratios from it;
analysis/equilibrium.py)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.equilibrium import COLUMNS, checked, exponents, ratios  # noqa: E402
from analysis.table import AnalysisError  # noqa: E402
from wdbench.config import parse_run_config  # noqa: E402
from wdbench.models import build_model  # noqa: E402
from wdbench.results import RESULT_FILE, read_result  # noqa: E402
from wdbench.sources import input_shape  # noqa: E402


def predicted(lr: float, coef: float, beta1: float, elements: int) -> tuple[float, float]:
    """(norm, angular update per step) at equilibrium, with λ_t = 2·coef."""
    decay = 2 * coef
    return math.sqrt(lr * elements / (2 * decay)), math.sqrt(2 * lr * decay * (1 - beta1) / (1 + beta1))


def points(sweep: Path, last: int) -> list[dict]:
    """One row per (run, scale-invariant tensor): predicted and measured norm and angle."""
    rows = []
    for path in sorted(sweep.rglob(RESULT_FILE)):
        result = read_result(path.parent)
        history = result.get("history") or []
        if result.get("status") != "completed" or not history or "tensor_norm" not in history[-1]:
            continue
        run = parse_run_config(result["config"])
        if (
            run.penalty.apply != "decoupled"
            or run.optim.name not in ("adam", "adamw")
            or run.optim.schedule != "constant"
        ):  # the laws are for a constant η
            continue
        side, channels, outputs = input_shape(run)
        with torch.device("meta"):
            sizes = {
                n: p.numel()
                for n, p in build_model(run.model, channels, outputs, side).named_parameters()
                if p.dim() == 4
            }  # convolutions: each followed by BatchNorm
        coef = result["penalty"]["coef"]
        tail = history[-last:]
        for name, elements in sizes.items():
            if name not in tail[-1]["tensor_norm"]:
                continue
            norm, angle = predicted(run.optim.lr, coef, run.optim.betas[0], elements)
            rows.append(
                {
                    "seed": result["seed"],
                    "coef": coef,
                    "width": run.model.width,
                    "lr": run.optim.lr,
                    "epochs": run.optim.epochs,
                    "averaged_epochs": len(tail),
                    "tensor": name,
                    "elements": elements,
                    "norm_predicted": norm,
                    "norm": sum(h["tensor_norm"][name] for h in tail) / len(tail),
                    "angle_predicted": angle,
                    "angle": sum(h["angular_update"][name] for h in tail) / len(tail),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--last", type=int, default=10, help="epochs averaged at the end of each run")
    parser.add_argument("--out", type=Path, default=ROOT / "paper" / "results" / "equilibrium" / "tensors.csv")
    args = parser.parse_args()
    rows = points(args.sweep, args.last)
    if not rows:
        print(
            f"equilibrium: sweep {args.sweep}: no completed AdamW run (decoupled, constant lr) with diagnostics=true",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        tensors = checked(pd.DataFrame(rows)[COLUMNS], str(args.sweep))
    except AnalysisError as error:
        print(f"equilibrium: {error}", file=sys.stderr)
        sys.exit(2)
    with pd.option_context("display.width", 120):
        print(ratios(tensors).to_string(index=False, float_format="%.3f"))
        print(exponents(tensors).to_string(index=False, float_format="%.3f"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tensors.to_csv(args.out, index=False, float_format="%.8g")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
