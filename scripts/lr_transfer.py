"""The best learning rate per width, SP against μP, from a collected table of a lr x width sweep
(conf/experiment/mup_lr_transfer.yaml); lr* is fitted by the estimator that gives coef*
(analysis/optimum.py, on log10 lr), and its exponent in width by the same meta-regression.

    python scripts/lr_transfer.py TABLE.csv [--metric val_loss|val_err]

μP transfers the learning rate when lr*'s exponent in width is near 0; under SP with Adam it is
expected to fall (about width^-1 for the hidden layers)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fit import metric_values  # noqa: E402
from analysis.optimum import fit_optimum  # noqa: E402
from analysis.scaling import meta_regression  # noqa: E402
from analysis.table import read_table  # noqa: E402


def lr_stars(table: str, metric: str) -> list[dict]:
    runs = read_table(table)
    runs = runs[runs["status"].isin(["completed", "diverged"])].assign(value=lambda d: metric_values(d, metric))
    rows = []
    for (param, width), group in runs.groupby(["config.model.param", "width"], sort=True):
        opt = fit_optimum(np.log10(group["lr"].astype(float)), group["value"], group["seed"])
        rows.append(
            {
                "param": param,
                "width": int(width),
                "status": opt.status,
                "lr": 10**opt.x,
                "lo": 10**opt.lo,
                "hi": 10**opt.hi,
                "se": opt.se,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table")
    parser.add_argument("--metric", default="val_loss")
    args = parser.parse_args()
    rows = lr_stars(args.table, args.metric)
    for param in sorted({r["param"] for r in rows}):
        mine = [r for r in rows if r["param"] == param]
        print(f"{param}: lr* per width ({args.metric}; 95% interval)")
        for r in mine:
            print(f"  width {r['width']:4d}  {r['status']:5s}  lr* {r['lr']:.3g} [{r['lo']:.3g}, {r['hi']:.3g}]")
        fitted = width_exponent(mine)
        if fitted:
            print("  lr* ∝ width^e: e = {:.2f} [{:.2f}, {:.2f}] over {} widths".format(*fitted))


def width_exponent(rows: list[dict]) -> tuple | None:
    """(e, lo, hi, widths) of lr* ∝ width^e over the bounded optima (95% interval); None below 3."""
    ok = [r for r in rows if r["status"] == "ok"]
    if len(ok) < 3:
        return None
    design = np.column_stack([np.ones(len(ok)), np.log10([r["width"] for r in ok])])
    fit = meta_regression(design, np.log10([r["lr"] for r in ok]), np.array([r["se"] for r in ok]))
    lo, hi = fit.interval(0.95)
    return fit.estimate[1], lo[1], hi[1], len(ok)


if __name__ == "__main__":
    main()
