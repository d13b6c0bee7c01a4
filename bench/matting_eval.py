#!/usr/bin/env python3
"""Matting on composites of known matte, through `lucid process`, beside OpenCV's GrabCut.

Each case pastes a subject (the middle of one shared photograph, cut to a wobbly blob, or to a
head and shoulders running off the bottom edge, anti-aliased) onto a background (a textured
photograph, a studio backdrop with a soft shadow, or a photograph blurred as a shallow depth
of field would), 400x300. For lucid's two matting models and for OpenCV's `grabCut` it prints
the intersection over union of the mattes (alpha > 0.5) and the mean alpha error. OpenCV is
given what lucid is not: the rectangle around the true subject, grown by 10 px, as a user
would draw it (a subject at the edge gets a rectangle to the edge).

    cargo build --release
    python3 bench/matting_eval.py target/release/lucid ../shared/images
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

W, H = 400, 300
# (name, subject, background: an image, "studio", or "blur:" and an image; shape)
CASES = [
    ("studio_coffee", "coffee.png", "studio", "blob"),
    ("brick_astronaut", "astronaut.png", "brick.png", "blob"),
    ("grass_rocket", "rocket.jpg", "grass.png", "blob"),
    ("gravel_chelsea", "chelsea.png", "gravel.png", "blob"),
    ("bokeh_camera", "camera.png", "blur:coffee.png", "person"),
    ("studio_astronaut", "astronaut.png", "studio", "person"),
]


def cover(img):
    ih, iw = img.shape[:2]
    s = max(W / iw, H / ih)
    r = cv2.resize(img, (round(iw * s + 0.5), round(ih * s + 0.5)), interpolation=cv2.INTER_AREA)
    y, x = (r.shape[0] - H) // 2, (r.shape[1] - W) // 2
    return r[y : y + H, x : x + W].astype(np.float32) / 255


def matte(shape, ss=4):
    yy, xx = np.mgrid[0 : H * ss, 0 : W * ss].astype(np.float32) / ss + 0.5 / ss
    cx, cy = W / 2, H / 2
    if shape == "blob":
        t = np.arctan2(yy - cy, xx - cx)
        r = 95 * (1 + 0.15 * np.sin(3 * t + 0.7) + 0.08 * np.sin(5 * t + 2.0))
        inside = np.hypot(xx - cx, yy - cy) < r
    else:
        head = np.hypot(xx - cx, yy - 110) < 55
        shoulders = (np.abs(xx - cx) < 120 - 0.4 * np.maximum(0, 250 - yy)) & (yy > 170)
        inside = head | shoulders
    return inside.reshape(H, ss, W, ss).mean((1, 3)).astype(np.float32)


def studio():
    grey = np.linspace(0.80, 0.97, H, dtype=np.float32)[:, None, None] * np.ones((1, W, 3), np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    shadow = np.exp(-(((xx - W / 2) / 120) ** 2 + ((yy - 255) / 18) ** 2)) * 0.35
    return grey * (1 - shadow[..., None])


def score(alpha, truth):
    a, t = alpha > 0.5, truth > 0.5
    return (a & t).sum() / max(1, (a | t).sum()), np.abs(alpha - truth).mean()


def main():
    lucid, images = sys.argv[1], Path(sys.argv[2])
    load = lambda n: cv2.imread(str(images / n), cv2.IMREAD_COLOR)
    print(f"{'case':18} {'Object':>14} {'RemoveBG':>14} {'OpenCV GrabCut':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, subject, background, shape in CASES:
            fg = cover(load(subject))
            if background == "studio":
                bg = studio()
            elif background.startswith("blur:"):
                bg = cv2.GaussianBlur(cover(load(background[5:])), (0, 0), 8)
            else:
                bg = cover(load(background))
            truth = matte(shape)
            a = truth[..., None]
            composite = np.round((fg * a + bg * (1 - a)) * 255).astype(np.uint8)
            src = f"{tmp}/{name}.png"
            cv2.imwrite(src, composite)
            cells = []
            for model in ["Object", "RemoveBG"]:
                out = f"{tmp}/{name}-{model}.png"
                subprocess.run(
                    [lucid, "process", "--endpoint", "matting", "--model", model, src, out],
                    check=True,
                    capture_output=True,
                )
                alpha = cv2.imread(out, cv2.IMREAD_UNCHANGED)[..., 3].astype(np.float32) / 255
                cells.append(score(alpha, truth))
            ys, xs = np.nonzero(truth > 0)
            x0, y0 = max(0, xs.min() - 10), max(0, ys.min() - 10)
            x1, y1 = min(W - 1, xs.max() + 10), min(H - 1, ys.max() + 10)
            mask = np.zeros((H, W), np.uint8)
            bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
            cv2.grabCut(composite, mask, (x0, y0, x1 - x0 + 1, y1 - y0 + 1), bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
            cells.append(score(((mask == 1) | (mask == 3)).astype(np.float32), truth))
            print(f"{name:18} " + " ".join(f"{iou:.3f} / {err:.3f}" for iou, err in cells))
    print("(each cell: IoU / mean alpha error)")


if __name__ == "__main__":
    main()
