#!/usr/bin/env python3
"""Dust & scratch removal on soft-edged synthetic dust, through `lucid process`: a harder
companion to the quality test's hard-edged discs (crates/lucid-imaging/tests/quality.rs).

The dust is drawn anti-aliased, as a scan shows it: discs (radius 0.6-2.5 px, or 2.5-5 px with
`--large`) and curved scratches 20-150 px long, 60 % white, at 60-100 % opacity, one item per
4,000 pixels, seeded. For each colour photograph and model it prints the PSNR of the dusty
image and of the restored one against the clean original, the PSNR of the restored one away
from the dust (harm done elsewhere), and the share of a clean photograph's pixels the model
changes by more than 3 levels.

    cargo build --release
    python3 bench/restore_eval.py target/release/lucid ../shared/images [--large]
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

IMAGES = ["astronaut.png", "chelsea.png", "coffee.png", "camera.png", "rocket.jpg"]
MODELS = ["Dust-Scratch", "Dust-Scratch V2"]


def add_dust(img, large, seed=7):
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    mask = np.zeros((h, w), bool)
    for _ in range(max(20, h * w // 4000)):
        layer = np.zeros((h, w), np.float32)
        if rng.random() < 0.7:
            r = rng.uniform(2.5, 5.0) if large else rng.uniform(0.6, 2.5)
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            cv2.circle(layer, (int(cx * 16), int(cy * 16)), int(r * 16), 1.0, -1, cv2.LINE_AA, 4)
        else:
            length, angle = rng.uniform(20, 150), rng.uniform(0, np.pi)
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
            xm = (x0 + x1) / 2 + rng.normal(0, length / 10)
            ym = (y0 + y1) / 2 + rng.normal(0, length / 10)
            t = np.linspace(0, 1, 40)[:, None]
            pts = (1 - t) ** 2 * [x0, y0] + 2 * (1 - t) * t * [xm, ym] + t**2 * [x1, y1]
            cv2.polylines(layer, [(pts * 16).astype(np.int32)], False, 1.0, 1, cv2.LINE_AA, 4)
        value = 255.0 if rng.random() < 0.6 else 0.0
        alpha = (layer * rng.uniform(0.6, 1.0))[..., None]
        out = out * (1 - alpha) + value * alpha
        mask |= layer > 0.05
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask


def psnr(a, b, where=None):
    err = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if where is not None:
        err = err[where]
    return 10 * np.log10(255.0**2 / max(err.mean(), 1e-9))


def restore(lucid, model, img, work):
    src, dst = work / "in.png", work / "out.png"
    cv2.imwrite(str(src), img)
    cmd = [lucid, "process", "--endpoint", "restore-gen", "--model", model,
           "--set", "output_format=png", str(src), str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return cv2.imread(str(dst))


def main():
    lucid, images = sys.argv[1], Path(sys.argv[2])
    large = "--large" in sys.argv[3:]
    print("image       model            dusty  restored  away-from-dust  clean changed")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in IMAGES:
            clean = cv2.imread(str(images / name), cv2.IMREAD_COLOR)
            dusty, mask = add_dust(clean, large)
            away = ~(cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
            for model in MODELS:
                restored = restore(lucid, model, dusty, work)
                untouched = restore(lucid, model, clean, work)
                changed = (np.abs(untouched.astype(int) - clean).max(axis=2) > 3).mean()
                print(f"{Path(name).stem:11} {model:16} {psnr(dusty, clean):5.2f}  "
                      f"{psnr(restored, clean):8.2f}  {psnr(restored, clean, away):14.2f}  "
                      f"{changed * 100:11.3f} %")


if __name__ == "__main__":
    main()
