"""The coverage of the intervals measured on planted tables (analysis/calibrate.py), a fast version."""

from analysis.calibrate import coverage


def test_calibration_covers_near_nominal_on_planted_tables():
    result = coverage(60, seed=3).set_index("quantity")
    assert result["intervals"].min() >= 15
    assert result["coverage"].between(0.8, 1.0).all(), result  # the full run (docs/analysis.md) is held to [0.90, 0.99]
