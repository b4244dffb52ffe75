"""The animated GIF writer (src/render/write_gif.cpp) decoded by Pillow, an independent GIF decoder.

The C++ side is reached through tests/tools/gif_dump.cpp (env ATTNMAP_GIF_DUMP): a uint8 [N, H, W, 3] BGR
.npy in, a GIF out. Frames are synthetic video attention: a jet heatmap of a moving Gaussian blended 50/50
over a smooth, photo-like noise image.
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from conftest import missing_build_output

EXIT_INTERNAL = 70
MAE_BOUND = 4.0  # mean abs error per channel that the palette must keep on heatmap frames


def _dump_binary():
    env = os.environ.get("ATTNMAP_GIF_DUMP")
    if env:
        return env
    build = os.environ.get("ATTNMAP_BUILD_DIR")
    candidate = Path(build) / "tests" / "attnmap_gif_dump" if build else None
    if candidate and candidate.exists():
        return str(candidate)
    missing_build_output("set ATTNMAP_GIF_DUMP to the attnmap_gif_dump binary (ctest does)")


def write_gif(tmp_path, frames_rgb, delay_ms=100, loop=None, name="out.gif"):
    """Writes RGB uint8 frames [N, H, W, 3] through the C++ writer; returns the GIF's path."""
    npy = tmp_path / (name + ".npy")
    np.save(npy, np.ascontiguousarray(frames_rgb[..., ::-1]))  # the writer takes BGR, as OpenCV does
    out = tmp_path / name
    args = [_dump_binary(), npy, delay_ms, out] + ([loop] if loop is not None else [])
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def read_gif(path):
    im = Image.open(path)
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    return im, frames


def jet(x):
    """Matplotlib's / OpenCV's jet colormap of x in [0, 1], as float RGB in [0, 1]."""
    return np.clip(np.stack([1.5 - np.abs(4 * x - 3), 1.5 - np.abs(4 * x - 2), 1.5 - np.abs(4 * x - 1)], -1), 0, 1)


def smooth_noise(h, w, seed=0):
    """Photo-like: smooth luminance with a milder smooth colour cast, values in [0, 255]."""
    rng = np.random.default_rng(seed)

    def smooth(cells):
        small = rng.random((cells, cells))
        img = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
        return np.asarray(img, dtype=np.float64) / 255

    lum = smooth(6) * 0.7 + smooth(16) * 0.3
    tint = np.stack([smooth(4) for _ in range(3)], -1) - 0.5
    return np.clip((lum[..., None] + 0.35 * tint) * 255, 0, 255)


def heatmap_frames(n=8, h=120, w=160):
    background = smooth_noise(h, w)
    ys, xs = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        cx, cy = w * (0.2 + 0.6 * i / max(1, n - 1)), h * (0.3 + 0.4 * np.sin(i / 2))
        g = np.exp(-(((xs - cx) / (0.2 * w)) ** 2 + ((ys - cy) / (0.2 * h)) ** 2))
        frames.append(np.round(0.5 * jet(g) * 255 + 0.5 * background))
    return np.stack(frames).astype(np.uint8)


def test_heatmap_animation_frames_duration_loop_and_error(tmp_path):
    frames = heatmap_frames()
    im, decoded = read_gif(write_gif(tmp_path, frames, delay_ms=120))
    assert im.n_frames == len(frames)
    assert im.size == (frames.shape[2], frames.shape[1])
    assert im.info["duration"] == 120
    assert im.info["loop"] == 0
    errors = []
    for i, (got, want) in enumerate(zip(decoded, frames)):
        diff = np.abs(got.astype(int) - want.astype(int))
        errors.append((diff.mean(), diff.max()))
        assert diff.mean() <= MAE_BOUND, f"frame {i}: mean abs error {diff.mean():.2f}"
    print("per-frame (mean, max) abs error:", [(round(float(m), 2), int(x)) for m, x in errors])


def test_frames_of_at_most_256_colours_are_exact(tmp_path):
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    frames = colours[rng.integers(0, 256, (3, 37, 23))]  # 37 rows, 23 columns: odd sizes
    frames[1] = colours[7]  # a solid frame
    im, decoded = read_gif(write_gif(tmp_path, frames, delay_ms=40, loop=2))
    assert im.n_frames == 3 and im.size == (23, 37)
    assert im.info["duration"] == 40 and im.info["loop"] == 2
    for got, want in zip(decoded, frames):
        np.testing.assert_array_equal(got, want)


def test_one_pixel_and_large_noisy_frame(tmp_path):
    _, decoded = read_gif(write_gif(tmp_path, np.array([[[[10, 20, 30]]]], dtype=np.uint8), name="one.gif"))
    np.testing.assert_array_equal(decoded[0], [[[10, 20, 30]]])
    # Over 4096 LZW strings in one frame: the code table fills and is cleared within the image.
    rng = np.random.default_rng(2)
    colours = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    frames = colours[rng.integers(0, 200, (1, 300, 250))]
    _, decoded = read_gif(write_gif(tmp_path, frames, name="noisy.gif"))
    np.testing.assert_array_equal(decoded[0], frames[0])


@pytest.mark.parametrize("delay_ms, duration", [(33, 30), (35, 40), (5, 20), (0, 20), (1000, 1000)])
def test_delay_in_centiseconds_at_least_two(tmp_path, delay_ms, duration):
    im, _ = read_gif(write_gif(tmp_path, np.zeros((1, 2, 2, 3), np.uint8), delay_ms=delay_ms))
    assert im.info["duration"] == duration


def test_no_frames_is_refused_and_writes_nothing(tmp_path):
    npy = tmp_path / "bad.npy"
    np.save(npy, np.zeros((0, 4, 4, 3), np.uint8))  # no frames
    proc = subprocess.run([_dump_binary(), str(npy), "100", str(tmp_path / "bad.gif")], capture_output=True, text=True)
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    assert not (tmp_path / "bad.gif").exists()
