#!/usr/bin/env bash
# The GPU check, run on a CUDA machine with a trainer binary built elsewhere. Build it with that
# machine's libtorch folder in its rpath, e.g. for a torch wheel in a Python venv there:
#   LIVENESS_EXTRA_RPATH=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib \
#     cargo build --release -p liveness-trainer
#   1. CUDA is really linked and used (--device cuda fails loudly otherwise);
#   2. a short CUDA training on generated data, whose training loss must fall;
#   3. bench: synthetic fp32 and fp16, then through the data loader, at batch 64 x 5 frames, 224 px.
# Usage: scripts/gpu-check.sh [path/to/liveness-trainer]   (default target/release/liveness-trainer)
set -euo pipefail
bin=${1:-target/release/liveness-trainer}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== generated data"
"$bin" synth --out "$work/data" --subjects 8 --per-class 16 --width 320 --height 240

echo "== short CUDA training"
"$bin" train --device cuda --data "$work/data" --out "$work/run" --input-size 112 --epochs 4 \
  --batch-size 32 --optimizer adamw --lr 3e-4
first=$(head -n1 "$work/run/metrics.jsonl" | sed 's/.*"train_loss":\([^,]*\).*/\1/')
last=$(tail -n1 "$work/run/metrics.jsonl" | sed 's/.*"train_loss":\([^,]*\).*/\1/')
echo "train loss: first epoch $first, last epoch $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.5 * a) }' || { echo "FAIL: loss did not fall" >&2; exit 1; }

echo "== bench"
"$bin" bench --device cuda --batch-size 64 --input-size 224 --precision fp32 --steps 30
"$bin" bench --device cuda --batch-size 64 --input-size 224 --precision fp16 --steps 30 2>/dev/null
"$bin" bench --device cuda --batch-size 64 --input-size 224 --precision fp32 --steps 30 --data "$work/data"
echo "GPU check passed"
