"""python -m analysis collect|fit|figures|paper (see README, "Analysis")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.fit import METRICS, identity_table, lambda_star_table, scaling_table
from analysis.table import AnalysisError, collect, read_table, write_table


def _analyse(table: str, metric: str, include_edge: bool):
    runs = read_table(table)
    stars = lambda_star_table(runs, metric)
    scaling = scaling_table(stars, include_edge)
    return runs, stars, scaling, identity_table(stars, scaling)


def _print_summary(stars, scaling, identities) -> None:
    cols = ["model", "norm", "apply", "width", "lam_star", "lam_star_lo", "lam_star_hi", "at_edge"]
    print(stars[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print()
    columns = ["model", "norm", "apply", "alpha", "alpha_lo", "alpha_hi", "n_widths", "r2"]
    fits = scaling[scaling["x"] == "width"][columns]
    print("λ* = C·width^α\n" + fits.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if len(identities):
        print("\n" + identities[["identity", "observed", "expected", "difference"]].to_string(
            index=False, float_format=lambda x: f"{x:.3f}"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("collect", help="every result.json under DIR... -> one tidy table (.csv or .parquet)")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--out", required=True, metavar="TABLE")
    for name, text in (("fit", "λ* per width and power-law fits -> DIR/lambda_star.csv, scaling.csv, identities.csv"),
                       ("figures", "the four figures, PDF and PNG -> DIR")):
        p = verbs.add_parser(name, help=text)
        p.add_argument("table", metavar="TABLE")
        p.add_argument("--out", required=True, metavar="DIR")
        p.add_argument("--metric", default="val_loss", choices=METRICS)
        p.add_argument("--include-edge", action="store_true", help="fit λ* found at the edge of the grid too")
    p = verbs.add_parser("paper", help="regenerate paper/ (figures, tables, numbers) from the kept results table")
    p.add_argument("--table", default=str(Path(__file__).resolve().parents[1] / "paper" / "results.csv"))
    p.add_argument("--metric", default="val_loss", choices=METRICS)
    args = parser.parse_args(argv)
    try:
        if args.verb == "collect":
            df = collect(args.dirs)
            write_table(df, args.out)
            print(f"{len(df)} runs ({', '.join(f'{n} {s}' for s, n in df['status'].value_counts().items())}) "
                  f"-> {args.out}")
        elif args.verb == "fit":
            _, stars, scaling, identities = _analyse(args.table, args.metric, args.include_edge)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            for name, frame in (("lambda_star", stars), ("scaling", scaling), ("identities", identities)):
                frame.to_csv(Path(args.out) / f"{name}.csv", index=False)
            _print_summary(stars, scaling, identities)
        elif args.verb == "figures":
            from analysis.figures import all_figures
            runs, stars, _, _ = _analyse(args.table, args.metric, args.include_edge)
            for path in all_figures(runs, stars, args.metric, Path(args.out)):
                print(path)
        else:
            from analysis.paper import build_paper
            for path in build_paper(Path(args.table), metric=args.metric):
                print(path)
    except AnalysisError as err:
        print(f"analysis: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
