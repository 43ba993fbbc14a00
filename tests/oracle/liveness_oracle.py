#!/usr/bin/env python3
"""An independent reference for the liveness check, written from the manifest's words alone.

The server's tests use it as their honest client, so the server is never compared with its own
code: this script shares no code with the Rust crates. It reads the manifest (`NAME.json` beside
the model), takes each view's region of every frame by the crop rules the manifest states, resizes
it with Pillow's antialiased bilinear filter (the filter the Rust side's resizer imitates),
normalises with the manifest's mean and std, lays the views out as `[1, frames, 3 x views, S, S]`
and runs the ONNX file with onnxruntime (another engine than the Rust side's tract and wonnx).

Only the face boxes come from outside (the caller's detector): face detection is BlazeFace's
anchors and blending, which this script does not repeat.

Input (stdin, JSON): {"model": PATH, "frames": [base64 PNG x 5], "faces": [[x, y, w, h] x 5] or null}
Output (stdout, JSON): {"logit": L, "p_spoof": P, "live": P < threshold, "threshold": T}
"""

import base64
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image


def region(view, width, height, face):
    """(left, top, side_w, side_h) of the frame this view takes, in frame pixels (may reach
    past the frame: that part is black)."""
    kind = view["kind"]
    if kind == "whole" and view["fit"] == "squash":
        return 0.0, 0.0, float(width), float(height)
    if kind == "whole" and view["fit"] == "letterbox":
        longer = float(max(width, height))
        return (width - longer) / 2, (height - longer) / 2, longer, longer
    shorter = float(min(width, height))
    if kind == "face":
        x, y, w, h = face
        # A square of `scale` x the box's longer side, centred on the face, no larger than the
        # frame's shorter side, moved (not padded) to lie inside the frame.
        side = min(max(max(w, h) * view["scale"], 1.0), shorter)
        left = min(max(x + w / 2 - side / 2, 0.0), width - side)
        top = min(max(y + h / 2 - side / 2, 0.0), height - side)
        return left, top, side, side
    if kind == "centre-square":
        return (width - shorter) / 2, (height - shorter) / 2, shorter, shorter
    raise SystemExit(f"liveness_oracle: crop kind {kind!r} is not one this reference knows")


def view_pixels(image, view, face, size):
    """The view as `size x size` RGB uint8: the in-frame part of the region resized, placed
    where it falls, black elsewhere (edges rounded to whole output pixels)."""
    width, height = image.size
    left, top, rw, rh = region(view, width, height, face)
    inner = (max(left, 0.0), max(top, 0.0), min(left + rw, width), min(top + rh, height))
    to_px = lambda v: int(min(max(math.floor(v + 0.5), 0), size))  # noqa: E731 (round half up)
    x0, x1 = to_px((inner[0] - left) * size / rw), to_px((inner[2] - left) * size / rw)
    y0, y1 = to_px((inner[1] - top) * size / rh), to_px((inner[3] - top) * size / rh)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    if x1 > x0 and y1 > y0:
        resized = image.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=inner)
        out[y0:y1, x0:x1] = np.asarray(resized)
    return out


def main():
    request = json.load(sys.stdin)
    model = Path(request["model"])
    manifest = json.loads(model.with_suffix(".json").read_text())
    spec = manifest["input"]
    size = spec["size"]
    views = spec.get("views") or [spec["crop"]]
    mean = np.array(spec["normalization"]["mean"], dtype=np.float32)
    std = np.array(spec["normalization"]["std"], dtype=np.float32)
    frames = [Image.open(io.BytesIO(base64.b64decode(f))).convert("RGB") for f in request["frames"]]
    if len(frames) != spec["frames"]:
        raise SystemExit(f"liveness_oracle: {len(frames)} frames, the model takes {spec['frames']}")
    faces = request.get("faces") or [None] * len(frames)

    tensor = np.zeros((1, len(frames), 3 * len(views), size, size), dtype=np.float32)
    for k, (image, face) in enumerate(zip(frames, faces)):
        for v, view in enumerate(views):
            rgb = view_pixels(image, view, face, size).astype(np.float32) / 255.0
            chw = ((rgb - mean) / std).transpose(2, 0, 1)
            tensor[0, k, 3 * v : 3 * v + 3] = chw

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {spec["name"]: tensor})))
    logit = float(np.asarray(outputs["logit"]).reshape(-1)[0])
    p_spoof = 1.0 / (1.0 + math.exp(-logit))
    threshold = manifest["threshold"]
    json.dump({"logit": logit, "p_spoof": p_spoof, "live": p_spoof < threshold, "threshold": threshold}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
