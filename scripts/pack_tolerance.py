"""How far packed runs land from the same runs trained alone, against how far seeds land from each
other, and whether the answer (coef* per width) moves.

    .venv/bin/python scripts/pack_tolerance.py ALONE_SWEEP PACKED_SWEEP [--metric val_loss]

Both arguments are sweep directories of the same runs (e.g. ``scripts/bench.py --sections 5 --keep
DIR`` leaves DIR/pack1/multirun/quickstart and DIR/packed/multirun/quickstart). Runs are matched by
(width, coef, seed): sweeps that vary anything else are refused.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from analysis.fit import coef_star_table
from analysis.table import collect


def matched(alone: pd.DataFrame, packed: pd.DataFrame, metric: str) -> pd.DataFrame:
    key = ["width", "coef", "seed"]
    both = alone.merge(packed, on=key, suffixes=("_alone", "_packed"), validate="one_to_one")
    both["diff"] = both[f"{metric}_packed"] - both[f"{metric}_alone"]
    return both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("alone")
    parser.add_argument("packed")
    parser.add_argument("--metric", default="val_loss", choices=["val_loss", "val_acc"])
    args = parser.parse_args()
    alone, packed = collect([args.alone]), collect([args.packed])
    assert len(alone) == len(packed), "the two sweeps hold different runs"
    both = matched(alone, packed, args.metric)
    seed_sd = alone.groupby(["width", "coef"])[args.metric].std()
    diff = both["diff"].abs()
    print(f"{len(both)} runs matched by (width, coef, seed); {args.metric}, packed - alone:")
    print(
        f"  |diff|: median {diff.median():.2g}, 95% {diff.quantile(0.95):.2g}, max {diff.max():.2g}; "
        f"bitwise equal: {(both['diff'] == 0).mean():.0%}"
    )
    print(
        f"  seed-to-seed SD at one (width, coef): median {seed_sd.median():.2g} "
        f"(range {seed_sd.min():.2g}-{seed_sd.max():.2g})"
    )
    print(f"  SD of the diff / seed SD: {both['diff'].std() / seed_sd.median():.2f}")
    by_width = both.groupby("width")["diff"].agg(lambda d: np.abs(d).median())
    print("  median |diff| by width: " + ", ".join(f"{w}: {v:.2g}" for w, v in by_width.items()))
    stars = {
        label: coef_star_table(table, args.metric).set_index("width")
        for label, table in (("alone", alone), ("packed", packed))
    }
    print("coef* per width [95%], alone vs packed; the shift in units of the alone interval's half-width (dex):")
    for width in stars["alone"].index:
        a, b = stars["alone"].loc[width], stars["packed"].loc[width]
        if a["status"] != "ok" or b["status"] != "ok":
            print(f"  {width:>4}: alone {a['status']}, packed {b['status']}")
            continue
        half = (np.log10(a["coef_hi"]) - np.log10(a["coef_lo"])) / 2
        shift = abs(np.log10(b["coef_star"]) - np.log10(a["coef_star"])) / half
        print(
            f"  {width:>4}: alone {a['coef_star']:.3g} [{a['coef_lo']:.3g}, {a['coef_hi']:.3g}]   packed "
            f"{b['coef_star']:.3g} [{b['coef_lo']:.3g}, {b['coef_hi']:.3g}]   shift {shift:.2f}"
        )


if __name__ == "__main__":
    main()
