#!/usr/bin/env bash
# Cross-session validation of a training recipe on NUAA-style data (how every choice of the
# default model was measured): six folds, each training on ONE recording session of six subjects
# and validating on the OTHER session of the three held-out subjects (subject groups 0001-0003,
# 0004-0006, 0007-0009; both directions), then `report` (threshold at the equal-error point of
# the pooled out-of-fold scores; per-fold and mean ± std metrics at that one threshold).
#
# Usage: scripts/cross-session.sh OUT [DATA] -- TRAIN_FLAGS...
#   e.g. scripts/cross-session.sh runs/x/cnn4 ../shared/data/nuaa-train -- --arch cnn4 --input-size 64 --epochs 30
# env: BIN (default target/release/liveness-trainer), FOLDS (default: all six, e.g. "a1 b2"),
#      TRAIN_FAMILIES / VAL_FAMILIES: with DATA from `synth-attacks --link-source`, the synthetic
#      attack families each side keeps (a regular-expression alternation such as
#      "prt-gloss|scr-phone", or "none" for the recorded samples only; default: everything).
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
  if [ "$dir" = a ]; then s_train=01; s_val=02; else s_train=02; s_val=01; fi
  train="_${s_train}_[0-9]+\$"; val="_${s_val}_[0-9]+\$"
  # Sample names: <subject>_[<family>_]<glasses>_<position>_<session>_<run>.
  pick() { if [ "$1" = none ]; then echo "^[0-9]+_[0-9]+_[0-9]+_$2_[0-9]+\$"; else echo "^[0-9]+_(($1)_)?[0-9]+_[0-9]+_$2_[0-9]+\$"; fi; }
  [ -n "${TRAIN_FAMILIES:-}" ] && train=$(pick "$TRAIN_FAMILIES" "$s_train")
  [ -n "${VAL_FAMILIES:-}" ] && val=$(pick "$VAL_FAMILIES" "$s_val")
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
