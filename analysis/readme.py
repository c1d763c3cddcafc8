"""The README's copy of the paper's answer table, kept between two markers (a test checks that it is
the paper's, docs/analysis.md#the-paper)."""

from __future__ import annotations

from pathlib import Path

from analysis.table import AnalysisError

README = Path(__file__).resolve().parents[1] / "README.md"  # holds the answer table verbatim, between these markers
README_ANSWER = (
    "<!-- answer table: paper/tables/answer.md, written by `python -m analysis paper` -->\n",
    "<!-- end of answer table -->\n",
)


def readme_with_answer(readme: str, answer: str, name: str = "README.md") -> str:
    """The README with the answer table between its markers replaced by ``answer`` (Markdown)."""
    start, end = README_ANSWER
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise AnalysisError(f"{name}: needs one answer-table block, {start.strip()} ... {end.strip()}")
    head, rest = readme.split(start)
    return head + start + answer + end + rest.split(end)[1]
