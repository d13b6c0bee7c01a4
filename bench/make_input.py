"""Builds the benchmark input: a 4000x3000 JPEG mosaic of the shared CC0 photographs."""
import sys
from pathlib import Path
from PIL import Image

images = Path(sys.argv[1])
out = sys.argv[2]
names = sorted(p for p in images.iterdir() if p.suffix in (".png", ".jpg"))
canvas = Image.new("RGB", (4000, 3000))
for i in range(12):
    tile = Image.open(names[i % len(names)]).convert("RGB").resize((1000, 1000), Image.LANCZOS)
    canvas.paste(tile, ((i % 4) * 1000, (i // 4) * 1000))
canvas.save(out, quality=92)
