"""The README is a front door (at most 200 lines) and every relative link in it and in docs/ leads
to a file that exists, and to a heading that exists where it names one."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("\\", ""))
    return text.replace(" ", "-")


def test_the_readme_is_at_most_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                headings = [_anchor(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)]
                if anchor not in headings:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_every_python_block_in_the_readme_and_docs_runs():
    """So an example cannot go stale (the README's once called methods that no longer existed)."""
    blocks = [(page.name, block) for page in PAGES
              for block in re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.M | re.S)]
    assert blocks
    for name, block in blocks:
        exec(compile(block, name, "exec"), {"__name__": "docs_example"})
