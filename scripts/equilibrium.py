"""Rotational equilibrium, measured against predicted (Kosson et al., "Rotational Equilibrium: How
Weight Decay Balances Learning Across Neural Networks", ICML 2024), from a sweep run with
diagnostics=true and AdamW's decoupled decay (conf/experiment/equilibrium.yaml).

    python scripts/equilibrium.py SWEEP_DIR [--last 10] [--out paper/figures/equilibrium.pdf]

For a scale-invariant weight tensor of C elements (here every convolution, each followed by
BatchNorm) trained by AdamW at learning rate η with torch weight decay λ_t = 2·coef (wdbench's
decoupled w ·= 1 − η·2·coef), the equilibrium norm is sqrt(η·C/(2·λ_t)) and the angular update per
step sqrt(2·η·λ_t·(1 − β₁)/(1 + β₁)). Measured: each run's per-epoch tensor norm and angular update
(sampled at the epoch's last step), averaged over the last ``--last`` epochs."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.figures import save_figure, style  # noqa: E402
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
        if run.penalty.apply != "decoupled" or run.optim.name not in ("adam", "adamw"):
            continue
        side, channels, outputs = input_shape(run)
        with torch.device("meta"):
            sizes = {n: p.numel() for n, p in build_model(run.model, channels, outputs, side).named_parameters()
                     if p.dim() == 4}  # convolutions: each followed by BatchNorm
        coef = result["penalty"]["coef"]
        tail = history[-last:]
        for name, elements in sizes.items():
            if name not in tail[-1]["tensor_norm"]:
                continue
            norm, angle = predicted(run.optim.lr, coef, run.optim.betas[0], elements)
            rows.append({"run": path.parent.name, "tensor": name, "coef": coef, "norm_predicted": norm,
                         "norm": sum(h["tensor_norm"][name] for h in tail) / len(tail), "angle_predicted": angle,
                         "angle": sum(h["angular_update"][name] for h in tail) / len(tail)})
    return rows


def figure(rows: list[dict], out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    style()
    fig, axes = plt.subplots(1, 2, figsize=(6.0, 2.8))
    coefs = sorted({r["coef"] for r in rows})
    colours = plt.cm.viridis([i / max(1, len(coefs) - 1) for i in range(len(coefs))])
    for ax, key, label in ((axes[0], "norm", "tensor norm"), (axes[1], "angle", "angular update per step (rad)")):
        for coef, colour in zip(coefs, colours):
            mine = [r for r in rows if r["coef"] == coef]
            ax.scatter([r[f"{key}_predicted"] for r in mine], [r[key] for r in mine], s=8, color=colour,
                       label=f"coef {coef:.2g}")
        lo = min(min(r[key], r[f"{key}_predicted"]) for r in rows) / 1.5
        hi = max(max(r[key], r[f"{key}_predicted"]) for r in rows) * 1.5
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel=f"predicted {label}",
               ylabel=f"measured {label}")
        for axis in (ax.xaxis, ax.yaxis):  # 1-2-5 ticks, plainly labelled: the angles span one decade
            axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(NullFormatter())
    axes[1].legend(frameon=False, loc="upper left")
    fig.tight_layout()
    save_figure(fig, out.parent, out.stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--last", type=int, default=10, help="epochs averaged at the end of each run")
    parser.add_argument("--out", type=Path, default=ROOT / "paper" / "figures" / "equilibrium.pdf")
    args = parser.parse_args()
    rows = points(args.sweep, args.last)
    if not rows:
        sys.exit(f"equilibrium: no completed AdamW (decoupled) run with diagnostics under {args.sweep}")
    for key in ("norm", "angle"):
        ratios = sorted(r[key] / r[f"{key}_predicted"] for r in rows)
        print(f"{key}: measured / predicted over {len(ratios)} tensors: median {ratios[len(ratios) // 2]:.3f}, "
              f"range {ratios[0]:.3f}-{ratios[-1]:.3f}")
        for coef in sorted({r["coef"] for r in rows}):
            mine = sorted(r[key] / r[f"{key}_predicted"] for r in rows if r["coef"] == coef)
            print(f"  coef {coef:.3g}: median {mine[len(mine) // 2]:.3f}")
    figure(rows, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
