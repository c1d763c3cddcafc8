"""Text as LaTeX (analysis/tex.py) and the names the paper's numbers may have (analysis/numbers.py)."""

import pytest
import yaml

from analysis.numbers import numbers_tex
from analysis.paper import kept_tables
from analysis.table import AnalysisError
from analysis.tex import law_tex, tex
from wdbench.app import CONF_DIR


def test_a_predictions_law_is_typeset_as_math_and_one_it_cannot_set_stays_plain_text():
    assert law_tex("W & A 2025: λ_t* ∝ B/(η·N_train)") == (
        r"W \& A 2025: $\lambda _t^*\propto B/(\eta \cdot "
        r"N_\text{train})$"
    )
    assert law_tex("L & H 2019: λ ∝ sqrt(B/(N_train·T))") == (
        r"L \& H 2019: $\lambda \propto "
        r"\sqrt{B/(N_\text{train}\cdot T)}$"
    )
    assert (
        law_tex("F (μP): η_layer·λ_t constant")
        == r"F ($\mu$P): $\eta _\text{layer}\cdot \lambda _t\ \mathrm{constant}$"
    )
    assert (
        law_tex("closed form: coef* = d·σ²/(n·r²)") == r"closed form: $\mathrm{coef}^*=d\cdot \sigma ^2/(n\cdot r^2)$"
    )
    for plain in ("no law here", "x: a & b%", "x: sqrt(width", "x: μ ∝ width"):
        assert law_tex(plain) == tex(plain)  # no colon, TeX specials, an open bracket, a symbol it lacks
    for experiment in sorted((CONF_DIR / "experiment").glob("*.yaml")):  # every law an experiment tests is typeset
        for law in yaml.safe_load(experiment.read_text()).get("predictions", []):
            assert law_tex(law["source"]).endswith("$") and "sqrt(" not in law_tex(law["source"]), law["source"]


def test_tex_escapes_every_special_character_once_and_number_keys_must_be_latex_names(tmp_path):
    assert tex(r"a_b%c&d#e{f}g$h~i^j\k λ²") == (
        r"a\_b\%c\&d\#e\{f\}g\$h\textasciitilde{}i\textasciicircum{}j"
        r"\textbackslash{}k $\lambda$$^2$"
    )
    assert r"\csname result:x:e:model.param=μp:sum:width\endcsname{0.1}" in numbers_tex(
        {}, {"x": {"e:model.param=μp:sum:width": "0.1"}}
    )
    with pytest.raises(AnalysisError, match=r"number key x:'e:a~b': '~' cannot be in a LaTeX name"):
        numbers_tex({}, {"x": {"e:a~b": "1"}})
    for name in ("x.csv", "x.csv.bak", "y.v2.csv.gz"):
        (tmp_path / name).write_text("")
    assert {k: p.name for k, p in kept_tables(tmp_path).items()} == {"x": "x.csv", "y.v2": "y.v2.csv.gz"}
    (tmp_path / "x.csv.gz").write_text("")
    with pytest.raises(AnalysisError, match="two tables for experiment x"):
        kept_tables(tmp_path)
