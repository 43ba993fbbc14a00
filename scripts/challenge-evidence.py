#!/usr/bin/env python3
"""Renders the evidence for the head-pose challenge: heads that turn, and flat pictures that
imitate the turns.

No dataset of people turning their heads on request exists here, so this builds one that can be
checked. For each live frame of `DATA/real` it fits MediaPipe Face Mesh (468 points with depth,
Apache-2.0, from the `mediapipe` wheel) and renders, with a webcam-like perspective, noise, blur
and lighting:

- `head`: that mesh, carrying the frame's own face texture, turning through a challenge;
- `flat-turned`, `flat-cylinder`, `flat-fold`: the same texture on a plane (a print held up),
  flat, bent round a cylinder, or folded down the nose, turned and tilted to imitate each step.

Each sequence is a folder of PNG frames (320 × 240) with `challenge.txt`, `times.txt` (ms) and
`meta.json` (kind, subject, split). Subjects 0001–0004 are the `tune` split (thresholds are
chosen there), 0005–0009 the `report` split. `liveness-runtime`'s `challenge-eval` example
checks them with the product's own detector and rules.

    python3 -m venv /tmp/evenv && /tmp/evenv/bin/pip install mediapipe==0.10.14 scipy
    /tmp/evenv/bin/python scripts/challenge-evidence.py ../shared/data/nuaa-train runs/challenge-evidence
"""

import argparse
import json
import math
import os
import random

import cv2
import numpy as np
from mediapipe.python.solutions import face_mesh
from scipy.spatial import Delaunay

WIDTH, HEIGHT = 320, 240
FPS_MS = 200  # the widget looks about five times a second
STEP_TARGETS = {  # (yaw, pitch) degrees; positive yaw = the person's left, positive pitch = up
    'centre': (0.0, 0.0),
    'left': (1.0, 0.0),
    'right': (-1.0, 0.0),
    'up': (0.0, 1.0),
    'down': (0.0, -1.0),
}
TURNS = ['left', 'right', 'up']  # liveness_core::challenge::Step::DRAWN
KINDS = ['head', 'flat-turned', 'flat-cylinder', 'flat-fold']


def draw_challenge(rng):
    steps = ['centre']
    last = None
    for _ in range(2 + rng.randrange(2)):
        pick = rng.choice([t for t in TURNS if t != last])
        steps.append(pick)
        last = pick
    steps.append('centre')
    return steps


def rot(yaw, pitch, roll=0.0):
    """Rotation of camera-space points (x right, y down, z away from the camera): positive yaw
    moves a point in front of the centre (the nose) to +x, the person's left in an unmirrored
    frame; positive pitch moves it up."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rp = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    rr = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rr @ rp @ ry


def render(texture, uv, verts, tris, background, focal):
    """Paints the textured triangles back to front with perspective (painter's algorithm)."""
    h, w = background.shape[:2]
    out = background.copy()
    z = verts[:, 2]
    proj = np.stack([focal * verts[:, 0] / z + w / 2, focal * verts[:, 1] / z + h / 2], axis=1)
    order = np.argsort(-z[tris].mean(axis=1))
    for t in order:
        src = uv[tris[t]].astype(np.float32)
        dst = proj[tris[t]].astype(np.float32)
        # Back faces (seen from behind as the head turns away) are hidden by the front ones.
        area = (dst[1, 0] - dst[0, 0]) * (dst[2, 1] - dst[0, 1]) - (dst[2, 0] - dst[0, 0]) * (dst[1, 1] - dst[0, 1])
        if abs(area) < 0.05:
            continue
        x0, y0 = np.floor(dst.min(axis=0)).astype(int)
        x1, y1 = np.ceil(dst.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        m = cv2.getAffineTransform(src, dst - np.array([x0, y0], np.float32))
        patch = cv2.warpAffine(texture, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round(dst - np.array([x0, y0])).astype(np.int32), 1, lineType=cv2.LINE_8)
        region = out[y0:y1, x0:x1]
        region[mask > 0] = patch[mask > 0]
    return out


def camera(img, rng):
    """Webcam look: exposure, blur, sensor noise, 8-bit."""
    img = img.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-10, 10)
    sigma = rng.uniform(0.4, 1.1)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(2.0, 4.0), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def poses_for(steps, rng, amplitude):
    """Per-frame (yaw, pitch) in radians through the steps: a smooth turn of 2–3 frames, then a
    hold of 3 frames, with a small tremor; times in ms."""
    poses, times, t = [], [], 0.0
    current = np.zeros(2)
    for k, step in enumerate(steps):
        target = np.array(STEP_TARGETS[step]) * amplitude * rng.uniform(0.85, 1.15)
        moves = 1 if k == 0 else rng.randrange(2, 4)
        for i in range(moves):
            a = (i + 1) / moves
            poses.append(current + (target - current) * (0.5 - 0.5 * math.cos(math.pi * a)))
            times.append(t)
            t += FPS_MS * rng.uniform(0.8, 1.2)
        for _ in range(3):
            poses.append(target + np.array([rng.gauss(0, 1.0), rng.gauss(0, 1.0)]))
            times.append(t)
            t += FPS_MS * rng.uniform(0.8, 1.2)
        current = target
    return [np.radians(p) for p in poses], times


def face_geometry(frame, mesher):
    res = mesher.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    if not res.multi_face_landmarks:
        return None
    h, w = frame.shape[:2]
    lm = res.multi_face_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h, p.z * w] for p in lm], np.float64)


def plane_mesh(pts, grow=1.5, n=12):
    """A grid over the face's box grown by `grow` (a print shows more than the face)."""
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    c, half = (lo + hi) / 2, (hi - lo) / 2 * grow
    xs = np.linspace(c[0] - half[0], c[0] + half[0], n)
    ys = np.linspace(c[1] - half[1], c[1] + half[1], n)
    gx, gy = np.meshgrid(xs, ys)
    uv = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return uv, Delaunay(uv).simplices


def sequence(kind, frame, geo, steps, rng, head_degrees=(22, 32)):
    h, w = frame.shape[:2]
    focal = w * rng.uniform(0.9, 1.3)  # 50–65° horizontal field of view
    background = cv2.GaussianBlur(frame, (0, 0), 12)
    face_w = np.ptp(geo[:, 0])
    # The face at the distance where the frame's projection matches the photo's scale.
    dist = focal
    if kind == 'head':
        uv = geo[:, :2]
        tris = Delaunay(uv).simplices
        local = np.stack([geo[:, 0] - w / 2, geo[:, 1] - h / 2, geo[:, 2]], axis=1)
        pivot = np.array([local[:, 0].mean(), local[:, 1].mean(), 0.55 * face_w])  # the neck's axis
        amplitude = rng.uniform(*head_degrees)
    else:
        uv, tris = plane_mesh(geo)
        local = np.stack([uv[:, 0] - w / 2, uv[:, 1] - h / 2, np.zeros(len(uv))], axis=1)
        cx = geo[:, 0].mean() - w / 2
        if kind == 'flat-cylinder':
            radius = face_w * rng.uniform(0.7, 1.5)
            dx = np.clip((local[:, 0] - cx) / radius, -1.4, 1.4)
            local[:, 0] = cx + radius * np.sin(dx)
            local[:, 2] = radius * (1 - np.cos(dx))
        elif kind == 'flat-fold':
            fold = rng.uniform(0.25, 0.6)  # how far each half is folded back, radians
            d = local[:, 0] - cx
            local[:, 0] = cx + d * math.cos(fold)
            local[:, 2] = np.abs(d) * math.sin(fold)
        pivot = np.array([local[:, 0].mean(), local[:, 1].mean(), 0.0])
        amplitude = rng.uniform(22, 40)  # an attacker turns the print as far as it takes
    poses, times = poses_for(steps, rng, amplitude)
    frames = []
    drift = np.zeros(2)
    for yaw, pitch in poses:
        drift += np.array([rng.gauss(0, 1.5), rng.gauss(0, 1.0)])
        r = rot(yaw, pitch, math.radians(rng.gauss(0, 1.5)))
        v = (local - pivot) @ r.T + pivot
        v[:, 0] += drift[0]
        v[:, 1] += drift[1]
        v[:, 2] += dist
        img = render(frame, uv, v, tris, background, focal)
        frames.append(camera(cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA), rng))
    return frames, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('data', help='dataset root (its real/ folder is read)')
    ap.add_argument('out', help='output folder')
    ap.add_argument('--per-subject', type=int, default=6, help='live samples used per subject')
    ap.add_argument('--seed', type=int, default=17)
    ap.add_argument('--kinds', default=','.join(KINDS), help='which sequences to render (comma-separated)')
    ap.add_argument('--head-degrees', type=float, nargs=2, default=(22, 32), metavar=('LO', 'HI'),
                    help='how far the heads turn and tilt, degrees (uniform)')
    args = ap.parse_args()
    rng = random.Random(args.seed)
    real = os.path.join(args.data, 'real')
    by_subject = {}
    for name in sorted(os.listdir(real)):
        by_subject.setdefault(name[:4], []).append(name)
    mesher = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)
    os.makedirs(args.out, exist_ok=True)
    made = 0
    for subject, names in sorted(by_subject.items()):
        split = 'tune' if subject <= '0004' else 'report'
        picks = rng.sample(names, min(args.per_subject, len(names)))
        for name in picks:
            frame = cv2.imread(os.path.join(real, name, '0.jpg'))
            if frame is None:
                raise SystemExit(f'{real}/{name}/0.jpg: not a readable image')
            geo = face_geometry(frame, mesher)
            if geo is None:
                print(f'{name}: Face Mesh found no face; skipped')
                continue
            for kind in args.kinds.split(','):
                steps = draw_challenge(rng)
                frames, times = sequence(kind, frame, geo, steps, rng, tuple(args.head_degrees))
                d = os.path.join(args.out, f'{kind}-{name}')
                os.makedirs(d, exist_ok=True)
                for i, f in enumerate(frames):
                    cv2.imwrite(os.path.join(d, f'{i:03d}.png'), f)
                with open(os.path.join(d, 'challenge.txt'), 'w') as fh:
                    fh.write(','.join(steps) + '\n')
                with open(os.path.join(d, 'times.txt'), 'w') as fh:
                    fh.write('\n'.join(f'{t:.0f}' for t in times) + '\n')
                with open(os.path.join(d, 'meta.json'), 'w') as fh:
                    json.dump({'kind': kind, 'subject': subject, 'split': split, 'source': name}, fh)
                made += 1
        print(f'subject {subject}: {split}, {len(picks)} faces', flush=True)
    print(f'{made} sequences in {args.out}')


if __name__ == '__main__':
    main()
