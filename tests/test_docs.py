"""The README is a front door (at most 200 lines) and every relative link in it and in docs/ leads
to a file that exists, and to a heading that exists where it names one."""

import re
from pathlib import Path

# imported here: its first import sets KMP_* environment variables, which docs/data.md's examples would change
import sklearn.model_selection  # noqa: F401

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
    blocks = [
        (page.name, block)
        for page in PAGES
        for block in re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.M | re.S)
    ]
    assert blocks
    for name, block in blocks:
        exec(compile(block, name, "exec"), {"__name__": "docs_example"})


def _documented_commands():
    """(page, argv) of every command in the ```bash blocks of the README and docs/: continuation lines
    joined, `&&` chains split, trailing comments dropped."""
    import shlex

    for page in PAGES:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(), flags=re.M | re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for command in re.sub(r"\s+#\s.*$", "", line).split("&&"):
                    if command.strip():
                        yield page.name, shlex.split(command)


def _sweep_ends(overrides: list[str]) -> list[list[str]]:
    """A sweep's first and last value of every swept override (a single run: itself)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    ends = []
    for override in overrides:
        if override.startswith("~") and "=" not in override:  # a deletion: the same at both ends
            ends.append([override, override])
            continue
        values = (
            [o for o in parser.parse_override(override).sweep_string_iterator()]
            if parser.parse_override(override).is_sweep_override()
            else [override.partition("=")[2]]
        )
        key = override.partition("=")[0]
        ends.append([f"{key}={values[0]}", f"{key}={values[-1]}"])
    return [[pair[end] for pair in ends] for end in range(2)]


def _placeholder(args: list[str]) -> bool:
    """Whether a command names something the reader supplies (a sweep NAME, a data DIR or FILE.npz)."""
    return any(word in " ".join(args) for word in ("NAME", "=DIR", "=FILE"))


def test_every_documented_command_names_what_exists_and_its_overrides_validate():
    """Each wdbench command in the docs composes and passes every check at both ends of each swept
    axis (nothing trains); each analysis verb and flag exists; each script exists."""
    import subprocess
    import sys

    from hydra import compose, initialize_config_dir

    from wdbench.app import CONF_DIR
    from wdbench.checks import checked_run_config

    verbs, checked = {}, 0
    for page, argv in _documented_commands():
        module = argv[0].endswith("python") and argv[1] == "-m"
        program, args = (argv[:3], argv[3:]) if module else (argv[:2], argv[2:])
        if program[0] in ("bash", "python", ".venv/bin/python") and program[-1].endswith((".sh", ".py")):
            assert (ROOT / program[-1]).is_file(), f"{page}: {' '.join(argv)}"
        elif program[-1] == "analysis":
            verbs.setdefault(args[0], set()).update(a.split("=")[0] for a in args[1:] if a.startswith("--"))
        elif program[-1] == "wdbench" and not {"...", "--help", "--cfg"} & set(args) and not _placeholder(args):
            overrides = [a for a in args if a != "-m"]
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                for end in _sweep_ends(overrides):
                    checked_run_config(compose("config", overrides=end, return_hydra_config=True))
                    checked += 1
        else:
            assert program[-1] in ("wdbench", "wdbench.status", "pytest"), f"{page}: unknown command {' '.join(argv)}"
    assert checked >= 10 and {"collect", "fit", "figures", "paper", "calibrate", "bootstrap"} <= set(verbs)
    for verb, flags in verbs.items():
        shown = subprocess.run(
            [sys.executable, "-m", "analysis", verb, "--help"], cwd=ROOT, capture_output=True, text=True
        )
        assert shown.returncode == 0, f"analysis {verb}: {shown.stderr[-500:]}"
        assert all(flag in shown.stdout for flag in flags), (verb, flags)
