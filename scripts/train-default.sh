#!/usr/bin/env bash
# Trains, validates and exports the default model (models/default.onnx + default.json) from the
# NUAA training folder. Reproducible: fixed seed, fixed folds, fixed flags (recorded in the
# manifest). Research-use data: the result is a research/demo model.
#
#   1. three folds: train on recording session 1 of six subjects, validate on session 2 of the
#      three others (other people *and* another session, like the held-out test);
#   2. `report`: threshold at the equal-error point of the pooled fold validation scores, per-fold
#      and mean ± std figures, ROC and training curves → models/default-report/;
#   3. the final model on all nine subjects and both sessions, same flags;
#   4. export at the training size with that threshold.
#
# Usage: scripts/train-default.sh [DATA]   (env: SIZE, EPOCHS, DEVICE, RUNS)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/nuaa-train}
size=${SIZE:-64}
epochs=${EPOCHS:-15}
device=${DEVICE:-auto}
runs=${RUNS:-runs/default}
bin=target/release/liveness-trainer
cargo build --release -p liveness-trainer

recipe=(--input-size "$size" --epochs "$epochs" --batch-size 32 --optimizer adamw --lr 3e-4
        --weight-decay 0.05 --lr-schedule cosine --seed 0 --device "$device"
        --aug-crop 0.7 --aug-color 0.3 --aug-noise 0.03 --aug-blur 0.2 --aug-cutout 0.5)

folds=()
for val in 0001,0002,0003 0004,0005,0006 0007,0008,0009; do
  out="$runs/fold-${val%%,*}"
  if [ -f "$out/last.safetensors" ]; then   # continue (or skip) a fold done before
    "$bin" train --data "$data" --out "$out" --epochs "$epochs" --device "$device" --resume
  else
    "$bin" train --data "$data" --out "$out" "${recipe[@]}" --val-subjects "$val" \
      --train-only '_01_[0-9]+$' --val-only '_02_[0-9]+$'
  fi
  folds+=("$out")
done
mkdir -p models/default-report
"$bin" report --runs "${folds[@]}" --out models/default-report | tee models/default-report/report.md
threshold=$(sed -n 's/^  "threshold": \([0-9.eE-]*\),$/\1/p' models/default-report/report.json)

# The final model trains on every subject and session (--train-on-all); its printed "validation"
# is only a sanity check on people it saw, so the manifest carries the fold report instead.
if [ -f "$runs/final/last.safetensors" ]; then
  "$bin" train --data "$data" --out "$runs/final" --epochs "$epochs" --device "$device" --resume
else
  "$bin" train --data "$data" --out "$runs/final" "${recipe[@]}" --val-subjects 0001,0002,0003 --train-on-all
fi
cp "$runs/final/training.png" models/default-report/final-training.png
"$bin" export --checkpoint "$runs/final/last.safetensors" --out models/default.onnx --threshold "$threshold" \
  --cross-validation models/default-report/report.json \
  --training-command "SIZE=$size EPOCHS=$epochs scripts/train-default.sh $data" \
  --data-name "NUAA Photograph Imposter Database, training split (subjects 0001-0009, sessions 1-2)" \
  --data-terms "research use only: a research/demo model, not for production identity decisions"
