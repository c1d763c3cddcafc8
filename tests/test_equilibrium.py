"""The rotational-equilibrium check (analysis/equilibrium.py) on planted per-tensor tables whose
ratios and exponents are known."""

import numpy as np
import pandas as pd
import pytest

from analysis.equilibrium import exponents, ratios, read_tensors
from analysis.table import AnalysisError

from helpers import COEFS, TENSORS, planted_tensors


def test_noise_free_ratios_and_exponents_are_the_planted_ones():
    tensors = planted_tensors(np.random.default_rng(0), norm_exponent=-0.4, run_sd=0, tensor_sd=0)
    r = ratios(tensors).set_index(["coef", "quantity"])
    assert r.loc[(1.0, "norm"), "ratio"] == pytest.approx(0.74) and r.loc[(0.1, "norm"), "ratio"] == pytest.approx(
        0.74 * 0.1**0.1
    )
    assert r.loc[(0.32, "angle"), "ratio"] == pytest.approx(0.97) and (r["seeds"] == 5).all()
    e = exponents(tensors).set_index(["quantity", "variable"])
    assert e.loc[("norm", "coef"), "exponent"] == pytest.approx(-0.4)
    assert e.loc[("angle", "coef"), "exponent"] == pytest.approx(0.5)
    assert not e.loc[("norm", "coef"), "consistent"] and e.loc[("norm", "coef"), "predicted"] == -0.5
    assert e.loc[("norm", "elements"), "exponent"] == pytest.approx(0.5)  # as predicted: norm ∝ sqrt(C)
    assert e.loc[("angle", "elements"), "exponent"] == pytest.approx(0.0, abs=1e-12)
    shrinking = planted_tensors(np.random.default_rng(0), run_sd=0, tensor_sd=0, size_exponent=-0.2)
    assert exponents(shrinking).set_index(["quantity", "variable"]).loc[
        ("norm", "elements"), "exponent"
    ] == pytest.approx(0.3)


def test_intervals_cover_the_planted_ratio_and_exponent_at_their_nominal_rate():
    rng = np.random.default_rng(1)
    held = {"ratio": 0, "exponent": 0}
    replicates = 300
    for _ in range(replicates):
        tensors = planted_tensors(rng)
        r = ratios(tensors).set_index(["coef", "quantity"]).loc[(0.32, "norm")]
        held["ratio"] += r["lo"] <= 0.74 <= r["hi"]
        held["exponent"] += bool(
            exponents(tensors).set_index(["quantity", "variable"]).loc[("angle", "coef"), "consistent"]
        )
    for name, count in held.items():  # 95% nominal; 300 replicates: the binomial's 99.9% band is ±0.04
        assert 0.91 <= count / replicates <= 0.99, name


def test_a_kept_table_without_its_columns_or_with_too_few_seeds_is_refused(tmp_path):
    path = tmp_path / "tensors.csv"
    twice = planted_tensors(np.random.default_rng(0))
    pd.concat([twice, twice.iloc[:1]]).to_csv(path, index=False)
    with pytest.raises(AnalysisError, match="seed 0, coef 0.1, tensor conv1.weight appears more than once"):
        read_tensors(path)
    twice.assign(lr=np.where(twice["seed"] == 0, 0.02, 0.01)).to_csv(path, index=False)
    with pytest.raises(AnalysisError, match="lr vary; the table must hold one experiment's runs"):
        read_tensors(path)
    planted_tensors(np.random.default_rng(0)).drop(columns="elements").to_csv(path, index=False)
    with pytest.raises(AnalysisError, match="no column.s. elements"):
        read_tensors(path)
    planted_tensors(np.random.default_rng(0), seeds=2).to_csv(path, index=False)
    with pytest.raises(AnalysisError, match="2 seed.s.; the intervals need at least 3"):
        read_tensors(path)
    planted_tensors(np.random.default_rng(0)).to_csv(path, index=False)
    assert len(read_tensors(path)) == 5 * len(COEFS) * len(TENSORS)
