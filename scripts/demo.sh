#!/usr/bin/env bash
# Sets everything up and runs the main job.
#
# Until the browser widget and its demo signup page land (issue 4), the main job is the trainer's:
# a short CPU training run on a dataset folder (default: ../shared/data/nuaa-train, research-use
# data; generated frames when it is absent) at 64 px, then `eval` of its last checkpoint.
# Pass another folder as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

data=${1:-../shared/data/nuaa-train}
out=${OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
cargo build --release -p liveness-trainer
bin=target/release/liveness-trainer
if [ ! -d "$data" ]; then
  # No data here: still show the whole job, on generated frames (not a measure of quality).
  echo "No dataset at $data (pass a folder laid out as DATA/{real,replay,printed,2dmask}/<sample>/<5 frames>);"
  echo "using a generated dataset instead."
  data="$out-data"
  "$bin" synth --out "$data" --subjects 6 --per-class 4
fi
"$bin" train --data "$data" --out "$out" --input-size 64 --epochs 3 --batch-size 32 \
  --optimizer adamw --lr 3e-4
"$bin" eval --checkpoint "$out/last.safetensors" --data "$data"
