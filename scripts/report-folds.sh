#!/usr/bin/env bash
# The two reports every candidate is judged by, from the six fold runs of scripts/cross-session.sh
# trained on synthetic families prt-gloss and scr-phone:
#   OUT/report.md       the recorded samples only (no family name in the sample's folder): the
#                       threshold (by RULE, default eer) and figures comparable with every candidate;
#   OUT/unseen-families/report.md   the synthetic families no fold trained on (prt-halftone,
#                       scr-monitor) with the recorded live samples, at that threshold.
#
# Usage: scripts/report-folds.sh FOLDS_DIR OUT   (env: BIN, RULE)
set -euo pipefail
cd "$(dirname "$0")/.."
folds_dir=${1:?usage: $0 FOLDS_DIR OUT}
out=${2:?usage: $0 FOLDS_DIR OUT}
bin=${BIN:-target/release/liveness-trainer}
rule=${RULE:-eer}
folds=("$folds_dir"/fold-{a1,a2,a3,b1,b2,b3})
rm -rf "$out"
mkdir -p "$out/unseen-families"
"$bin" report --runs "${folds[@]}" --out "$out" --threshold-rule "$rule" \
  --only '/[0-9]+_[0-9]+_[0-9]+_[0-9]+_[0-9]+$' > "$out/report.md"
threshold=$(sed -n 's/^  "threshold": \([0-9.eE-]*\),$/\1/p' "$out/report.json")
"$bin" report --runs "${folds[@]}" --out "$out/unseen-families" --threshold "$threshold" \
  --only '/(real/[0-9]+_[0-9]+_[0-9]+_[0-9]+_[0-9]+|[0-9]+_(prt-halftone|scr-monitor)_.*)$' \
  > "$out/unseen-families/report.md"
