#!/usr/bin/env python3
"""The fold runs of a seed ensemble, for `liveness-trainer report`.

Given the cross-session folders of one recipe trained with several seeds
(each holding fold-a1 … fold-b3 from scripts/cross-session.sh), writes OUT/fold-XX/ whose
val_scores.jsonl gives each validation sample the score the exported ensemble computes: the
sigmoid of the mean of the members' logits (`export --checkpoint A B C` averages logits in one
graph). metrics.jsonl is the first member's, for the training-curve plots.

Usage: scripts/ensemble-folds.py OUT SEED_DIR [SEED_DIR ...]
"""
import json
import math
import shutil
import sys
from pathlib import Path


def logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, members = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    folds = sorted(p.name for p in members[0].glob("fold-*") if p.is_dir())
    if not folds:
        print(f"error: {members[0]} has no fold-* runs", file=sys.stderr)
        return 1
    for fold in folds:
        scores: dict[str, list[float]] = {}
        classes: dict[str, str] = {}
        for m in members:
            path = m / fold / "val_scores.jsonl"
            if not path.is_file():
                print(f"error: {path} is missing (unfinished run?)", file=sys.stderr)
                return 1
            for line in path.read_text().splitlines():
                row = json.loads(line)
                scores.setdefault(row["path"], []).append(logit(row["spoof"]))
                classes[row["path"]] = row["class"]
        incomplete = [p for p, s in scores.items() if len(s) != len(members)]
        if incomplete:
            print(f"error: {fold}: members scored different samples, e.g. {incomplete[0]}", file=sys.stderr)
            return 1
        dst = out / fold
        dst.mkdir(parents=True, exist_ok=True)
        with open(dst / "val_scores.jsonl", "w") as f:
            for path, s in scores.items():
                mean = sum(s) / len(s)
                row = {"path": path, "class": classes[path], "spoof": 1 / (1 + math.exp(-mean))}
                f.write(json.dumps(row) + "\n")
        shutil.copy(members[0] / fold / "metrics.jsonl", dst / "metrics.jsonl")
    print(f"{len(folds)} folds of a {len(members)}-member ensemble in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
