"""The mutation score per module from mutmut's verdicts (mutants/**/*.py.meta): killed (a test
failed, the mutant hung past mutmut's time limit or crashed the interpreter) over all mutants; `no
tests` (no fast test runs that code), `survived` and `not run` count against it. Exit 1 if a module
is below 80%."""

import json
import sys
from collections import Counter
from pathlib import Path

GOAL = 0.8
VERDICT = {
    1: "killed",
    3: "killed",
    37: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -9: "crashed",
    -11: "crashed",
    None: "not run",
}
DETECTED = {"killed", "timeout", "crashed"}
COLUMNS = ("killed", "timeout", "crashed", "survived", "no tests", "not run", "other")  # other: skipped, interrupted


def main() -> int:
    rows = []
    for meta in sorted(Path("mutants").glob("**/*.py.meta")):
        counts = Counter(
            VERDICT.get(code, "other") for code in json.loads(meta.read_text())["exit_code_by_key"].values()
        )
        total = sum(counts.values())
        rows.append((str(meta.relative_to("mutants"))[: -len(".meta")], total, counts))
    if not rows:
        print("no mutants: run bash scripts/mutation.sh first", file=sys.stderr)
        return 2
    print(f"{'module':24} {'mutants':>7} " + " ".join(f"{c:>8}" for c in COLUMNS) + "   score")
    below = []
    for module, total, c in rows:
        score = sum(c[v] for v in DETECTED) / total
        below += [module] if score < GOAL else []
        print(f"{module:24} {total:7} " + " ".join(f"{c[col]:8}" for col in COLUMNS) + f"  {score:6.1%}")
    print(f"goal {GOAL:.0%} per module: " + (f"below in {', '.join(below)}" if below else "met in every module"))
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
