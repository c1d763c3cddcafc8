"""The GPU path, checked in one command (docs/gpu.md): on one H100 in under ten minutes, and at toy
size on a CPU (tests/test_gpu_check.py runs it there, so it never rots).

    .venv/bin/python scripts/gpu_check.py [--toy] [--out gpu_check] [--budget-s 480]

Writes OUT/gpu_check.json and OUT/gpu_check.md (a table per part):
1. pack vs alone: members of a pack of 3 against the same runs alone, after 2 steps
   (tolerance: |Δw| <= 1e-4·max|w| + 1e-5 per tensor, as tests/test_pack.py);
2. cpu vs gpu: the same run on both, after 2 steps (same tolerance; skipped without a GPU);
   and whether bf16 autocast reaches a pack's convolutions (where not, bf16 runs train alone);
3. checkpoints (augmented, so the epoch's offsets travel too): a run stopped mid-epoch on one device and resumed on another (cpu->cpu, gpu->gpu,
   gpu->cpu, cpu->gpu), against the run uninterrupted on the second: bit for bit or the gap;
4. two forked local workers sharing one device: a 4-run sweep through python -m wdbench;
5. throughput: member-steps per second and CIFAR-10 runs per hour (40k samples x 30 epochs, B 128)
   for pack sizes K at each model, width and precision, with the peak memory per member against
   member_bytes' estimate; a pack that does not fit is recorded as such. Goals on one H100: >= 10x
   the runs per hour of K = 1 at widths <= 64, the estimate within 25% of the peak.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from wdbench.app import CONF_DIR
from wdbench.config import parse_run_config
from wdbench.numerics import autocast_reaches_vmap
from wdbench.train import Interrupted, Pack, member_bytes

REFERENCE_STEPS = 40_000 // 128 * 30  # one CIFAR-10 run: 40k training images, batch 128, 30 epochs


def run_config(device: str, *overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return parse_run_config(compose("config", overrides=[f"device={device}", "progress=false", *overrides]))


def _steps(pack: Pack, n: int) -> None:
    """Train ``n`` more steps (across epochs, without evaluating)."""
    target = pack.step + n
    pack.interrupt = lambda: pack.step >= target
    while pack.step < target:
        try:
            pack.train_epoch()
        except Interrupted:
            return


def _gap(ours: dict, theirs: dict) -> float:
    """The largest |Δ| of any floating tensor relative to the tolerance (<= 1: within it)."""
    worst = 0.0
    for name, a in ours.items():
        b = theirs[name].to(a.device)
        if a.is_floating_point():
            tolerance = 1e-4 * b.abs().max().item() + 1e-5
            worst = max(worst, (a.float() - b.float()).abs().max().item() / tolerance)
    return worst


def _weights(pack: Pack, k: int = 0) -> dict:
    return {n: t.detach().cpu() for n, t in pack.members[k].model.state_dict().items()}


def pack_vs_alone(device: str, base: list) -> list[dict]:
    rows = []
    for model in (["model=resnet"], ["model=vit", "model.width=16", "model.head_dim=8"]):

        def runs(model=model):
            return [
                run_config(device, *base, *model, f"seed={s}", f"penalty.log10_coef={c}")
                for s, c in ((0, -3), (1, -2), (2, -1))
            ]

        together, alone = Pack(runs()), [Pack([r]) for r in runs()]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for pack in (together, *alone):
                _steps(pack, 2)
        fallback = any("performance drop" in str(w.message) for w in caught)  # vmap looping over a missing rule
        gap = max(_gap(_weights(together, k), _weights(single)) for k, single in enumerate(alone))
        rows.append(
            {
                "check": "pack vs alone",
                "device": device,
                "model": model[0].split("=")[1],
                "gap_over_tolerance": gap,
                "vmap_fallback": fallback,
                "ok": gap <= 1 and not fallback,
            }
        )
    return rows


def cpu_vs_gpu(base: list) -> list[dict]:
    cpu, gpu = Pack([run_config("cpu", *base)]), Pack([run_config("cuda", *base)])
    for pack in (cpu, gpu):
        _steps(pack, 2)
    gap = _gap(_weights(gpu), _weights(cpu))
    return [{"check": "cpu vs gpu", "gap_over_tolerance": gap, "ok": gap <= 1}]


def checkpoints(devices: list[str], base: list) -> list[dict]:
    """Stopped after 3 steps on one device, saved and read back as a checkpoint is, resumed on the
    other for 3 more; against 6 uninterrupted steps there."""
    rows = []
    for first in devices:
        for then in devices:
            stopped = Pack([run_config(first, *base)])
            _steps(stopped, 3)
            buffer = io.BytesIO()
            torch.save(stopped.state_dicts(), buffer)
            buffer.seek(0)
            resumed = Pack([run_config(then, *base)])
            resumed.load_state_dicts(torch.load(buffer, map_location="cpu", weights_only=True))
            _steps(resumed, 3)
            straight = Pack([run_config(then, *base)])
            _steps(straight, 6)
            ours, theirs = _weights(resumed), _weights(straight)
            exact = all(torch.equal(ours[n], theirs[n]) for n in ours)
            gap = _gap(ours, theirs)
            rows.append(
                {
                    "check": f"checkpoint {first}->{then}",
                    "exact": exact,
                    "gap_over_tolerance": gap,
                    "ok": exact if first == then == "cpu" else gap <= 1,
                }
            )
    return rows


def forked_workers(device: str, base: list, out: Path) -> list[dict]:
    """Two local workers forked by the launcher, both on ``device`` (one GPU: they share it)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wdbench",
            "-m",
            *base,
            f"device={device}",
            "seed=0,1",
            "penalty.log10_coef=-3,-2",
            "optim.epochs=1",
            "hydra.launcher.n_jobs=2",
            "hydra.launcher.pack=2",
            "name=forked",
            f"out_dir={out}",
            "progress=false",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "0"} if device == "cuda" else None,
    )
    results = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    workers = {r["provenance"]["host"] + str(r["provenance"]["pack"]["members"]) for r in results}
    completed = sum(r["status"] == "completed" for r in results)
    return [
        {
            "check": "two forked workers",
            "device": device,
            "runs_completed": completed,
            "packs": len(workers),
            "wall_s": time.perf_counter() - start,
            "ok": proc.returncode == 0 and completed == 4 and len(workers) == 2,
            "stderr_tail": proc.stderr[-300:] if proc.returncode else "",
        }
    ]


def throughput(
    device: str, models: list, widths: list, sizes: list, precisions: list, base: list, steps: int, deadline: float
) -> list[dict]:
    rows = []
    for model in models:
        for width in widths:
            for precision in precisions:
                alone_rate = None
                for k in sizes:
                    row = {"model": model[0].split("=")[1], "width": width, "precision": precision, "K": k}
                    rows.append(row)
                    if time.monotonic() > deadline:
                        row["status"] = "skipped: time budget"
                        continue
                    if precision == "bf16" and k > 1 and not autocast_reaches_vmap(device):
                        row["status"] = "runs alone: autocast misses packed convolutions here"
                        continue
                    row.update(
                        _timed_pack(device, [*base, *model, f"model.width={width}", f"precision={precision}"], k, steps)
                    )
                    if row["status"] == "ok":
                        alone_rate = alone_rate or (row["runs_per_hour"] if k == 1 else None)
                        row["vs_K1"] = row["runs_per_hour"] / alone_rate if alone_rate else None
    return rows


def _timed_pack(device: str, overrides: list, k: int, steps: int) -> dict:
    runs = [run_config(device, *overrides, f"seed={s}", f"penalty.log10_coef={-4 + s % 4}") for s in range(k)]
    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    pack = None
    try:
        data = Pack(runs[:1]).data if not cuda else None  # the data alone, to subtract from the peak
        base = torch.cuda.memory_allocated() if cuda else 0
        pack = Pack(runs, data)
        if cuda:
            base = torch.cuda.memory_allocated() - sum(
                t.nbytes for t in (*pack.params.values(), *pack.buffers.values())
            )
        _steps(pack, 2)  # warm: cuDNN's plans, the allocator's pool
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        _steps(pack, steps)
        if cuda:
            torch.cuda.synchronize()
        step_s = (time.perf_counter() - start) / steps
    except torch.OutOfMemoryError:
        return {"status": "out of memory"}
    finally:
        del pack
    side, chans, classes = runs[0].data.image_size or 8, 3, 10
    estimate = member_bytes(runs[0], chans, classes, side, packed=k > 1)
    peak = (torch.cuda.max_memory_allocated() - base) / k if cuda else None
    return {
        "status": "ok",
        "step_ms": 1000 * step_s,
        "member_steps_per_s": k / step_s,
        "runs_per_hour": 3600 * k / (step_s * REFERENCE_STEPS),
        "peak_mib_per_member": peak and peak / 2**20,
        "estimate_mib_per_member": estimate / 2**20,
        "estimate_over_peak": peak and estimate / peak,
    }


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else "" if v is None else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join(lines + ["| " + " | ".join(fmt(row.get(k)) for k in keys) + " |" for row in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="CPU-sized (the default without a GPU)")
    parser.add_argument("--out", default="gpu_check")
    parser.add_argument("--budget-s", type=float, default=480, help="the throughput grid stops here")
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available()
    toy = args.toy or not gpu
    device = "cuda" if gpu else "cpu"
    deadline = time.monotonic() + args.budget_s
    base = (
        [
            "data=teacher",
            "data.augment=true",
            "data.n_train=512",
            "data.n_val=256",
            "optim.batch_size=64",
            "model.width=4",
        ]
        if toy
        else [
            "data=teacher",
            "data.augment=true",
            "data.image_size=32",
            "data.n_train=4096",
            "data.n_val=1024",
            "optim.batch_size=128",
            "model.width=16",
        ]
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "toy": toy,
    }
    report["correctness"] = pack_vs_alone(device, base) + (cpu_vs_gpu(base) if gpu else [])
    report["correctness"].append(
        {
            "check": "bf16 autocast in packs",
            "device": device,  # else bf16 runs train alone
            "reaches_vmap": autocast_reaches_vmap(device),
            "ok": True,
        }
    )
    report["correctness"] += checkpoints(["cpu", "cuda"] if gpu else ["cpu"], base)
    with tempfile.TemporaryDirectory() as tmp:
        report["correctness"] += forked_workers(device, base, Path(tmp))
    grid = (
        dict(
            models=[["model=resnet"], ["model=vit", "model.head_dim=8"]],
            widths=[16, 64, 256],
            sizes=[1, 8, 32, 128],
            precisions=["fp32", "tf32", "bf16"],
            steps=10,
        )
        if not toy
        else dict(
            models=[["model=resnet"], ["model=vit", "model.head_dim=4"]],
            widths=[4],
            sizes=[1, 4],
            precisions=["fp32", "bf16"],
            steps=3,
        )
    )
    report["throughput"] = throughput(device, base=base, deadline=deadline, **grid)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    header = f"# gpu_check: {report['device']}, torch {report['torch']}, {report['date']}{' (toy)' if toy else ''}\n"
    (out / "gpu_check.md").write_text(
        header + "\n" + table(report["correctness"]) + "\n\n" + table(report["throughput"]) + "\n"
    )
    print((out / "gpu_check.md").read_text())
    failed = [row["check"] for row in report["correctness"] if not row["ok"]]
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
