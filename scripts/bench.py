"""Speed figures for docs/speed.md, as ratios measured in one run on this machine.

    .venv/bin/python scripts/bench.py [--width 16] [--repeats 15] [--json out.json] [--sections 123456789]

1. harness step time / minimal hand-written PyTorch loop (same model, data, optimizer; goal <= 1.05)
2. step time with each penalty norm x apply / no penalty (goal <= 1.03), and the explicit
   loss-term alternative for comparison
3. local multirun throughput, all cores (wdbench's local launcher) / sequential (Hydra's basic
   launcher, with torch's default threads and with 1 thread)
4. packing: one step of a pack of K runs / K steps of runs alone (1 thread), per model and width
5. a 64-run slice of the default study (one width, 16 coefs x 4 seeds), whole command on all cores,
   hydra.launcher.pack=K / pack=1 (runs finished per minute)
6. the whole default study (the quickstart sweep, 300 runs), packed (the launcher's default) / pack=1
7. an epoch with diagnostics=true (per-tensor norms, angular updates) / without (goal <= 1.03)
8. a 24-run sweep (one width, 6 coefs x 4 seeds) on all cores, packed (the launcher's default) / pack=1
9. host work per augmented step against K: host draws and device copies inside an epoch's steps
   (none: the epoch's offsets are drawn at its start), the draw's share of an epoch, and whether the
   offsets equal those of a step-by-step draw

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
from wdbench.train import Pack


def run_config(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return parse_run_config(compose("config", overrides=["device=cpu", *overrides]))


def minimal_epoch(model, opt, x_train, y_train, batch_size, generator):
    """The loop anyone would write by hand: shuffle, slice, forward, backward, step."""
    model.train()
    order = torch.randperm(len(y_train), generator=generator)
    for i in range(len(y_train) // batch_size):
        idx = order[i * batch_size : (i + 1) * batch_size]
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def loss_term_epoch(pack):
    """The alternative to the penalty's gradient form: an explicit term of the loss (a pack of one)."""
    t, B, (member,) = pack, pack.batch_size, pack.members
    t.module.train()
    order = torch.randperm(t.n_train, generator=member.rng)
    for i in range(t.steps_per_epoch):
        idx = order[i * B : (i + 1) * B]
        decayed = [p[0] for p in t.decayed]
        loss = F.cross_entropy(t.logits(t.data.x_train[idx][None])[0], t.data.y_train[idx]) + member.penalty.loss(
            decayed
        )
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
    base = Pack([run_config(*common, "penalty.lam=0")])
    model, optim = copy.deepcopy(base.members[0].model), base.members[0].run.optim
    opt = torch.optim.SGD(model.parameters(), lr=optim.lr, momentum=optim.momentum)
    gen = torch.Generator().manual_seed(0)
    variants = {
        "minimal loop": lambda: minimal_epoch(model, opt, base.data.x_train, base.data.y_train, 128, gen),
        "harness, no penalty": base.train_epoch,
    }
    for norm in NORMS:
        for apply in APPLIES:
            t = Pack([run_config(*common, f"penalty={norm}", f"penalty.apply={apply}", "penalty.lam=1e-3")])
            variants[f"harness, {norm}/{apply}"] = t.train_epoch
    loss_term = Pack([run_config(*common, "penalty.lam=1e-3")])
    variants["explicit loss term, sum"] = lambda: loss_term_epoch(loss_term)
    times = step_times(variants, base.steps_per_epoch, repeats)
    return {
        "width": width,
        "n_params": base.members[0].n_params,
        "steps_per_epoch": base.steps_per_epoch,
        "step_s": times,
        "harness_vs_minimal": times["harness, no penalty"] / times["minimal loop"],
        "penalty_vs_none": {
            k.split(", ")[1] if k.startswith("harness, ") else k: v / times["harness, no penalty"]
            for k, v in times.items()
            if k not in ("minimal loop", "harness, no penalty")
        },
    }


def diagnostics_overhead(width: int, repeats: int) -> float:
    """Epoch time with diagnostics (per-tensor norms and the angular update) / without, AdamW at
    decoupled decay, the epoch-end bookkeeping included."""
    common = [f"model.width={width}", "optim=adamw", "optim.batch_size=128", "penalty.lam=1e-2"]
    plain, watched = (Pack([run_config(*common, f"diagnostics={d}")]) for d in ("false", "true"))
    variants = {"plain": plain.train_epoch, "diagnostics": lambda: (watched.train_epoch(), watched._equilibrium())}
    times = step_times(variants, plain.steps_per_epoch, repeats)
    return times["diagnostics"] / times["plain"]


def multirun_throughput() -> dict:
    """Wall time of one whole ``python -m wdbench -m`` command per launcher, start-up included, on a
    slice of the main job (4 widths x 4 lambdas), and of rerunning it when every run is finished
    (start-up, validation and exit alone), so the steady-state ratio can be given too."""
    sweep = ["model.width=4,8,16,32", "penalty.log10_lam=-2,-1.5,-1,-0.5"]
    launchers = {
        "sequential, torch default threads": ["hydra/launcher=basic"],
        "sequential, 1 thread": ["hydra/launcher=basic", "threads=1"],
        "all cores (local launcher)": ["hydra/launcher=local", "hydra.launcher.pack=1"],
    }
    out = {"runs": 16, "cores": os.cpu_count(), "wall_s": {}}
    for label, launcher in launchers.items():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-m",
                "wdbench",
                "-m",
                *launcher,
                *sweep,
                "progress=false",
                f"out_dir={tmp}",
                "name=bench",
            ]
            for key in (label, f"{label}, rerun (all finished)"):
                start = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                out["wall_s"][key] = time.perf_counter() - start
    parallel = "all cores (local launcher)"
    overhead = statistics.mean(t for label, t in out["wall_s"].items() if label.endswith("(all finished)"))
    out["fixed_overhead_s"] = overhead
    out["speedup"] = {label: out["wall_s"][label] / out["wall_s"][parallel] for label in launchers if label != parallel}
    out["speedup_steady_state"] = {
        label: (out["wall_s"][label] - overhead) / (out["wall_s"][parallel] - overhead) for label in out["speedup"]
    }
    return out


PACK_SETTINGS = [
    ("resnet", 4),
    ("resnet", 8),
    ("resnet", 16),
    ("resnet", 32),
    ("resnet", 64),
    ("vit", 16),
    ("vit", 32),
    ("vit", 64),
]


def pack_step_ratios(settings, sizes, repeats: int) -> list[dict]:
    """Per (model, width, K): K epochs of runs alone / one epoch of their pack, same seconds measured
    interleaved; > 1 means the pack finishes runs faster."""
    rows = []
    for model, width in settings:
        common = [f"model={model}", f"model.width={width}", "optim.batch_size=128"]
        alone = Pack([run_config(*common, "seed=0", "penalty.log10_coef=-2")])
        packs = {
            k: Pack([run_config(*common, f"seed={s % 4}", f"penalty.log10_coef={-3 + s / k}") for s in range(k)])
            for k in sizes
        }
        variants = {"alone": alone.train_epoch, **{f"pack of {k}": p.train_epoch for k, p in packs.items()}}
        times = step_times(variants, alone.steps_per_epoch, repeats)
        for k in sizes:
            rows.append(
                {
                    "model": model,
                    "width": width,
                    "K": k,
                    "alone_ms": times["alone"] * 1e3,
                    "pack_ms": times[f"pack of {k}"] * 1e3,
                    "ratio": k * times["alone"] / times[f"pack of {k}"],
                }
            )
    return rows


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def packed_sweep_throughput(settings, pack: int) -> list[dict]:
    """A 64-run slice of the default study at one width (16 coefs x 4 seeds, 10 epochs): the whole
    command on all cores with hydra.launcher.pack=1 and =pack; runs finished per minute. Also the
    command's fixed cost, the part no packing can touch: a rerun with every run finished (start-up,
    composing and validating the 64 runs, exit) plus importing what training needs (torch, timm,
    scikit-learn), and the ratio with it taken out of both."""
    fixed_import = statistics.median(_timed([sys.executable, "-c", "import wdbench.runner"]) for _ in range(3))
    rows = []
    for model, width in settings:
        sweep = [
            sys.executable,
            "-m",
            "wdbench",
            "-m",
            f"model={model}",
            f"model.width={width}",
            "penalty.log10_coef=range(-3.5,0.5,0.25)",
            "seed=0,1,2,3",
            "progress=false",
            "name=bench",
        ]
        row = {"model": model, "width": width, "runs": 64}
        for k in (1, pack):
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [*sweep, f"hydra.launcher.pack={k}", f"out_dir={tmp}"]
                row[f"wall_s_pack{k}"] = _timed(cmd)
                row[f"rerun_s_pack{k}"] = _timed(cmd)  # nothing left to train
            row[f"runs_per_min_pack{k}"] = 64 / row[f"wall_s_pack{k}"] * 60
        row["ratio"] = row[f"runs_per_min_pack{pack}"] / row["runs_per_min_pack1"]
        row["fixed_s"] = statistics.mean([row["rerun_s_pack1"], row[f"rerun_s_pack{pack}"]]) + fixed_import
        row["ratio_fixed_cost_out"] = (row["wall_s_pack1"] - row["fixed_s"]) / (
            row[f"wall_s_pack{pack}"] - row["fixed_s"]
        )
        rows.append(row)
    return rows


def quickstart_wall(keep: str | None = None) -> dict:
    """Wall time of the quickstart sweep command (300 runs, every core), unpacked and packed; ``keep``:
    leave both sweeps' results there (``<keep>/pack1``, ``<keep>/packed``) to compare them run by run."""
    if keep and os.path.exists(keep) and os.listdir(keep):
        raise SystemExit(f"--keep {keep}: not empty (a rerun would skip the finished runs and time nothing)")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, launcher in (
            ("pack=1", "pack1", ["hydra.launcher.pack=1"]),
            ("packed (default)", "packed", []),
        ):
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "wdbench",
                    "-m",
                    "experiment=quickstart",
                    *launcher,
                    "progress=false",
                    f"out_dir={os.path.join(keep or tmp, name)}",
                ],
                check=True,
                capture_output=True,
            )
            out[label] = time.perf_counter() - start
    out["ratio"] = out["pack=1"] / out["packed (default)"]
    return out


def sweep24_wall(width: int) -> dict:
    """The whole command of a 24-run sweep on every core: default packing / hydra.launcher.pack=1."""
    out = {}
    sweep = [
        sys.executable,
        "-m",
        "wdbench",
        "-m",
        f"model.width={width}",
        "penalty.log10_coef=-3,-2.5,-2,-1.5,-1,null",
        "seed=0,1,2,3",
        "progress=false",
        "name=bench24",
    ]
    for label, launcher in (("pack=1", ["hydra.launcher.pack=1"]), ("packed (default)", [])):
        with tempfile.TemporaryDirectory() as tmp:
            out[label] = _timed([*sweep, *launcher, f"out_dir={tmp}"])
    out["ratio"] = out["pack=1"] / out["packed (default)"]
    return out


def host_work_per_step(sizes=(1, 8, 32)) -> list[dict]:
    """Per K: host calls (generator draws, copies to a device) made inside an epoch's augmented steps,
    the epoch-start draw's share of the epoch, and whether the offsets are the step-by-step ones."""
    from wdbench.data import crop_flip_offsets

    rows = []
    for k in sizes:
        runs = [run_config("model.width=4", "data.augment=true", f"seed={s}") for s in range(k)]
        pack, calls, real_randint = Pack(runs), [0], torch.randint
        polls = []
        pack.interrupt = lambda: polls.append(calls[0]) and False

        def counted(*args, **kwargs):
            calls[0] += 1
            return real_randint(*args, **kwargs)

        torch.randint = counted
        try:
            start = time.perf_counter()
            pack.train_epoch()
            epoch_s = time.perf_counter() - start
        finally:
            torch.randint = real_randint
        start = time.perf_counter()
        drawn = pack._epoch_offsets()
        draw_s = time.perf_counter() - start
        rng = [torch.Generator().manual_seed(r.seed) for r in runs]
        for g in rng:  # the epoch trained (its permutation and offsets): where the pack's generators stand
            torch.randperm(pack.n_train, generator=g)
            for _ in range(pack.steps_per_epoch):
                crop_flip_offsets(pack.batch_size, g)
        same = all(
            torch.equal(drawn[i, :, j], torch.stack(crop_flip_offsets(pack.batch_size, g)).to(torch.uint8))
            for i in range(pack.steps_per_epoch)
            for j, g in enumerate(rng)
        )
        rows.append(
            {
                "K": k,
                "host_calls_within_steps": polls[-1] - polls[0],
                "draw_share_of_epoch": draw_s / epoch_s,
                "same_as_step_by_step": same,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--sections", default="123456789", help="which of the numbered measurements to run")
    parser.add_argument("--pack", type=int, default=16, help="K of the whole-command packing measurement")
    parser.add_argument(
        "--sweep-settings",
        type=lambda s: [(m, int(w)) for m, w in (x.split(":") for x in s.split(","))],
        default=[("resnet", 4), ("resnet", 8), ("resnet", 16), ("resnet", 32), ("vit", 16)],
        help="model:width,... of the whole-command packing measurement",
    )
    parser.add_argument("--keep", help="section 6: keep both quickstart sweeps' results under this directory")
    args = parser.parse_args()
    torch.set_num_threads(1)

    figures = {}
    if "1" in args.sections or "2" in args.sections:
        steps = harness_and_penalty(args.width, args.repeats)
        print(
            f"resnet width {steps['width']} ({steps['n_params']} params) on digits, batch 128, "
            f"{steps['steps_per_epoch']} steps/epoch, 1 thread, median of {args.repeats}"
        )
        for name, seconds in steps["step_s"].items():
            print(f"  {name:32s} {seconds * 1e3:7.2f} ms/step")
        print(f"harness / minimal loop: {steps['harness_vs_minimal']:.3f}   (goal <= 1.05)")
        print(
            "penalty / no penalty:   "
            + "  ".join(f"{k} {v:.3f}" for k, v in steps["penalty_vs_none"].items())
            + "   (goal <= 1.03)"
        )
        figures["steps"] = steps
    if "3" in args.sections:
        multi = multirun_throughput()
        print(
            f"multirun of {multi['runs']} runs, whole command: "
            + ", ".join(f"{label} {t:.1f} s" for label, t in multi["wall_s"].items() if "rerun" not in label)
        )
        print(f"  fixed cost of a command (rerun with every run finished): {multi['fixed_overhead_s']:.1f} s")
        print(
            "all cores / sequential, whole command:  "
            + "  ".join(f"vs {label}: {x:.2f}x" for label, x in multi["speedup"].items())
            + f"   (goal >= 1.7x on {multi['cores']} cores)"
        )
        print(
            "all cores / sequential, fixed cost out: "
            + "  ".join(f"vs {label}: {x:.2f}x" for label, x in multi["speedup_steady_state"].items())
        )
        figures["multirun"] = multi
    if "4" in args.sections:
        packing = pack_step_ratios(PACK_SETTINGS, (8, 16, 32), max(3, args.repeats // 3))
        print("pack of K / K runs alone, training steps, 1 thread (runs per unit time):")
        for r in packing:
            print(
                f"  {r['model']:6s} width {r['width']:3d} K={r['K']:2d}: {r['ratio']:.2f}x  "
                f"({r['alone_ms']:.1f} ms/step alone, {r['pack_ms']:.1f} ms/step packed)"
            )
        figures["packing"] = packing
    if "5" in args.sections:
        sweeps = packed_sweep_throughput(args.sweep_settings, args.pack)
        print(f"64-run slice, whole command on all cores, pack={args.pack} / pack=1 (runs per minute):")
        for r in sweeps:
            print(
                f"  {r['model']:6s} width {r['width']:3d}: {r['ratio']:.2f}x  ({r['runs_per_min_pack1']:.1f} -> "
                f"{r[f'runs_per_min_pack{args.pack}']:.1f} runs/min); the command's fixed {r['fixed_s']:.1f} s out "
                f"of both: {r['ratio_fixed_cost_out']:.2f}x"
            )
        figures["sweeps"] = sweeps
    if "6" in args.sections:
        study = quickstart_wall(args.keep)
        print(
            f"quickstart sweep (300 runs), whole command: pack=1 {study['pack=1']:.0f} s, packed "
            f"{study['packed (default)']:.0f} s: {study['ratio']:.2f}x"
        )
        figures["quickstart"] = study
    if "7" in args.sections:
        figures["diagnostics_vs_none"] = diagnostics_overhead(args.width, args.repeats)
        print(f"epoch with diagnostics / without: {figures['diagnostics_vs_none']:.3f}   (goal <= 1.03)")
    if "8" in args.sections:
        figures["sweep24"] = sweep24_wall(args.width)
        print(
            f"24-run sweep, width {args.width}, whole command: pack=1 {figures['sweep24']['pack=1']:.1f} s, packed "
            f"{figures['sweep24']['packed (default)']:.1f} s: {figures['sweep24']['ratio']:.2f}x"
        )
    if "9" in args.sections:
        figures["host_work"] = host_work_per_step()
        for r in figures["host_work"]:
            print(
                f"  K={r['K']:2d}: host draws within an epoch's steps {r['host_calls_within_steps']}, the epoch's "
                f"draw {100 * r['draw_share_of_epoch']:.1f}% of it, same offsets as step by step: "
                f"{r['same_as_step_by_step']}"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()
