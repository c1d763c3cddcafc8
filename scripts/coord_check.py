"""The coordinate check of μP (Yang et al. 2022): each layer's activation scale after a few training
steps, across widths, under SP and under μP. Under μP every curve is flat in width; under SP with
Adam the later layers' grow with it (their updates are Θ(width) times too large).

    python scripts/coord_check.py [--model resnet|vit] [--out FILE]   (default: paper/figures/coord_check_MODEL.pdf)

Runs are trained by the harness itself (a pack of one, model.param=sp|mup, digits, Adam at
lr 0.01 so that SP's blow-up shows within 3 steps); the scale is mean |x| of each named module's
output on a fixed batch of 64 validation images (in training mode: BatchNorm normalises by the
batch, as in a training step), after every step."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.figures import save_figure, style  # noqa: E402
from wdbench.app import CONF_DIR  # noqa: E402
from wdbench.config import parse_run_config  # noqa: E402
from wdbench.train import Interrupted, Pack  # noqa: E402

LAYERS = {
    "resnet": ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"],
    "vit": ["patch_embed", "blocks.0", "blocks.1", "head"],
}
WIDTHS = {"resnet": [8, 16, 32, 64, 128], "vit": [16, 32, 64, 128, 256]}


def activation_scales(model: str, width: int, param: str, steps: int = 3, lr: float = 0.01) -> dict:
    """{layer: [mean |output| after step 1, ..., after ``steps``]} for one run (seed 0)."""
    overrides = [
        "device=cpu",
        "progress=false",
        f"model={model}",
        f"model.width={width}",
        f"model.param={param}",
        "optim=adam",
        f"optim.lr={lr}",
        "optim.schedule=constant",
        "penalty.lam=0",
        "optim.batch_size=64",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        pack = Pack([parse_run_config(compose("config", overrides=overrides))])
    net, batch = pack.members[0].model, pack.data.x_val[:64]
    modules = dict(net.named_modules())
    scales: dict[str, list[float]] = {name: [] for name in LAYERS[model]}
    for step in range(1, steps + 1):
        pack.interrupt = lambda: pack.step == step
        try:
            pack.train_epoch()
        except Interrupted:
            pass
        outputs = {}
        hooks = [
            modules[name].register_forward_hook(lambda m, a, out, name=name: outputs.__setitem__(name, out))
            for name in scales
        ]
        kept = {name: b.clone() for name, b in net.named_buffers()}  # BatchNorm in training mode, as trained
        with torch.no_grad():
            net.train()(batch)
        for name, b in net.named_buffers():
            b.copy_(kept[name])
        for hook in hooks:
            hook.remove()
        for name in scales:
            scales[name].append(outputs[name].abs().mean().item())
    return scales


def figure(model: str, table: dict, out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    style()
    fig, axes = plt.subplots(1, 2, figsize=(6.0, 2.6), sharey=True)
    widths = WIDTHS[model]
    for ax, param in zip(axes, ("sp", "mup")):
        for name in LAYERS[model]:
            ax.plot(widths, [table[param, w][name][-1] for w in widths], marker="o", ms=3, label=name)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="width",
            title=f"{model}, {'SP' if param == 'sp' else 'μP'}: after 3 Adam steps",
        )
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.minorticks_off()
    axes[0].set_ylabel("mean |activation|")
    axes[1].legend(frameon=False, loc="upper right")  # μP's curves stay low: its top is empty
    fig.tight_layout()
    save_figure(fig, out.parent, out.stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(LAYERS), default="resnet")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.out = args.out or ROOT / "paper" / "figures" / f"coord_check_{args.model}.pdf"
    torch.set_num_threads(1)
    table = {(param, w): activation_scales(args.model, w, param) for param in ("sp", "mup") for w in WIDTHS[args.model]}
    for param in ("sp", "mup"):
        print(f"{param}: mean |activation| after 3 steps (rows: layers; columns: widths {WIDTHS[args.model]})")
        for name in LAYERS[args.model]:
            print(f"  {name:12s}" + "".join(f"{table[param, w][name][-1]:10.3g}" for w in WIDTHS[args.model]))
    figure(args.model, table, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
