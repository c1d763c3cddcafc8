"""Speed figures for the README, as ratios measured in one run on this machine.

    .venv/bin/python scripts/bench.py [--width 16] [--repeats 15] [--json out.json]

1. harness step time / minimal hand-written PyTorch loop (same model, data, optimizer; goal <= 1.05)
2. step time with each penalty norm x apply / no penalty (goal <= 1.03), and the explicit
   loss-term alternative for comparison
3. local multirun throughput, all cores (wdbench's local launcher) / sequential (Hydra's basic
   launcher, with torch's default threads and with 1 thread)

Step times are medians over repeats of one epoch each, on one thread, the variants interleaved in
a random order so that they see the same machine state.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from wdbench.app import CONF_DIR
from wdbench.config import parse_run_config
from wdbench.penalty import APPLIES, NORMS
from wdbench.train import Trainer


def run_config(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return parse_run_config(compose("config", overrides=["device=cpu", *overrides]))


def minimal_epoch(model, opt, x_train, y_train, batch_size, generator):
    """The loop anyone would write by hand: shuffle, slice, forward, backward, step."""
    model.train()
    order = torch.randperm(len(y_train), generator=generator)
    for i in range(len(y_train) // batch_size):
        idx = order[i * batch_size:(i + 1) * batch_size]
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def loss_term_epoch(trainer):
    """The alternative to add_grad_: the penalty as an explicit term of the loss."""
    t, B = trainer, trainer.batch_size
    t.model.train()
    order = torch.randperm(t.n_train, generator=t.rng)
    for i in range(t.steps_per_epoch):
        idx = order[i * B:(i + 1) * B]
        loss = F.cross_entropy(t.model(t.data.x_train[idx]), t.data.y_train[idx]) + t.penalty.loss(t.decayed)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()


def step_times(variants: dict, steps: int, repeats: int) -> dict:
    """Median seconds per step of each variant (a zero-argument epoch function), interleaved in a
    fresh random order each repeat."""
    for fn in variants.values():  # warm-up
        fn()
    samples = {name: [] for name in variants}
    order = list(variants)
    shuffle = random.Random(0).shuffle
    for _ in range(repeats):
        shuffle(order)  # no variant always runs right after the same other one
        for name in order:
            fn = variants[name]
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(s) for name, s in samples.items()}


def harness_and_penalty(width: int, repeats: int) -> dict:
    common = [f"model.width={width}", "optim.batch_size=128"]
    base = Trainer(run_config(*common, "penalty.lam=0"))
    model, opt = copy.deepcopy(base.model), None
    opt = torch.optim.SGD(model.parameters(), lr=base.run.optim.lr, momentum=base.run.optim.momentum)
    gen = torch.Generator().manual_seed(0)
    variants = {"minimal loop": lambda: minimal_epoch(model, opt, base.data.x_train, base.data.y_train, 128, gen),
                "harness, no penalty": base.train_epoch}
    for norm in NORMS:
        for apply in APPLIES:
            t = Trainer(run_config(*common, f"penalty={norm}", f"penalty.apply={apply}", "penalty.lam=1e-3"))
            variants[f"harness, {norm}/{apply}"] = t.train_epoch
    loss_term = Trainer(run_config(*common, "penalty.lam=1e-3"))
    variants["explicit loss term, sum"] = lambda: loss_term_epoch(loss_term)
    times = step_times(variants, base.steps_per_epoch, repeats)
    return {"width": width, "n_params": base.n_params, "steps_per_epoch": base.steps_per_epoch,
            "step_s": times,
            "harness_vs_minimal": times["harness, no penalty"] / times["minimal loop"],
            "penalty_vs_none": {k.split(", ")[1] if k.startswith("harness, ") else k:
                                v / times["harness, no penalty"] for k, v in times.items()
                                if k not in ("minimal loop", "harness, no penalty")}}


def multirun_throughput() -> dict:
    """Wall time of one whole ``python -m wdbench -m`` command per launcher, start-up included, on a
    slice of the main job (4 widths x 4 lambdas), and of rerunning it when every run is finished
    (start-up, validation and exit alone), so the steady-state ratio can be given too."""
    sweep = ["model.width=4,8,16,32", "penalty.log10_lam=-2,-1.5,-1,-0.5"]
    launchers = {"sequential, torch default threads": ["hydra/launcher=basic"],
                 "sequential, 1 thread": ["hydra/launcher=basic", "threads=1"],
                 "all cores (local launcher)": ["hydra/launcher=local"]}
    out = {"runs": 16, "cores": os.cpu_count(), "wall_s": {}}
    for label, launcher in launchers.items():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "wdbench", "-m", *launcher, *sweep, "progress=false", f"out_dir={tmp}",
                   "name=bench"]
            for key in (label, f"{label}, rerun (all finished)"):
                start = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                out["wall_s"][key] = time.perf_counter() - start
    parallel = "all cores (local launcher)"
    overhead = statistics.mean(t for label, t in out["wall_s"].items() if label.endswith("(all finished)"))
    out["fixed_overhead_s"] = overhead
    out["speedup"] = {label: out["wall_s"][label] / out["wall_s"][parallel] for label in launchers
                      if label != parallel}
    out["speedup_steady_state"] = {label: (out["wall_s"][label] - overhead) / (out["wall_s"][parallel] - overhead)
                                   for label in out["speedup"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    steps = harness_and_penalty(args.width, args.repeats)
    print(f"resnet width {steps['width']} ({steps['n_params']} params) on digits, batch 128, "
          f"{steps['steps_per_epoch']} steps/epoch, 1 thread, median of {args.repeats}")
    for name, seconds in steps["step_s"].items():
        print(f"  {name:32s} {seconds * 1e3:7.2f} ms/step")
    print(f"harness / minimal loop: {steps['harness_vs_minimal']:.3f}   (goal <= 1.05)")
    print("penalty / no penalty:   " + "  ".join(f"{k} {v:.3f}" for k, v in steps["penalty_vs_none"].items())
          + "   (goal <= 1.03)")
    multi = multirun_throughput()
    print(f"multirun of {multi['runs']} runs, whole command: " + ", ".join(
        f"{label} {t:.1f} s" for label, t in multi["wall_s"].items() if "rerun" not in label))
    print(f"  fixed cost of a command (rerun with every run finished): {multi['fixed_overhead_s']:.1f} s")
    print("all cores / sequential, whole command:  " + "  ".join(
        f"vs {label}: {x:.2f}x" for label, x in multi["speedup"].items())
        + f"   (goal >= 1.7x on {multi['cores']} cores)")
    print("all cores / sequential, fixed cost out: " + "  ".join(
        f"vs {label}: {x:.2f}x" for label, x in multi["speedup_steady_state"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"steps": steps, "multirun": multi}, fh, indent=1)


if __name__ == "__main__":
    main()
