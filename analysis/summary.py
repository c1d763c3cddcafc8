"""What ``python -m analysis fit`` prints: a reader's summary of ``pipeline.analyse``'s tables (what each
column means is in docs/analysis.md)."""

from __future__ import annotations

import pandas as pd

from analysis.scaling import MARGIN
from wdbench.config import STUDY_AXES
from wdbench.normalisation import NORMS


def print_summary(fit: dict, metric: str) -> None:
    """Per setting: coef* and λ* per point, the exponents and their verdicts, the predictions beside the
    measured exponents; then what spans settings: the closed form, the joint (η, λ) optimum, the
    consistency of runs named in several normalisations, and the notes."""
    for setting, stars in fit["coef_star"].groupby("setting", sort=True):
        _print_setting(fit, setting, stars, metric)
    _print_curvature(fit["curvature"])
    _print_closed_form(fit["closed_form"])
    _print_joint_optimum(fit)
    _print_consistency(fit["consistency"])
    for line in fit["notes"]:
        print(f"note: {line}")


def _print_setting(fit: dict, setting: str, stars: pd.DataFrame, metric: str) -> None:
    axes = [a for a in STUDY_AXES if stars[a].nunique() > 1] or ["width"]  # what tells its points apart
    print(f"setting: {setting}   (metric: {metric}; [95% interval]; coef = λ·c multiplies Σw²)")
    print(
        _frame(
            [
                {
                    **{a: r[a] for a in axes},
                    "status": r["status"],
                    "seeds": r["n_seeds"],
                    "coef*": _ci(r["coef_star"], r["coef_lo"], r["coef_hi"]),
                    "near-optimal coef": f"{r['coef_near_lo']:.2g}-{r['coef_near_hi']:.2g}",
                    "gain over λ=0": _ci(r["gain"], r["gain_lo"], r["gain_hi"]),
                }
                for _, r in stars.iterrows()
            ]
        )
    )
    print(
        _frame(
            [
                {
                    **{a: r[a] for a in axes},
                    **{f"λ*_{n}": _ci(r[f"lam_star_{n}"], r[f"lam_lo_{n}"], r[f"lam_hi_{n}"]) for n in NORMS},
                }
                for _, r in stars.iterrows()
            ]
        )
    )
    exponents = fit["exponents"][fit["exponents"]["setting"] == setting]
    if len(exponents):
        print(f"exponents (λ* ∝ axis^e; verdict: TOST at 5%, 'still' = moves less than {MARGIN}× over the range)")
        print(
            _frame(
                [
                    {
                        "λ* in": r["norm"],
                        "axis": r["axis"],
                        "e [95%]": _ci(r["exponent"], r["lo"], r["hi"]),
                        "90%": f"[{r['lo90']:.2f}, {r['hi90']:.2f}]",
                        "margin": f"±{r['margin']:.3f}",
                        "verdict": r["verdict"],
                        "points": r["n_points"],
                    }
                    for _, r in exponents.iterrows()
                ]
            )
        )
    laws = fit["predictions"][fit["predictions"]["setting"] == setting]
    if len(laws):
        print("predicted exponents beside the measured (consistent: the prediction is inside the 95% interval)")
        print(
            _frame(
                [
                    {
                        "λ* in": r["norm"],
                        "axis": r["axis"],
                        "source": r["source"],
                        "predicted": r["predicted"],
                        "measured [95%]": _ci(r["exponent"], r["lo"], r["hi"]),
                        "consistent": {True: "yes", False: "NO"}.get(r["consistent"], "not fitted"),
                    }
                    for _, r in laws.iterrows()
                ]
            )
        )
    print()


def _print_curvature(curvature: pd.DataFrame) -> None:
    """Per setting and axis: does one exponent describe coef* over the range (analysis.curvature)?"""
    if not len(curvature):
        return
    print(
        "curvature of coef* (log10 coef* = c0 + a·z + q·z², z = centred log10 axis; slopes at the range's ends; "
        "'straight': the slope changes by less than the margin, TOST at 5%)"
    )
    print(
        _frame(
            [
                {
                    "setting": r["setting"],
                    "axis": r["axis"],
                    "points": r["n_points"],
                    "q [95%]": _ci(r["q"], r["q_lo"], r["q_hi"]),
                    "slope at min [95%]": _ci(r["slope_low"], r["slope_low_lo"], r["slope_low_hi"]),
                    "slope at max [95%]": _ci(r["slope_high"], r["slope_high_lo"], r["slope_high_hi"]),
                    "change, 90%": f"[{r['change_lo90']:.2f}, {r['change_hi90']:.2f}]" if r["q"] == r["q"] else "",
                    "margin": f"±{r['margin']:.3f}" if r["q"] == r["q"] else "",
                    "verdict": r["verdict"],
                }
                for _, r in curvature.iterrows()
            ]
        )
    )
    print()


def _print_closed_form(truth: pd.DataFrame) -> None:
    if len(truth):
        bounded = truth[truth["status"] == "ok"]
        print(
            f"closed form (coef* = d·σ²/(n·r²)): {int(bounded['holds_truth'].sum())} of {len(bounded)} bounded "
            f"intervals hold it; {len(truth) - len(bounded)} of {len(truth)} points not bounded"
        )


def _print_joint_optimum(fit: dict) -> None:
    joint, exponents = fit["joint_lr"], fit["exponents"]
    if not len(joint):
        return
    print("joint optimum over the learning rate (95% intervals)")
    print(
        _frame(
            [
                {
                    "width": r["width"],
                    "lr*": _ci(r["lr_star"], r["lr_lo"], r["lr_hi"]),
                    "coef*": _ci(r["coef_star"], r["coef_lo"], r["coef_hi"]),
                }
                for _, r in joint.iterrows()
            ]
        )
    )
    tuned = exponents[~exponents["setting"].isin(fit["coef_star"]["setting"])]  # the tuned lr's own settings
    if len(tuned):
        print("exponents at the joint optimum (λ* at the learning rate tuned per point)")
        print(
            _frame(
                [
                    {
                        "setting": r["setting"],
                        "λ* in": r["norm"],
                        "axis": r["axis"],
                        "e [95%]": _ci(r["exponent"], r["lo"], r["hi"]),
                        "margin": f"±{r['margin']:.3f}",
                        "verdict": r["verdict"],
                        "points": r["n_points"],
                    }
                    for _, r in tuned.iterrows()
                ]
            )
        )


def _print_consistency(consistency: pd.DataFrame) -> None:
    if len(consistency):
        bad = consistency[~consistency["agree"]]
        print(
            f"consistency: {len(consistency)} (coef, seed) pairs run in several normalisations; "
            f"{'all agree' if bad.empty else f'{len(bad)} DISAGREE (see consistency.csv)'}"
        )


def _ci(x, lo, hi) -> str:
    """x with its interval, 3 significant digits; "[--]" where there is none (lo is NaN)."""
    return f"{x:.3g} [{lo:.3g}, {hi:.3g}]" if lo == lo else f"{x:.3g} [--]"


def _frame(rows: list[dict]) -> str:
    return pd.DataFrame(rows).to_string(index=False)
