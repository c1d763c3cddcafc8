"""Size the ridge check before running it: the closed form, simulated straight into a results table
in `collect`'s schema, then `analysis fit` on it. Each problem (seed) draws β ~ N(0, r²/d·I), n
training and 16,384 held-out samples as data=ridge does; each coef's weights are the exact ridge
solution (what full-batch descent converges to), its val_loss the held-out mean squared error.

    python scripts/ridge_sizing.py [--widths 64,128,256,512,1024] [--n 2048,4096,8192,16384]
        [--coefs=-3,1,0.25] [--seeds 48] [--signal 0.5] [--out ridge_sizing]

prints the fit (coef* per (d, n), which cells are open, the exponents beside the predictions);
the truth is coef* = d·noise²/(n·signal²)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.table import COLUMNS  # noqa: E402

N_VAL = 16384


def simulated_table(widths, ns, log10_coefs, seeds: int, signal: float, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    laws = (
        '[{"axis": "width", "exponent": 1, "norm": "coef", "source": "closed form"}, '
        '{"axis": "n_train", "exponent": -1, "norm": "coef", "source": "closed form"}]'
    )
    for d in widths:
        for n in ns:
            for seed in range(seeds):
                beta = rng.standard_normal(d) * signal / np.sqrt(d)
                x, x_val = rng.standard_normal((n, d)), rng.standard_normal((N_VAL, d))
                y, y_val = x @ beta + rng.standard_normal(n), x_val @ beta + rng.standard_normal(N_VAL)
                eigenvalues, vectors = np.linalg.eigh(x.T @ x / n)  # (XᵀX/n + coef·I) w = Xᵀy/n, every coef
                weights = vectors @ ((vectors.T @ (x.T @ y / n))[:, None] / (eigenvalues[:, None] + 10.0**log10_coefs))
                risks = ((y_val[:, None] - x_val @ weights) ** 2).mean(0)
                for log10_coef, risk in zip(log10_coefs, risks):
                    coef = 10.0**log10_coef
                    rows.append(
                        {
                            **{c: np.nan for c in COLUMNS},
                            "model": "linear",
                            "width": d,
                            "n_params": d,
                            "n_decayed": d,
                            "norm": "sum",
                            "apply": "coupled",
                            "lam": coef,
                            "coef": coef,
                            "optimizer": "sgd",
                            "batch_size": n,
                            "n_train": n,
                            "seed": seed,
                            "status": "completed",
                            "val_loss": risk,
                            "run_dir": f"d{d}-n{n}-c{log10_coef}-s{seed}",
                            "predictions": laws,
                            "config.model.width": d,
                            "config.data.n_train": n,
                            "config.optim.batch_size": n,
                            "config.penalty.log10_coef": log10_coef,
                            "config.penalty.norm": "sum",
                            "config.penalty.lam": None,
                            "config.seed": seed,
                        }
                    )
    return pd.DataFrame(rows)


def main() -> None:
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=ints, default=[64, 128, 256, 512, 1024])
    parser.add_argument("--n", type=ints, default=[2048, 4096, 8192, 16384])
    parser.add_argument("--coefs", default="-3,1,0.25", help="log10 coef: first,last,step")
    parser.add_argument("--seeds", type=int, default=48)
    parser.add_argument("--signal", type=float, default=0.5)
    parser.add_argument("--rng", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("ridge_sizing"))
    args = parser.parse_args()
    first, last, step = map(float, args.coefs.split(","))
    table = simulated_table(
        args.widths,
        args.n,
        np.arange(first, last + step / 2, step),
        args.seeds,
        args.signal,
        np.random.default_rng(args.rng),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "table.csv", index=False)
    subprocess.run(
        [sys.executable, "-m", "analysis", "fit", str(args.out / "table.csv"), "--out", str(args.out / "fit")],
        check=True,
        cwd=ROOT,
    )
    print(f"truth: coef* = d/(n·{args.signal}²)")


if __name__ == "__main__":
    main()
