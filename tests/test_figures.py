"""The figures' arithmetic (analysis/figures.py); drawing them is in test_paper.py."""

import numpy as np
import pandas as pd

from analysis.figures import relative_lambda_star
from analysis.fit import AXES


def test_relative_lambda_star_puts_every_width_on_the_fitted_line():
    """λ* = C·width^a·N_train^b exactly: divided by the law at each point's width and at the geometric
    middle of N_train, every width gives (N_train/middle)^b, and the interval is divided alike."""
    a, b, log10_c = 0.8, -0.75, -2.0
    grid = [(w, n) for w in (8, 32) for n in (512, 2048, 8192)]
    stars = pd.DataFrame([{**{axis: 1 for axis in AXES}, "status": "ok", "width": w, "n_train": n} for w, n in grid])
    stars["lam_star_sum"] = 10.0**log10_c * stars["width"] ** a * stars["n_train"] ** b
    stars["lam_lo_sum"], stars["lam_hi_sum"] = stars["lam_star_sum"] / 2, stars["lam_star_sum"] * 3
    stars.loc[len(stars)] = {**stars.iloc[0].to_dict(), "status": "open"}  # not drawn
    exponents = pd.DataFrame(
        [
            {"norm": "sum", "axis": "width", "exponent": a, "log10_C": log10_c},
            {"norm": "sum", "axis": "n_train", "exponent": b, "log10_C": log10_c},
        ]
    )
    points = relative_lambda_star(stars, exponents, "n_train", "sum")
    assert len(points) == len(grid) and set(points.columns) == {"width", "n_train", "y", "lo", "hi"}
    np.testing.assert_allclose(points["y"], (points["n_train"] / 2048.0) ** b)
    np.testing.assert_allclose(points["lo"] * 2, points["y"])
    np.testing.assert_allclose(points["hi"] / 3, points["y"])
