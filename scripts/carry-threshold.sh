#!/usr/bin/env bash
# Does a threshold rule survive a session change? The rule picks a threshold on the folds of one
# direction (a: trained on session 1, validated on session 2) and it is applied to the other
# direction's folds (b: the reverse), and the reverse; recorded samples only. Prints the mean
# and worst ACER of the receiving folds for each way (how models/README.md compares rules).
#
# Usage: scripts/carry-threshold.sh FOLDS_DIR [RULE...]   (default rules: eer median-eer; env BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
folds_dir=${1:?usage: $0 FOLDS_DIR [RULE...]}
shift
rules=("$@")
[ ${#rules[@]} -gt 0 ] || rules=(eer median-eer)
bin=${BIN:-target/release/liveness-trainer}
only='/[0-9]+_[0-9]+_[0-9]+_[0-9]+_[0-9]+$'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json_threshold() { sed -n 's/^  "threshold": \([0-9.eE-]*\),$/\1/p' "$1/report.json"; }
for rule in "${rules[@]}"; do
  for way in a:b b:a; do
    from=${way%:*} to=${way#*:}
    "$bin" report --runs "$folds_dir"/fold-"$from"{1,2,3} --out "$tmp/$from" --threshold-rule "$rule" --only "$only" >/dev/null
    t=$(json_threshold "$tmp/$from")
    "$bin" report --runs "$folds_dir"/fold-"$to"{1,2,3} --out "$tmp/$to" --threshold "$t" --only "$only" >/dev/null
    python3 - "$tmp/$to/report.json" "$rule" "$from" "$to" "$t" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
acer = [f[1]["acer"] for f in r["folds"]]
print(f"{sys.argv[2]:>12}  {sys.argv[3]} -> {sys.argv[4]}  threshold {float(sys.argv[5]):.4f}  "
      f"ACER mean {100 * sum(acer) / len(acer):5.1f} %  worst {100 * max(acer):5.1f} %")
PY
  done
done
