#!/usr/bin/env bash
# A sweep longer than one sitting, carried across machines in the repository (outputs/ is not kept):
#   bash scripts/partial.sh save NAME      finished runs of outputs/multirun/NAME -> paper/results/partial/NAME.tar.gz
#   bash scripts/partial.sh restore NAME   put them back under outputs/multirun/NAME (never over a file already there)
# then `python -m wdbench -m experiment=NAME` trains only what is missing: the sweeper skips a finished
# run whose recorded config is the one asked for, and refuses one made by another config.
# Kept: each completed or diverged run's result.json and .hydra/, and the sweep's runs.json; not kept:
# checkpoints and runs still in training (a rerun starts those again). OUT_DIR (default outputs: the
# config's out_dir) and PARTIAL_DIR (default paper/results/partial) move either end (relative to the
# repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: bash scripts/partial.sh save|restore NAME" >&2; exit 2; }
[ $# -eq 2 ] || usage
verb=$1 name=$2
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "partial: NAME=$name: letters, digits and _.- only" >&2; exit 2; }
[[ $name != .* ]] || { echo "partial: NAME=$name: may not start with ." >&2; exit 2; }
sweep=${OUT_DIR:-outputs}/multirun/$name archive=${PARTIAL_DIR:-paper/results/partial}/$name.tar.gz
case $verb in
  save)
    [ -d "$sweep" ] || { echo "partial: $sweep: no such sweep directory" >&2; exit 2; }
    list=$(mktemp)
    trap 'rm -f "$list" "$archive.tmp"' EXIT
    for result in "$sweep"/*/result.json; do
      [ -f "$result" ] || continue
      if grep -q -E '"status": "(completed|diverged)"' "$result"; then
        run=$(basename "$(dirname "$result")")
        printf '%s\n' "$run/result.json" "$run/.hydra"
      fi
    done > "$list"
    runs=$(grep -c '/result.json$' "$list" || true)
    [ "$runs" -gt 0 ] || { echo "partial: $sweep: no completed or diverged run to keep" >&2; exit 2; }
    [ -f "$sweep/runs.json" ] && echo runs.json >> "$list"
    mkdir -p "$(dirname "$archive")"
    # sorted names, no owners, times or umask in it: the same runs give the same archive
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --mode='a+rX,u+w,go-w' \
      --verbatim-files-from -C "$sweep" -cf - -T "$list" | gzip -n > "$archive.tmp"
    mv "$archive.tmp" "$archive"
    echo "partial: $runs finished runs of $sweep -> $archive"
    ;;
  restore)
    [ -f "$archive" ] || { echo "partial: $archive: no such archive" >&2; exit 2; }
    mkdir -p "$sweep"
    # a file already there is kept: restore before training the sweep again, not while it trains
    tar --skip-old-files -C "$sweep" -xzf "$archive"
    echo "partial: $archive -> $sweep (files already there kept as they were)"
    ;;
  *) usage ;;
esac
