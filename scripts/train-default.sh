#!/usr/bin/env bash
# Trains, validates and exports the default model (models/default.onnx + default.json) from the
# NUAA training folder. Reproducible: fixed seeds, fixed folds, fixed flags (recorded in the
# manifest). Research-use data: the result is a research/demo model.
#
#   1. synth-attacks: synthetic prints and screen replays made from the live samples (four
#      seeded effect families), linked with the recorded samples into one dataset under $RUNS
#      (outside the repository: its frames are made from research-use data);
#   2. scripts/cross-session.sh: six folds, each training on one recording session of six
#      subjects and validating on the other session of the three others (other people *and*
#      another session, like the held-out test), training on two synthetic families and
#      validating on the two others (attack styles the model has not seen);
#   3. `report` on the recorded validation samples only, the threshold by $RULE (see
#      models/README.md for how it was chosen), and on the unseen synthetic families alone;
#   4. the final model on all nine subjects, both sessions and every family, same flags;
#   5. export at the training size with the report's threshold and rule.
#
# Usage: scripts/train-default.sh [DATA]   (env: DEVICE, RUNS, RULE)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/nuaa-train}
device=${DEVICE:-auto}
runs=${RUNS:-runs/default}
# The threshold rule that carried best from one session's folds to the other's
# (scripts/carry-threshold.sh; models/README.md).
rule=${RULE:-median-eer}
bin=target/release/liveness-trainer
cargo build --release -p liveness-trainer

# The recipe (every choice measured with the same folds: models/README.md).
recipe=(--arch cnn4x3 --input-size 64
        --epochs 15 --batch-size 32 --optimizer adamw --lr 1e-3 --weight-decay 0.05
        --lr-schedule cosine --seed 0 --device "$device"
        --aug-crop 0.7 --aug-color 0.3 --aug-noise 0.03 --aug-blur 0.2 --aug-cutout 0.5)

mixed=$runs/data
if [ ! -d "$mixed" ]; then
  "$bin" synth-attacks --data "$data" --out "$mixed" --link-source --seed 0
fi
TRAIN_FAMILIES="prt-gloss|scr-phone" VAL_FAMILIES="prt-halftone|scr-monitor" BIN=$bin \
  scripts/cross-session.sh "$runs/folds" "$mixed" -- "${recipe[@]}"
# The recorded samples (threshold by $RULE) and the unseen synthetic families at that threshold.
RULE=$rule BIN=$bin scripts/report-folds.sh "$runs/folds" models/default-report

# The final model trains on every subject, session and family (--train-on-all); its printed
# "validation" is only a sanity check on people it saw, so the manifest carries the fold report.
if [ ! -f "$runs/final/last.safetensors" ]; then
  "$bin" train --data "$mixed" --out "$runs/final" "${recipe[@]}" --val-subjects 0001,0002,0003 --train-on-all
fi
cp "$runs/final/training.png" models/default-report/final-training.png
"$bin" export --checkpoint "$runs/final/last.safetensors" --out models/default.onnx \
  --cross-validation models/default-report/report.json \
  --training-command "scripts/train-default.sh $data" \
  --data-name "NUAA Photograph Imposter Database, training split (subjects 0001-0009, sessions 1-2), and synthetic prints and screen replays made from its live samples (liveness-trainer synth-attacks)" \
  --data-terms "research use only: a research/demo model, not for production identity decisions" \
  --coverage "live faces vs printed photos from one dataset (NUAA: 9 people, 2 sessions, one webcam type), and synthetic prints and screen replays made from the same live frames; no recorded screen replays, no masks, other cameras and rooms untested"
