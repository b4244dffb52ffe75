#!/usr/bin/env python3
"""Writes the images the image-path tests decode: assorted sizes, aspect ratios, PIL modes, EXIF
orientations, plus broken files for the error paths. Deterministic (fixed seed), so a failure is
reproducible: `python3 -m attnmap_tools.testing.make_test_images OUT_DIR`.
"""
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20250117


def _content(rng, height, width, channels=3):
    """Smooth gradients + sharp edges + noise: exercises interpolation, overshoot clipping and 0/255."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for c in range(channels):
        g = 127.5 + 127.5 * np.sin(x / (7.0 + 5 * c) + y / (11.0 + 3 * c))
        g += 60.0 * ((x // 9 + y // 13 + c) % 2) - 30.0  # checkerboard edges
        g += rng.normal(0, 20, size=(height, width))
        planes.append(g)
    img = np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)
    img[: max(1, height // 10), : max(1, width // 10)] = 255  # saturated corner
    img[-max(1, height // 10):, -max(1, width // 10):] = 0
    return img


def _png_raw(path, arr, color_type, bit_depth):
    """A PNG written by hand, for sample formats PIL cannot write (16-bit RGB, 16-bit grey+alpha)."""
    h, w = arr.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\0" + arr[y].astype(dtype).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) +
                     chunk(b"IEND", b""))


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def make_images(out_dir):
    """Valid images. Returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    paths = {}

    def save(name, image, **kw):
        paths[name] = out / name
        image.save(paths[name], **kw)

    save("rgb_1024x768.jpg", Image.fromarray(_content(rng, 768, 1024)), quality=90)
    save("rgb_640x480.png", Image.fromarray(_content(rng, 480, 640)))
    save("rgb_444_333x251.jpg", Image.fromarray(_content(rng, 251, 333)), quality=95, subsampling=0)
    save("rgb_progressive_500x375.jpg", Image.fromarray(_content(rng, 375, 500)), progressive=True)
    save("gray_300x200.png", Image.fromarray(_content(rng, 200, 300, 1)[..., 0], "L"))
    save("gray_200x100.jpg", Image.fromarray(_content(rng, 100, 200, 1)[..., 0], "L"))
    save("rgba_256x256.png", Image.fromarray(_content(rng, 256, 256, 4), "RGBA"))
    save("la_100x80.png", Image.fromarray(_content(rng, 80, 100, 2), "LA"))
    save("palette_320x240.png", Image.fromarray(_content(rng, 240, 320)).quantize(colors=64))
    pal = Image.fromarray(_content(rng, 90, 150)).quantize(colors=16)
    save("palette_transparent_150x90.png", pal, transparency=3)
    alphas = bytes([255, 0, 128, 255, 40] + [255] * 11)  # per-entry alphas: no single transparent colour
    save("palette_alphas_100x100.png", Image.fromarray(_content(rng, 100, 100)).quantize(colors=16),
         transparency=alphas)
    # A declared transparent colour that occurs (the black corner, a painted block) so whitening shows.
    save("gray_trns_120x80.png", Image.fromarray(_content(rng, 80, 120, 1)[..., 0], "L"), transparency=0)
    rgb_trns = _content(rng, 120, 90)
    rgb_trns[30:60, 20:50] = (12, 34, 56)
    save("rgb_trns_90x120.png", Image.fromarray(rgb_trns), transparency=(12, 34, 56))
    save("bilevel_97x61.png", Image.fromarray(_content(rng, 61, 97, 1)[..., 0], "L").convert("1"))
    g16 = (rng.integers(0, 65536, size=(150, 200), dtype=np.uint16) // np.uint16(1 + 200))  # mostly <= 325
    g16[:, :50] = rng.integers(0, 65536, size=(150, 50), dtype=np.uint16)
    save("gray16_200x150.png", Image.fromarray(g16))  # mode I;16
    paths["rgb16_120x90.png"] = out / "rgb16_120x90.png"
    _png_raw(paths["rgb16_120x90.png"], rng.integers(0, 65536, size=(90, 120, 3), dtype=np.uint16), 2, 16)
    paths["rgba16_64x48.png"] = out / "rgba16_64x48.png"
    _png_raw(paths["rgba16_64x48.png"], rng.integers(0, 65536, size=(48, 64, 4), dtype=np.uint16), 6, 16)
    for orientation in range(1, 9):
        save(f"exif{orientation}_160x120.jpg", Image.fromarray(_content(rng, 120, 160)), exif=_exif(orientation))
    save("exif6_90x70.png", Image.fromarray(_content(rng, 70, 90)), exif=_exif(6))
    save("xmp8_100x60.jpg", Image.fromarray(_content(rng, 60, 100)),
         xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="8"/>'
             b'</rdf:RDF></x:xmpmeta>')
    save("tiny_28x40.png", Image.fromarray(_content(rng, 40, 28)))
    save("small_30x50.png", Image.fromarray(_content(rng, 50, 30)))
    save("wide_1200x60.png", Image.fromarray(_content(rng, 60, 1200)))
    save("tall_41x2000.jpg", Image.fromarray(_content(rng, 2000, 41)), quality=85)
    save("large_1600x1200.jpg", Image.fromarray(_content(rng, 1200, 1600)), quality=88)
    save("exact_224x448.png", Image.fromarray(_content(rng, 448, 224)))
    save("round_half_70x98.png", Image.fromarray(_content(rng, 98, 70)))  # 70/28 = 2.5 -> 2 (half to even)
    save("rgb_257x193.bmp", Image.fromarray(_content(rng, 193, 257)))
    save("rgb_211x163.tiff", Image.fromarray(_content(rng, 163, 211)))
    return paths


def make_broken_files(out_dir):
    """Files that are not usable images. Returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    jpeg, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(_content(rng, 120, 160)).save(jpeg, format="JPEG", quality=90)
    Image.fromarray(_content(rng, 120, 160)).save(png, format="PNG")
    files = {
        "empty.jpg": b"",
        "text.jpg": b"this is not an image, just text with a .jpg name\n",
        "random.png": rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes(),
        "truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
        "truncated.png": png.getvalue()[: len(png.getvalue()) // 2],
        "header_only.png": png.getvalue()[:40],
    }
    paths = {}
    for name, data in files.items():
        paths[name] = out / name
        paths[name].write_bytes(data)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "test_images")
    made = {**make_images(target), **make_broken_files(target / "broken")}
    print(f"wrote {len(made)} files under {target}")
