"""``python -m wdbench.status SWEEP_DIR...``: what every run of a sweep is doing, failures first.

Reads the sweep's manifest (runs.json, written by the sweeper) and each run's result.json, so runs
that never started show as missing; a running run shows who holds its claim (wdbench.claims) and
how fresh its heartbeat is, or why the claim is stale (process gone, SLURM job left the queue, no
heartbeat), so a run killed without a word is flagged rather than shown as running. Exit code 1 if
any run failed or its result file is damaged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from wdbench.claims import describe, queued_slurm_jobs, read_claim, squeue, stale_reason
from wdbench.results import RESULT_FILE, SUBMITTED_DIR, DamagedFile, read_result, read_runs

ORDER = ("failed", "damaged", "running", "queued", "missing", "diverged", "completed")


def queued_runs(sweep_dir: Path, manifest: dict) -> dict[str, str]:
    """Run -> SLURM job id of every run whose job is pending in the queue, matched through the
    overrides the launcher recorded for each array task it submitted (results.submitted_record,
    JSON). submitit's own records are pickles, which can run code when read: never read here (a
    task submitted before the JSON record existed shows as missing)."""
    pending = squeue("-r", "-t", "PENDING", "-o", "%i") if manifest else None
    if not pending:
        return {}
    submitted: dict = {}
    for record in sorted((sweep_dir / SUBMITTED_DIR).glob("*.json")):
        try:
            submitted.update(json.loads(record.read_text()))
        except (OSError, ValueError):  # unreadable: its runs then show as missing
            continue
    run_of = {tuple(overrides): name for name, overrides in manifest.items()}
    queued = {}
    for job in pending:
        runs = submitted.get(job)
        for overrides in runs if isinstance(runs, list) else []:
            if isinstance(overrides, list) and tuple(overrides) in run_of:
                queued[run_of[tuple(overrides)]] = job
    return queued


def _age(stamp: str) -> str:
    minutes = (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds() / 60
    return f"{minutes:.0f} min ago" if minutes < 120 else f"{minutes / 60:.1f} h ago"


def sweep_rows(sweep_dir: Path, queued: set[str] | None) -> list[dict]:
    try:
        manifest = read_runs(sweep_dir)
    except DamagedFile as err:
        print(
            f"wdbench.status: warning: {err}; runs that never started cannot be listed "
            "(rerunning the sweep rebuilds it)",
            file=sys.stderr,
        )
        manifest = {}
    names = set(manifest) | {p.parent.relative_to(sweep_dir).as_posix() for p in sweep_dir.rglob(RESULT_FILE)}
    pending = queued_runs(sweep_dir, manifest)
    rows = []
    for name in sorted(names):
        try:
            result = read_result(sweep_dir / name)
        except DamagedFile as err:
            reason = str(err).split(": damaged ", 1)[1]
            rows.append(
                {
                    "status": "damaged",
                    "run": name,
                    "epoch": "",
                    "val_loss": "",
                    "note": f"result.json {reason}; rerunning the sweep keeps it aside and trains the run again",
                }
            )
            continue
        claim = read_claim(sweep_dir / name)
        if result is None:
            if claim is not None and stale_reason(claim, queued) is None:
                row = {"status": "running", "note": f"starting: claimed by {describe(claim)}"}
            elif name in pending:
                row = {"status": "queued", "note": f"SLURM job {pending[name]} pending"}
            else:
                row = {"status": "missing", "note": "never submitted, or its job left the queue without starting"}
            rows.append({**row, "run": name, "epoch": "", "val_loss": ""})
            continue
        status, history = result["status"], result.get("history") or []
        epochs = result.get("optim", {}).get("epochs", "?")
        note = ""
        if status == "failed":
            note = result["error"].splitlines()[0] if result.get("error") else "failed"
        elif status == "running" and claim is None and name in pending:  # preempted or timed out, requeued
            status, note = "queued", f"requeued: SLURM job {pending[name]} pending, resumes from its checkpoint"
        elif status == "running":
            reason = stale_reason(claim, queued) if claim else "no claim: its process stopped"
            note = f"updated {_age(result['updated_at'])}; " + (
                f"claimed by {describe(claim)}, heartbeat {claim['heartbeat_age_s']:.0f} s ago"
                if reason is None
                else f"{reason}; rerun the sweep to resume it"
            )
        if result.get("resumes"):
            note += f"{'; ' if note else ''}resumed {result['resumes']}x"
        val = (result.get("metrics") or {}).get("val_loss", history[-1]["val_loss"] if history else None)
        rows.append(
            {
                "status": status,
                "run": name,
                "epoch": f"{len(history)}/{epochs}",
                "val_loss": "" if val is None else f"{val:.4f}",
                "note": note,
            }
        )
    return sorted(rows, key=lambda r: (ORDER.index(r["status"]), r["run"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wdbench.status", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR")
    parser.add_argument("--all", action="store_true", help="list completed and diverged runs too")
    args = parser.parse_args(argv)
    queued = queued_slurm_jobs()
    any_failed = False
    for sweep in map(Path, args.sweeps):
        if not sweep.is_dir():
            print(f"wdbench.status: error: {sweep}: directory not found", file=sys.stderr)
            return 2
        rows = sweep_rows(sweep, queued)
        counts = Counter(r["status"] for r in rows)
        print(f"{sweep}: {len(rows)} runs: " + ", ".join(f"{counts[s]} {s}" for s in ORDER))
        shown = [r for r in rows if args.all or r["status"] not in ("completed", "diverged")]
        if shown:
            width = max(len(r["run"]) for r in shown)
            print(f"  {'status':9} {'run':{width}} {'epoch':>7} {'val_loss':>8}  note")
            for r in shown:
                print(f"  {r['status']:9} {r['run']:{width}} {r['epoch']:>7} {r['val_loss']:>8}  {r['note']}")
        any_failed |= counts["failed"] + counts["damaged"] > 0
    return 1 if any_failed else 0


if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()  # inside the try: a pipe closed before the last write fails here, not at exit
    except BrokenPipeError:  # the reader left (`... | head`): stop quietly, as a Unix filter does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        code = 128 + 13  # what a shell reports for a filter stopped by SIGPIPE
    sys.exit(code)
