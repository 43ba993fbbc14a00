#!/usr/bin/env bash
# Cross-session validation of a training recipe on NUAA-style data (how every choice of the
# default model was measured): six folds, each training on ONE recording session of six subjects
# and validating on the OTHER session of the three held-out subjects (subject groups 0001-0003,
# 0004-0006, 0007-0009; both directions), then `report` (threshold at the equal-error point of
# the pooled out-of-fold scores; per-fold and mean ± std metrics at that one threshold).
#
# Usage: scripts/cross-session.sh OUT [DATA] -- TRAIN_FLAGS...
#   e.g. scripts/cross-session.sh runs/x/cnn4 ../shared/data/nuaa-train -- --arch cnn4 --input-size 64 --epochs 30
# env: BIN (default target/release/liveness-trainer), FOLDS (default: all six, e.g. "a1 b2")
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: $0 OUT [DATA] -- TRAIN_FLAGS...}
shift
data=../shared/data/nuaa-train
if [ $# -gt 0 ] && [ "$1" != "--" ]; then data=$1; shift; fi
[ "${1:-}" = "--" ] && shift
bin=${BIN:-target/release/liveness-trainer}
groups=(0001,0002,0003 0004,0005,0006 0007,0008,0009)
runs=()
mkdir -p "$out"
for dir in a b; do
  if [ "$dir" = a ]; then train='_01_[0-9]+$'; val='_02_[0-9]+$'; else train='_02_[0-9]+$'; val='_01_[0-9]+$'; fi
  for g in 0 1 2; do
    fold="$dir$((g + 1))"
    if [ -n "${FOLDS:-}" ] && [[ " $FOLDS " != *" $fold "* ]]; then continue; fi
    run="$out/fold-$fold"
    if [ ! -f "$run/metrics.jsonl" ] || [ ! -f "$run/val_scores.jsonl" ]; then
      rm -rf "$run"
      "$bin" train --data "$data" --out "$run" --val-subjects "${groups[$g]}" \
        --train-only "$train" --val-only "$val" "$@" > "$run.log" 2>&1 || { tail -5 "$run.log" >&2; exit 1; }
    fi
    runs+=("$run")
  done
done
"$bin" report --runs "${runs[@]}" --out "$out/report" | tee "$out/report.md"
