"""python -m analysis collect|fit|figures|paper|calibrate|bootstrap|refine (see docs/analysis.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis.fit import METRICS
from analysis.pipeline import FIT_FILES
from analysis.table import AnalysisError

KEPT_RESULTS = Path(__file__).resolve().parents[1] / "paper" / "results"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("collect", help="every result.json under DIR... -> one tidy table (.csv or .parquet)")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--out", required=True, metavar="TABLE")
    for name, text in (
        (
            "fit",
            "coef* per setting and width, λ* in every normalisation, exponents and verdicts "
            f"-> DIR/{{{','.join(FIT_FILES)}}}.csv",
        ),
        ("figures", "the figures, PDF and PNG -> DIR"),
    ):
        p = verbs.add_parser(name, help=text)
        p.add_argument("table", metavar="TABLE")
        p.add_argument("--out", required=True, metavar="DIR")
        p.add_argument("--metric", default="val_loss", choices=METRICS)
    p = verbs.add_parser("paper", help="regenerate paper/ (figures, tables, numbers) from the kept results tables")
    p.add_argument(
        "--results",
        default=str(KEPT_RESULTS),
        metavar="DIR",
        help="one table per experiment, NAME.csv.gz (default: paper/results)",
    )
    p.add_argument("--metric", default="val_loss", choices=METRICS)
    p = verbs.add_parser("calibrate", help="coverage of the 95%% intervals on planted tables")
    p.add_argument("--replicates", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=None, help="seeds per point in every planted sweep (default: 2-5)")
    p.add_argument(
        "--metric",
        default="val_loss",
        choices=METRICS,
        help="the metric fitted: the planted final loss, best-epoch loss or error rate (not for --bootstrap)",
    )
    p.add_argument(
        "--bootstrap",
        action="store_true",
        help="instead: the seed bootstrap's check on the exponent, "
        "REPLICATES sweeps with independent points and as many with seeds shared across widths",
    )
    p.add_argument(
        "--curvature",
        action="store_true",
        help="instead: the curvature test's intervals (q, the end slopes) and verdicts, REPLICATES planted sweeps "
        "of each kind (straight and bent laws, realistic and quiet sweeps)",
    )
    p.add_argument(
        "--out",
        metavar="CSV",
        help="also write the table here (the paper keeps the --bootstrap one in "
        "paper/results/bootstrap/calibration.csv)",
    )
    p = verbs.add_parser(
        "bootstrap",
        help="seed bootstrap of the exponents (seeds resampled jointly across points)"
        " -> CSV; the paper quotes paper/results/bootstrap/NAME.csv",
    )
    p.add_argument("table", metavar="TABLE")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument(
        "--replicates",
        type=int,
        default=None,
        help="resamples of the seeds (default: "
        "analysis.bootstrap.REPLICATES; imported only when this verb runs, as it pulls in torch)",
    )
    p.add_argument("--seed", type=int, default=0)
    p = verbs.add_parser(
        "refine",
        help="the adaptive search on planted (setting, width)s: its coverage, and its runs to the target against "
        "the quickstart's full grid with 2, 3, ... seeds",
    )
    p.add_argument("--replicates", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=400, help="runs either design may take (the grid: 40 seeds)")
    p.add_argument(
        "--live",
        metavar="TABLE",
        help="also a refine sweep of the ridge check that trained its own runs (collected), against the kept grid",
    )
    p.add_argument(
        "--live-digits",
        nargs=2,
        metavar=("SEARCH", "GRID"),
        help="also a refine sweep of the quickstart (collected) against the quickstart's grid with other seeds",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="also write the per-problem tables here: planted.csv, ridge.csv (the replay on the kept ridge sweep)",
    )
    return parser


def collect_verb(args) -> None:
    from analysis.table import collect, write_table

    df = collect(args.dirs)
    write_table(df, args.out)
    print(f"{len(df)} runs ({', '.join(f'{n} {s}' for s, n in df['status'].value_counts().items())}) -> {args.out}")


def fit_verb(args) -> None:
    from analysis.pipeline import analyse, write_fit_tables
    from analysis.summary import print_summary

    fit = analyse(args.table, args.metric)
    write_fit_tables(fit, Path(args.out))
    print_summary(fit, args.metric)


def figures_verb(args) -> None:
    from analysis.figures import all_figures
    from analysis.pipeline import analyse

    for path in all_figures(analyse(args.table, args.metric), args.metric, Path(args.out)):
        print(path)


def paper_verb(args) -> None:
    from analysis.paper import build_paper, readme_for

    results = Path(args.results)
    for path in build_paper(results, metric=args.metric, readme=readme_for(results, args.metric)):
        print(path)


def bootstrap_verb(args) -> None:
    from analysis.bootstrap import REPLICATES, seed_bootstrap

    table = seed_bootstrap(args.table, REPLICATES if args.replicates is None else args.replicates, args.seed)
    _write_csv(table, args.out)
    print(table.drop(columns="table_sha256").to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def calibrate_verb(args) -> None:
    """Prints the coverage table and exits 1 unless every coverage meets calibrate.GOAL."""
    from analysis.calibrate import GOAL, bootstrap_coverage, coverage, curvature_coverage, goal_met

    if args.replicates < 1:
        raise AnalysisError(f"--replicates {args.replicates}: must be >= 1")
    if args.bootstrap and args.curvature:
        raise AnalysisError("--bootstrap and --curvature: one calibration at a time")
    if args.seeds is not None and (args.seeds < 2 or args.bootstrap or args.curvature):
        raise AnalysisError(
            f"--seeds {args.seeds}: must be >= 2 (one seed has no seed offsets to tell apart), "
            "and is not for --bootstrap (five seeds, as the kept sweeps) nor --curvature (its sweeps draw theirs)"
        )
    start = time.perf_counter()
    if args.bootstrap and args.metric != "val_loss":
        raise AnalysisError(f"--metric {args.metric}: the seed bootstrap's check is calibrated on the final loss only")
    if args.bootstrap:
        table = bootstrap_coverage(args.replicates, args.seed)
    elif args.curvature:
        table = curvature_coverage(args.replicates, args.seed)
    else:
        table = coverage(args.replicates, args.seed, args.seeds, args.metric)
    if args.out:
        _write_csv(table, args.out)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    met = goal_met(table, args.bootstrap, args.curvature)
    judged = "every interval's coverage (the 'said' rows are rates)" if args.curvature else "every coverage"
    print(f"goal: {judged} in [{GOAL[0]}, {GOAL[1]}]: {'met' if met else 'NOT met'}")
    print(f"runtime: {time.perf_counter() - start:.0f} s")
    sys.exit(0 if met else 1)


def refine_verb(args) -> None:
    """Prints the adaptive search's coverage and runs; exits 1 unless its coverage meets calibrate.GOAL."""
    from analysis.calibrate import GOAL
    from analysis.refine import RefineSettings
    from analysis.refine_calibration import (
        measure,
        measure_digits_live,
        measure_ridge,
        measure_ridge_live,
        report,
        summary,
    )

    if args.replicates < 1 or args.budget < 1:
        raise AnalysisError(f"--replicates {args.replicates}, --budget {args.budget}: must be >= 1")
    if args.live and not Path(args.live).is_file():
        raise AnalysisError(f"--live {args.live}: no such table (a collected refine sweep of the ridge check)")
    for table in args.live_digits or ():
        if not Path(table).is_file():
            raise AnalysisError(f"--live-digits {table}: no such table (a collected sweep of the quickstart)")
    start = time.perf_counter()
    tables = {
        "planted": measure(args.replicates, args.seed, RefineSettings(budget=args.budget), max_runs=args.budget),
        "ridge": measure_ridge(RefineSettings()),
    }
    if args.live:
        tables["ridge_live"] = measure_ridge_live(args.live)
    if args.live_digits:
        tables["digits_live"] = measure_digits_live(*args.live_digits)
    for name, table in tables.items():
        if args.out:
            _write_csv(table, str(Path(args.out) / f"{name}.csv"))
        print(f"{name}:")
        print(summary(table).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.out:
        (Path(args.out) / "summary.md").write_text(report(tables))
    result = summary(tables["planted"])
    met = GOAL[0] <= result.loc[0, "coverage"] <= GOAL[1]
    print(
        f"goal: the adaptive search's coverage on planted problems in [{GOAL[0]}, {GOAL[1]}]: {'met' if met else 'NOT met'}"
    )
    print(f"runtime: {time.perf_counter() - start:.0f} s")
    sys.exit(0 if met else 1)


def _write_csv(table, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


VERBS = {
    "collect": collect_verb,
    "fit": fit_verb,
    "figures": figures_verb,
    "paper": paper_verb,
    "bootstrap": bootstrap_verb,
    "calibrate": calibrate_verb,
    "refine": refine_verb,
}


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    try:
        VERBS[args.verb](args)
    except AnalysisError as err:  # bad input: one line, exit 2
        print(f"analysis: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
