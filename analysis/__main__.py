"""python -m analysis collect|fit|figures|paper|calibrate|bootstrap (see docs/analysis.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.table import AnalysisError, collect, read_table, write_table

FIT_FILES = ("coef_star", "exponents", "predictions", "closed_form", "consistency", "joint_lr")


def analyse(table: str, metric: str) -> dict:
    """Every table ``fit`` writes, from a results table."""
    import pandas as pd

    from analysis.fit import (closed_form_table, coef_star_table, consistency_table, exponent_table, fitted_groups,
                              joint_lr_table, notes, prediction_table, tuned_lr_stars)

    runs = read_table(table)
    fits = list(fitted_groups(runs, metric))  # each (setting, width) is fitted once, for tables and figures
    stars = coef_star_table(runs, metric, fits)
    joint = joint_lr_table(stars)
    tuned = tuned_lr_stars(stars, joint)
    exponents = exponent_table(stars)
    if len(tuned):  # λ* at the learning rate tuned per point: a setting of its own
        exponents = pd.concat([exponents, exponent_table(tuned)], ignore_index=True)
    return {"runs": runs, "fits": fits, "coef_star": stars, "tuned": tuned, "exponents": exponents,
            "predictions": prediction_table(runs, exponents), "closed_form": closed_form_table(runs, stars),
            "consistency": consistency_table(runs, metric), "joint_lr": joint, "notes": notes(runs, stars)}


def _ci(x, lo, hi) -> str:
    return f"{x:.3g} [{lo:.3g}, {hi:.3g}]" if lo == lo else f"{x:.3g} [--]"


def print_summary(fit: dict, metric: str) -> None:
    from analysis.scaling import MARGIN
    from wdbench.config import STUDY_AXES
    from wdbench.normalisation import NORMS

    stars, exponents = fit["coef_star"], fit["exponents"]
    for setting, s in stars.groupby("setting", sort=True):
        axes = [a for a in STUDY_AXES if s[a].nunique() > 1] or ["width"]
        print(f"setting: {setting}   (metric: {metric}; [95% interval]; coef = λ·c multiplies Σw²)")
        rows = []
        for _, r in s.iterrows():
            row = {a: r[a] for a in axes}
            row.update({"status": r["status"], "seeds": r["n_seeds"],
                        "coef*": _ci(r["coef_star"], r["coef_lo"], r["coef_hi"]),
                        "near-optimal coef": f"{r['coef_near_lo']:.2g}-{r['coef_near_hi']:.2g}",
                        "gain over λ=0": _ci(r["gain"], r["gain_lo"], r["gain_hi"])})
            rows.append(row)
        print(_frame(rows))
        print(_frame([{**{a: r[a] for a in axes}, **{f"λ*_{n}": _ci(r[f"lam_star_{n}"], r[f"lam_lo_{n}"],
                                                                   r[f"lam_hi_{n}"]) for n in NORMS}}
                      for _, r in s.iterrows()]))
        e = exponents[exponents["setting"] == setting]
        if len(e):
            print(f"exponents (λ* ∝ axis^e; verdict: TOST at 5%, 'still' = moves less than {MARGIN}× over the range)")
            print(_frame([{"λ* in": r["norm"], "axis": r["axis"], "e [95%]": _ci(r["exponent"], r["lo"], r["hi"]),
                           "90%": f"[{r['lo90']:.2f}, {r['hi90']:.2f}]", "margin": f"±{r['margin']:.3f}",
                           "verdict": r["verdict"], "points": r["n_points"]} for _, r in e.iterrows()]))
        laws = fit["predictions"][fit["predictions"]["setting"] == setting]
        if len(laws):
            print("predicted exponents beside the measured (consistent: the prediction is inside the 95% interval)")
            print(_frame([{"λ* in": r["norm"], "axis": r["axis"], "source": r["source"], "predicted": r["predicted"],
                           "measured [95%]": _ci(r["exponent"], r["lo"], r["hi"]),
                           "consistent": {True: "yes", False: "NO"}.get(r["consistent"], "not fitted")}
                          for _, r in laws.iterrows()]))
        print()
    truth = fit["closed_form"]
    if len(truth):
        bounded = truth[truth["status"] == "ok"]
        print(f"closed form (coef* = d·σ²/(n·r²)): {int(bounded['holds_truth'].sum())} of {len(bounded)} bounded "
              f"intervals hold it; {len(truth) - len(bounded)} of {len(truth)} points not bounded")
    if len(fit["joint_lr"]):
        j = fit["joint_lr"]
        print("joint optimum over the learning rate (95% intervals)")
        print(_frame([{"width": r["width"], "lr*": _ci(r["lr_star"], r["lr_lo"], r["lr_hi"]),
                       "coef*": _ci(r["coef_star"], r["coef_lo"], r["coef_hi"])} for _, r in j.iterrows()]))
        tuned = exponents[~exponents["setting"].isin(stars["setting"])]
        if len(tuned):
            print("exponents at the joint optimum (λ* at the learning rate tuned per point)")
            print(_frame([{"setting": r["setting"], "λ* in": r["norm"], "axis": r["axis"],
                           "e [95%]": _ci(r["exponent"], r["lo"], r["hi"]), "margin": f"±{r['margin']:.3f}",
                           "verdict": r["verdict"], "points": r["n_points"]} for _, r in tuned.iterrows()]))
    c = fit["consistency"]
    if len(c):
        bad = c[~c["agree"]]
        print(f"consistency: {len(c)} (coef, seed) pairs run in several normalisations; "
              f"{'all agree' if bad.empty else f'{len(bad)} DISAGREE (see consistency.csv)'}")
    for line in fit["notes"]:
        print(f"note: {line}")


def _frame(rows: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False)


def main(argv=None) -> None:
    from analysis.fit import METRICS

    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("collect", help="every result.json under DIR... -> one tidy table (.csv or .parquet)")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--out", required=True, metavar="TABLE")
    for name, text in (("fit", "coef* per setting and width, λ* in every normalisation, exponents and verdicts "
                               f"-> DIR/{{{','.join(FIT_FILES)}}}.csv"),
                       ("figures", "the figures, PDF and PNG -> DIR")):
        p = verbs.add_parser(name, help=text)
        p.add_argument("table", metavar="TABLE")
        p.add_argument("--out", required=True, metavar="DIR")
        p.add_argument("--metric", default="val_loss", choices=METRICS)
    p = verbs.add_parser("paper", help="regenerate paper/ (figures, tables, numbers) from the kept results tables")
    p.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "paper" / "results"),
                   metavar="DIR", help="one table per experiment, NAME.csv.gz (default: paper/results)")
    p.add_argument("--metric", default="val_loss", choices=METRICS)
    p = verbs.add_parser("calibrate", help="coverage of the 95%% intervals on planted tables")
    p.add_argument("--replicates", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=None, help="seeds per point in every planted sweep (default: 2-5)")
    p.add_argument("--bootstrap", action="store_true", help="instead: the seed bootstrap's check on the exponent, "
                   "REPLICATES sweeps with independent points and as many with seeds shared across widths")
    p.add_argument("--out", metavar="CSV", help="also write the table here (the paper keeps the --bootstrap one in "
                   "paper/results/bootstrap/calibration.csv)")
    p = verbs.add_parser("bootstrap", help="seed bootstrap of the exponents (seeds resampled jointly across points)"
                                           " -> CSV; the paper quotes paper/results/bootstrap/NAME.csv")
    p.add_argument("table", metavar="TABLE")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--replicates", type=int, default=None, help="resamples of the seeds (default: "
                   "analysis.bootstrap.REPLICATES; imported only when this verb runs, as it pulls in torch)")
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.verb == "collect":
            df = collect(args.dirs)
            write_table(df, args.out)
            print(f"{len(df)} runs ({', '.join(f'{n} {s}' for s, n in df['status'].value_counts().items())}) "
                  f"-> {args.out}")
        elif args.verb == "fit":
            fit = analyse(args.table, args.metric)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            for name in FIT_FILES:
                fit[name].to_csv(Path(args.out) / f"{name}.csv", index=False)
            print_summary(fit, args.metric)
        elif args.verb == "figures":
            from analysis.figures import all_figures
            for path in all_figures(analyse(args.table, args.metric), args.metric, Path(args.out)):
                print(path)
        elif args.verb == "paper":
            from analysis.paper import PAPER, README, build_paper
            # the README's answer is the paper's: only a build from the kept results, on its metric, rewrites it
            kept = Path(args.results).resolve() == (PAPER / "results").resolve() and args.metric == "val_loss"
            for path in build_paper(Path(args.results), metric=args.metric, readme=README if kept else None):
                print(path)
        elif args.verb == "bootstrap":
            from analysis.bootstrap import REPLICATES, seed_bootstrap
            table = seed_bootstrap(args.table, REPLICATES if args.replicates is None else args.replicates, args.seed)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.out, index=False)
            print(table.drop(columns="table_sha256").to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        else:
            from analysis.calibrate import GOAL, bootstrap_coverage, coverage
            if args.replicates < 1:
                raise AnalysisError(f"--replicates {args.replicates}: must be >= 1")
            if args.seeds is not None and (args.seeds < 2 or args.bootstrap):
                raise AnalysisError(f"--seeds {args.seeds}: must be >= 2 (one seed has no seed offsets to tell apart), "
                                    "and is not for --bootstrap (five seeds, as the kept sweeps)")
            table = (bootstrap_coverage(args.replicates, args.seed) if args.bootstrap
                     else coverage(args.replicates, args.seed, args.seeds))
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                table.to_csv(args.out, index=False)
            print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
            # under --bootstrap the meta-regression's rows are the baseline the check is measured against
            judged = table[table["quantity"].str.endswith("bootstrap check")] if args.bootstrap else table
            met = judged["coverage"].between(*GOAL).all()
            print(f"goal: every coverage in [{GOAL[0]}, {GOAL[1]}]: {'met' if met else 'NOT met'}")
            sys.exit(0 if met else 1)
    except AnalysisError as err:
        print(f"analysis: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
