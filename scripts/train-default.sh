#!/usr/bin/env bash
# Trains, validates and exports the default model (models/default.onnx + default.json) from the
# NUAA training folder. Reproducible: fixed seed, fixed folds, fixed flags (recorded in the
# manifest). Research-use data: the result is a research/demo model.
#
#   1. scripts/cross-session.sh: six folds, each training on one recording session of six
#      subjects and validating on the other session of the three others (other people *and*
#      another session, like the held-out test), then `report`: the threshold at the equal-error
#      point of the pooled out-of-fold scores, per-fold and mean ± std figures, plots →
#      models/default-report/;
#   2. the final model on all nine subjects and both sessions, same flags;
#   3. export at the training size with that threshold.
#
# Usage: scripts/train-default.sh [DATA]   (env: DEVICE, RUNS)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/nuaa-train}
device=${DEVICE:-auto}
runs=${RUNS:-runs/default}
bin=target/release/liveness-trainer
cargo build --release -p liveness-trainer

# The recipe (every choice measured with the same folds: models/README.md).
recipe=(--arch cnn4 --input-size 64 --crop face --face-scale 1.5
        --epochs 30 --batch-size 32 --optimizer adamw --lr 1e-3 --weight-decay 0.05
        --lr-schedule cosine --seed 0 --device "$device"
        --aug-crop 0.7 --aug-color 0.3 --aug-noise 0.03 --aug-blur 0.2 --aug-cutout 0.5)

BIN=$bin scripts/cross-session.sh "$runs/folds" "$data" -- "${recipe[@]}"
rm -rf models/default-report
mkdir -p models/default-report
cp -r "$runs/folds/report/." models/default-report/
cp "$runs/folds/report.md" models/default-report/report.md
threshold=$(sed -n 's/^  "threshold": \([0-9.eE-]*\),$/\1/p' models/default-report/report.json)

# The final model trains on every subject and session (--train-on-all); its printed "validation"
# is only a sanity check on people it saw, so the manifest carries the fold report instead.
if [ -f "$runs/final/last.safetensors" ]; then
  "$bin" train --data "$data" --out "$runs/final" --epochs 30 --device "$device" --resume
else
  "$bin" train --data "$data" --out "$runs/final" "${recipe[@]}" --val-subjects 0001,0002,0003 --train-on-all
fi
cp "$runs/final/training.png" models/default-report/final-training.png
"$bin" export --checkpoint "$runs/final/last.safetensors" --out models/default.onnx --threshold "$threshold" \
  --cross-validation models/default-report/report.json \
  --training-command "scripts/train-default.sh $data" \
  --data-name "NUAA Photograph Imposter Database, training split (subjects 0001-0009, sessions 1-2)" \
  --data-terms "research use only: a research/demo model, not for production identity decisions" \
  --coverage "live faces vs printed photos, from one dataset (NUAA: 9 people, 2 sessions, one webcam type); not screen replays, not masks, not other cameras or rooms (untested)"
