#!/usr/bin/env python3
"""OpenCV non-local means on the noisy files that crates/lucid-imaging/tests/quality.rs writes,
for the reference figures in that test. For each image and noise level it sweeps h and keeps
the best PSNR, so lucid is compared with OpenCV at its best, not at a default. It also prints
the PSNR of a 3x3 median of the same file, which scores as `vips rank in out 3 3 4` and
Pillow's `ImageFilter.MedianFilter(3)` do: the fastest peers of the benchmark's denoise row.

    cargo test -p lucid-imaging --test quality   # writes target/tmp/quality/*.png
    python3 bench/denoise_reference.py target/tmp/quality ../shared/images
"""
import sys
from pathlib import Path

import cv2
import numpy as np


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def main():
    noisy_dir, clean_dir = Path(sys.argv[1]), Path(sys.argv[2])
    print(f"# OpenCV {cv2.__version__}")
    for noisy_path in sorted(noisy_dir.glob("*-s*.png")):
        stem, sigma = noisy_path.stem.rsplit("-s", 1)
        sigma = int(sigma)
        clean_path = next(clean_dir.glob(stem + ".*"))
        noisy = cv2.imread(str(noisy_path), cv2.IMREAD_UNCHANGED)
        clean = cv2.imread(str(clean_path), cv2.IMREAD_UNCHANGED)
        if clean.ndim == 3 and clean.shape[2] == 4:
            clean = clean[:, :, :3]
        best = (-1.0, 0.0)
        for factor in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3):
            h = sigma * factor
            if noisy.ndim == 2:
                out = cv2.fastNlMeansDenoising(noisy, None, h, 7, 21)
            else:
                out = cv2.fastNlMeansDenoisingColored(noisy, None, h, h, 7, 21)
            best = max(best, (psnr(clean, out), h))
        median = psnr(clean, cv2.medianBlur(noisy, 3))
        print(
            f'    ("{clean_path.name}", {sigma}, {best[0]:.2f}),  '
            f"// h = {best[1]:.1f}; 3x3 median {median:.2f}"
        )


if __name__ == "__main__":
    main()
