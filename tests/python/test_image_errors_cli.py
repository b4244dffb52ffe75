"""Undecodable images through `attnmap run`: stderr is exactly one attnmap line naming the file and
saying what is wrong; no decoder library prints its own unattributed line (libpng's "libpng error: ...")."""
import io
import os
import struct
import subprocess
import zlib

import pytest
from PIL import Image

from attnmap_tools.testing import hf_reference as ref


def png_chunks(data: bytes):
    pos = 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        yield data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length


def png_from_chunks(chunks) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return out


def good_png() -> bytes:
    buf = io.BytesIO()
    ref.synthetic_image(64, 64, seed=1).save(buf, format="PNG")
    return buf.getvalue()


def corrupt_idat_png() -> bytes:
    """Chunks chain to IEND with valid CRCs, but the IDAT zlib header is wrong: libpng's
    'IDAT: incorrect header check'."""
    chunks = [(k, b"\x00\x00" + b[2:] if k == b"IDAT" else b) for k, b in png_chunks(good_png())]
    return png_from_chunks(chunks)


def corrupt_ihdr_png() -> bytes:
    """An IHDR with bit depth 3 (invalid for every colour type)."""
    chunks = [(k, b[:8] + b"\x03" + b[9:] if k == b"IHDR" else b) for k, b in png_chunks(good_png())]
    return png_from_chunks(chunks)


def bad_crc_png() -> bytes:
    data = bytearray(good_png())
    data[8 + 8 + 13] ^= 0xFF  # the IHDR CRC
    return bytes(data)


def garbage_idat_png() -> bytes:
    chunks = [(k, os.urandom(len(b)) if k == b"IDAT" else b) for k, b in png_chunks(good_png())]
    return png_from_chunks(chunks)


def random_bytes(n=4096, seed=7) -> bytes:
    import random
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(n))
    # Not accidentally a known signature.
    return b"\x00" + data[1:] if data[:2] == b"\xff\xd8" or data[:4] == b"\x89PNG" else data



CASES = {
    "random.jpg": (random_bytes(), ["not a decodable image", "unknown or corrupt format"]),
    "random.png": (random_bytes(seed=8), ["not a decodable image", "unknown or corrupt format"]),
    "idat_header.png": (corrupt_idat_png(), ["PNG", "corrupt"]),
    "idat_garbage.png": (garbage_idat_png(), ["PNG", "corrupt"]),
    "ihdr.png": (corrupt_ihdr_png(), ["PNG", "corrupt"]),
    "crc.png": (bad_crc_png(), ["PNG", "corrupt"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_undecodable_image_is_one_line_naming_the_file(attnmap_bin, tiny_model, tmp_path, name):
    data, words = CASES[name]
    image = tmp_path / name
    image.write_bytes(data)
    env = dict(os.environ, ATTNMAP_LOG_LEVEL="warn")
    proc = subprocess.run([attnmap_bin, "run", "--model", str(tiny_model["model"]), "--image", str(image),
                           "--prompt", "What is this?", "--out", str(tmp_path / "out"), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("attnmap: error: ") and str(image) in lines[0], lines[0]
    assert "truncated" not in lines[0], lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
