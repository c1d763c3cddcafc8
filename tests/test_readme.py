"""The README's copy of the answer table (analysis/readme.py)."""

from pathlib import Path

import pytest

from analysis.readme import README_ANSWER, readme_with_answer
from analysis.table import AnalysisError


def test_the_readme_answer_block_is_replaced_whole_and_a_readme_without_one_is_refused():
    start, end = README_ANSWER
    assert readme_with_answer(f"x\n{start}old\n{end}y\n", "new\n") == f"x\n{start}new\n{end}y\n"
    for broken in ("no block\n", f"{end}{start}", f"{start}{end}{start}{end}"):
        with pytest.raises(AnalysisError, match="needs one answer-table block"):
            readme_with_answer(broken, "new\n")


def test_readme_holds_the_papers_answer_table_verbatim():
    """The README's headline table is the one `python -m analysis paper` wrote from the kept results."""
    root = Path(__file__).resolve().parents[1]
    assert (root / "paper" / "tables" / "answer.md").read_text() in (root / "README.md").read_text()
