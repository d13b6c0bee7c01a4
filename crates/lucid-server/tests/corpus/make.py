#!/usr/bin/env python3
"""Writes the bad-input corpus next to this script. Each file is named for the answer lucid must
give at submit: `<status>-<what>.<ext>`. Run it again after changing it; the files are committed.

    python3 crates/lucid-server/tests/corpus/make.py
"""
import io
import struct
import zlib
from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_declaring(w, h):
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x22\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def tiff_declaring(w, h):
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if typ == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, typ, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 24) + b"\0" * 16 + ifd


def encoded(fmt):
    img = Image.new("RGB", (64, 48))
    for x in range(64):
        for y in range(48):
            img.putpixel((x, y), (x * 4, y * 5, (x * y) % 256))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def main():
    jpg, png, tif = encoded("JPEG"), encoded("PNG"), encoded("TIFF")
    files = {
        "415-empty.png": b"",
        "415-text.png": b"this is not an image",
        "415-gif.gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
        "415-truncated.jpg": jpg[: len(jpg) // 2],
        "415-truncated.png": png[: len(png) // 2],
        "415-truncated.tiff": tif[: len(tif) // 2],
        "415-header-only.jpg": jpg[:200],
        "415-no-scan.jpg": jpeg_declaring(64, 48),
        "415-bad-chunk-length.png": png[:33] + struct.pack(">I", 0xFFFFFFF0) + b"IDAT" + png[41:],
        "415-bad-ifd-offset.tiff": b"II*\0" + struct.pack("<I", 0x7FFFFFFF) + b"\0" * 32,
        "415-jpeg-magic-only.jpg": b"\xff\xd8\xff",
        "415-png-magic-only.png": b"\x89PNG\r\n\x1a\n",
        "422-zero-width.png": png_declaring(0, 48),
        "422-zero-height.jpg": jpeg_declaring(64, 0),
        "400-60000x60000.png": png_declaring(60000, 60000),
        "400-60000x60000.jpg": jpeg_declaring(60000, 60000),
        "400-60000x60000.tiff": tiff_declaring(60000, 60000),
        "400-32001x10.png": png_declaring(32001, 10),
    }
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(files)} files")


if __name__ == "__main__":
    main()
