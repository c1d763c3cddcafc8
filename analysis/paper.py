"""``paper``: regenerate everything under paper/ (figures, LaTeX tables, number macros, the measured
calibration) from the results tables kept in paper/results/, one per experiment; nothing is trained and
no number in the paper is typed by hand. What each file holds: docs/analysis.md#the-paper."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.answer import answer_md, answer_rows, answer_tex
from analysis.bootstrap import kept_bootstrap
from analysis.calibrate import coverage, curvature_coverage
from analysis.equilibrium import exponents as equilibrium_exponents
from analysis.equilibrium import figure as equilibrium_figure
from analysis.equilibrium import ratios as equilibrium_ratios
from analysis.equilibrium import read_tensors
from analysis.figures import all_figures
from analysis.metrics import fit_others, kept_calibrations, metric_calibration_numbers, metric_cells, metric_numbers
from analysis.numbers import (
    bootstrap_calibration_numbers,
    bootstrap_counts,
    bootstrap_numbers,
    curvature_calibration_numbers,
    curvature_numbers,
    equilibrium_numbers,
    experiment_numbers,
    global_numbers,
    kept_experiments,
    network_numbers,
    numbers_tex,
)
from analysis.paper_tables import (
    bootstrap_tex,
    calibration_tex,
    curvature_calibration_tex,
    curvature_tex,
    equilibrium_tex,
    experiment_tex,
    predictions_tex,
)
from analysis.pipeline import analyse
from analysis.readme import README, readme_with_answer
from analysis.rerun import rerun_numbers, rerun_pairs, rerun_summary, sigma_by_run
from analysis.table import AnalysisError

PAPER = Path(__file__).resolve().parents[1] / "paper"
EXPERIMENT_FILES = PAPER.parent / "conf" / "experiment"  # every experiment that could be kept
CALIBRATION_REPLICATES = 400
EXPERIMENT_FIGURES = ("lambda_star_vs_width", "loss_vs_lambda")
EXPERIMENT_CSVS = ("coef_star", "exponents", "curvature", "predictions", "closed_form")


def readme_for(results: Path, metric: str = "val_loss") -> Path | None:
    """The README whose answer table a build rewrites: the README's answer is the paper's, so only a build
    from the kept results, on the paper's metric, rewrites it (None otherwise)."""
    kept = Path(results).resolve() == (PAPER / "results").resolve() and metric == "val_loss"
    return README if kept else None


def kept_tables(results: Path) -> dict[str, Path]:
    """The results table of each experiment kept for the paper: results/NAME.csv(.gz)."""
    tables = {}
    for path in sorted(results.iterdir()) if results.is_dir() else []:
        suffix = next((s for s in (".csv.gz", ".csv", ".parquet") if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        name = path.name[: -len(suffix)]
        if name in tables:
            raise AnalysisError(
                f"{results}: two tables for experiment {name} ({tables[name].name}, {path.name}); keep one"
            )
        tables[name] = path
    if not tables:
        raise AnalysisError(f"{results}: no results tables (NAME.csv.gz from `python -m analysis collect`)")
    return tables


@dataclass
class Experiment:
    """One kept experiment, fitted and drawn: what the paper's shared tables and numbers take from it."""

    fit: dict  # pipeline.analyse's tables
    numbers: dict[str, str]  # quoted as \result{NAME:key}
    boot: pd.DataFrame | None  # its seed bootstrap, where one is kept (results/bootstrap/NAME.csv)
    appendix: str  # tables/NAME/appendix.tex
    written: list[Path]  # its own figures and csv tables


def build_experiment(name: str, table: Path, metric: str, out: Path) -> Experiment:
    """Fit one kept results table and write what is the experiment's own: figures/NAME/ and tables/NAME/."""
    fit = analyse(str(table), metric)
    numbers = experiment_numbers(fit) | curvature_numbers(fit["curvature"])
    boot = kept_bootstrap(name, table)
    if boot is not None:
        numbers.update(bootstrap_numbers(boot))
    figures = out / "figures" / name
    shutil.rmtree(figures, ignore_errors=True)  # an experiment's figures are exactly this build's
    written = all_figures(fit, metric, figures, kinds=EXPERIMENT_FIGURES)
    evidence = [
        p.relative_to(out).as_posix() for p in written if p.suffix == ".pdf" and p.stem.startswith("loss_vs_lambda")
    ]
    appendix = experiment_tex(name, fit, evidence)
    for part in EXPERIMENT_CSVS:
        path = out / "tables" / name / f"{part}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        fit[part].to_csv(path, index=False)
        written.append(path)
    return Experiment(fit, numbers, boot, appendix, written)


def build_paper(
    results: Path = PAPER / "results",
    out: Path = PAPER,
    metric: str = "val_loss",
    replicates: int = CALIBRATION_REPLICATES,
    readme: Path | None = None,
) -> list[Path]:
    """Every table, number and figure of the paper from the kept results tables (one per
    experiment); an experiment's own under tables/NAME/ and figures/NAME/; and, given ``readme``, the
    answer table in that README."""
    if readme is not None:  # its answer block is checked before the long work, rewritten after it
        readme_with_answer(readme.read_text(), "", str(readme))
    calibration = coverage(replicates)
    curvature_calibration = curvature_coverage(replicates)  # the curvature test's, as many sweeps of each kind
    experiments = {name: build_experiment(name, table, metric, out) for name, table in kept_tables(results).items()}
    fits = {name: e.fit for name, e in experiments.items()}
    boots = {name: e.boot for name, e in experiments.items() if e.boot is not None}
    numbers = {name: e.numbers for name, e in experiments.items()}
    written = [path for e in experiments.values() for path in e.written]
    texts = {
        "calibration.tex": calibration_tex(calibration),
        **{f"{name}/appendix.tex": e.appendix for name, e in experiments.items()},
    }

    kept_equilibrium = results / "equilibrium" / "tensors.csv"
    if kept_equilibrium.exists():  # not a λ sweep: its own table, figure and numbers
        if "equilibrium" in numbers:
            raise AnalysisError(f"{results}: a results table named equilibrium beside {kept_equilibrium}; keep one")
        tensors = read_tensors(kept_equilibrium)
        ratios, slopes = equilibrium_ratios(tensors), equilibrium_exponents(tensors)
        texts["equilibrium.tex"] = equilibrium_tex(ratios, slopes)
        numbers["equilibrium"] = equilibrium_numbers(tensors, ratios, slopes)
        written += equilibrium_figure(tensors, out / "figures" / "equilibrium.pdf")
    kept_boot_calibration = results / "bootstrap" / "calibration.csv"
    boot_calibration_numbers = {}
    if kept_boot_calibration.exists():  # drawn by `calibrate --bootstrap`, too slow to redraw at every build
        boot_calibration = pd.read_csv(kept_boot_calibration)
        texts["bootstrap_calibration.tex"] = calibration_tex(boot_calibration)
        boot_calibration_numbers = bootstrap_calibration_numbers(boot_calibration)

    sigma = {run: s for fit in fits.values() for run, s in sigma_by_run(fit["fits"]).items()}
    reruns = rerun_summary(rerun_pairs({name: fit["runs"] for name, fit in fits.items()}, sigma, metric))
    # the other metrics: every experiment fitted again on each (coef* and exponents only), beside in the answer
    others = {name: fit_others(e.fit["runs"], metric) for name, e in experiments.items()}
    calibrations = kept_calibrations(results, calibration, metric)
    for name, by_metric in others.items():
        numbers[name].update(metric_numbers(by_metric))
    answer = metric_cells(answer_rows(fits, boots), others, calibrations)
    texts["answer.tex"], texts["answer.md"] = answer_tex(answer), answer_md(answer)
    texts["predictions.tex"] = predictions_tex({name: fit["predictions"] for name, fit in fits.items()})
    texts["bootstrap.tex"] = bootstrap_tex(boots)
    texts["curvature.tex"] = curvature_tex({name: fit["curvature"] for name, fit in fits.items()})
    texts["curvature_calibration.tex"] = curvature_calibration_tex(curvature_calibration)
    texts["appendix.tex"] = "\n".join(f"\\input{{tables/{name}/appendix.tex}}" for name in experiments) + "\n"
    macros = (
        global_numbers(calibration, replicates)
        | network_numbers(fits, numbers.get("equilibrium"))
        | bootstrap_counts(boots)
        | boot_calibration_numbers
        | rerun_numbers(reruns)
        | metric_calibration_numbers(calibrations)
        | kept_experiments(numbers, EXPERIMENT_FILES)
        | curvature_calibration_numbers(curvature_calibration)
    )
    texts["numbers.tex"] = numbers_tex(macros, numbers)
    written += write_tables(out / "tables", texts, calibration)
    reruns.to_csv(out / "tables" / "reruns.csv", index=False)
    written.append(out / "tables" / "reruns.csv")
    curvature_calibration.to_csv(out / "tables" / "curvature_calibration.csv", index=False)
    written.append(out / "tables" / "curvature_calibration.csv")
    if readme is not None:
        readme.write_text(readme_with_answer(readme.read_text(), texts["answer.md"], str(readme)))
        written.append(readme)
    return written


def write_tables(tables: Path, texts: dict[str, str], calibration: pd.DataFrame) -> list[Path]:
    """Each text as tables/NAME, then the measured calibration as tables/calibration.csv."""
    written = []
    for name, text in texts.items():
        (tables / name).parent.mkdir(parents=True, exist_ok=True)
        (tables / name).write_text(text)
        written.append(tables / name)
    calibration.to_csv(tables / "calibration.csv", index=False)
    return written + [tables / "calibration.csv"]
