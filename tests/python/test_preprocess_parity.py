"""The C++ image path against its oracles: transformers' load_image (decode, EXIF transpose,
convert("RGB")), Pillow's Image.resize(BICUBIC) and the v5 Qwen2-VL PIL-backend image processor.

The C++ side is reached through tests/tools/preprocess_dump.cpp (env ATTNMAP_PREPROCESS_DUMP).
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers.image_transforms import convert_to_rgb
from transformers.image_utils import load_image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from attnmap_tools.testing import make_test_images
from conftest import missing_build_output

EXIT_INPUT = 3


def _dump_binary():
    env = os.environ.get("ATTNMAP_PREPROCESS_DUMP")
    if env:
        return env
    build = os.environ.get("ATTNMAP_BUILD_DIR")
    candidate = Path(build) / "tests" / "attnmap_preprocess_dump" if build else None
    if candidate and candidate.exists():
        return str(candidate)
    missing_build_output("set ATTNMAP_PREPROCESS_DUMP to the attnmap_preprocess_dump binary (ctest does)")


def _dump(*args):
    return subprocess.run([_dump_binary(), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_test_images.make_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return make_test_images.make_broken_files(tmp_path_factory.mktemp("broken"))


# The names are fixed by the generator; list them once without writing files at import time.
IMAGE_NAMES = [
    "rgb_1024x768.jpg", "rgb_640x480.png", "rgb_444_333x251.jpg", "rgb_progressive_500x375.jpg",
    "gray_300x200.png", "gray_200x100.jpg", "rgba_256x256.png", "la_100x80.png", "palette_320x240.png",
    "palette_transparent_150x90.png", "palette_alphas_100x100.png", "gray_trns_120x80.png",
    "rgb_trns_90x120.png", "bilevel_97x61.png", "gray16_200x150.png", "rgb16_120x90.png",
    "rgba16_64x48.png", *[f"exif{o}_160x120.jpg" for o in range(1, 9)], "exif6_90x70.png", "xmp8_100x60.jpg",
    "tiny_28x40.png", "small_30x50.png", "wide_1200x60.png", "tall_41x2000.jpg", "large_1600x1200.jpg",
    "exact_224x448.png", "round_half_70x98.png", "rgb_257x193.bmp", "rgb_211x163.tiff",
]

# (min_pixels, max_pixels): the checkpoints' values, a budget that forces downscaling, one that forces upscaling.
PIXEL_BUDGETS = {
    "checkpoint": (3136, 12845056),
    "downscale": (3136, 256 * 28 * 28),
    "upscale": (1024 * 28 * 28, 12845056),
}


def test_generator_covers_every_listed_image(images):
    assert sorted(images) == sorted(IMAGE_NAMES)
    # The tRNS images must actually contain their transparent colour, or the whitening goes untested.
    for name in ["palette_transparent_150x90.png", "gray_trns_120x80.png", "rgb_trns_90x120.png"]:
        plain = np.asarray(load_image(str(images[name])))
        assert np.count_nonzero(convert_to_rgb(load_image(str(images[name])), return_numpy=True) != plain) > 0, name


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_decoded_image_equals_what_the_hf_processor_sees(images, name, tmp_path):
    result = _dump("load", images[name], tmp_path)
    assert result.returncode == 0, result.stderr
    ours = np.load(tmp_path / "loaded.npy")
    # What the processor works on: load_image, then its convert_to_rgb (which whitens a tRNS colour).
    reference = convert_to_rgb(load_image(str(images[name])), return_numpy=True)
    assert ours.shape == reference.shape
    differing = int(np.count_nonzero(ours != reference))
    assert differing == 0, f"{differing} of {ours.size} samples differ (max {np.abs(ours.astype(int) - reference).max()})"


@pytest.mark.parametrize("budget", sorted(PIXEL_BUDGETS))
@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_preprocess_equals_hf_processor(images, name, budget, tmp_path):
    min_pixels, max_pixels = PIXEL_BUDGETS[budget]
    result = _dump("preprocess", images[name], tmp_path, min_pixels, max_pixels)
    assert result.returncode == 0, result.stderr

    image = load_image(str(images[name]))
    processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    expected = processor(images=image, return_tensors="np")
    grid = np.asarray(expected["image_grid_thw"])
    np.testing.assert_array_equal(np.load(tmp_path / "image_grid_thw.npy"), grid)

    # The resized uint8 image must be Pillow's, byte for byte.
    resized = np.load(tmp_path / "resized.npy")
    height, width = int(grid[0, 1]) * 14, int(grid[0, 2]) * 14
    assert resized.shape == (height, width, 3)
    processor_input = Image.fromarray(convert_to_rgb(image, return_numpy=True))
    pil_resized = np.asarray(processor_input.resize((width, height), Image.BICUBIC))
    assert int(np.count_nonzero(resized != pil_resized)) == 0

    ours = np.load(tmp_path / "pixel_values.npy")
    theirs = np.asarray(expected["pixel_values"])
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    # Same dtypes and operation order as numpy, so the values should not just be close but equal.
    np.testing.assert_array_equal(ours, theirs)


RESIZE_CASES = [
    # (in_h, in_w, out_h, out_w, channels)
    (10, 10, 37, 23, 3),      # upscale both
    (400, 300, 56, 84, 3),    # strong downscale (wide kernel support)
    (1000, 7, 7, 1000, 3),    # down one axis, up the other
    (64, 80, 64, 28, 3),      # horizontal pass only
    (64, 80, 140, 80, 3),     # vertical pass only
    (33, 47, 33, 47, 3),      # same size: a copy
    (97, 61, 29, 205, 1),     # single channel
    (5, 3, 1, 1, 3),          # to one pixel
    (1, 1, 9, 4, 3),          # from one pixel
]


@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: "{}x{}to{}x{}c{}".format(*c))
def test_resize_bicubic_equals_pillow(case, tmp_path):
    in_h, in_w, out_h, out_w, channels = case
    rng = np.random.default_rng(in_h * 1000 + in_w)
    # Extremes next to each other make the negative lobes overshoot, exercising the clipping.
    array = rng.choice(np.array([0, 255, 1, 254, 128], dtype=np.uint8), size=(in_h, in_w, channels))
    array[: in_h // 2] = rng.integers(0, 256, size=(in_h // 2, in_w, channels), dtype=np.uint8)
    if channels == 1:
        array = array[..., 0]
    np.save(tmp_path / "in.npy", array)
    result = _dump("resize", tmp_path / "in.npy", out_w, out_h, tmp_path / "out.npy")
    assert result.returncode == 0, result.stderr
    ours = np.load(tmp_path / "out.npy")
    theirs = np.asarray(Image.fromarray(array).resize((out_w, out_h), Image.BICUBIC))
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["empty.jpg", "text.jpg", "random.png", "truncated.jpg", "truncated.png",
                                  "header_only.png"])
def test_broken_files_are_input_errors(broken, name, tmp_path):
    with pytest.raises(Exception):  # the oracle agrees the file is unusable
        load_image(str(broken[name]))
    result = _dump("load", broken[name], tmp_path)
    assert result.returncode == EXIT_INPUT, result.stderr
    message = result.stderr.strip()
    assert "\n" not in message and str(broken[name]) in message
    assert "loaded.npy" not in os.listdir(tmp_path)


def test_missing_file_and_folder_are_input_errors(tmp_path):
    missing = _dump("load", tmp_path / "nope.jpg", tmp_path / "out")
    assert missing.returncode == EXIT_INPUT and "not found" in missing.stderr
    folder = _dump("load", tmp_path, tmp_path / "out")
    assert folder.returncode == EXIT_INPUT and "folder" in folder.stderr


def test_extreme_aspect_ratio_rejected_like_hf(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("RGB", (28 * 201, 28), (10, 20, 30)).save(path)
    with pytest.raises(ValueError, match="aspect ratio"):
        Qwen2VLImageProcessorPil()(images=load_image(str(path)), return_tensors="np")
    result = _dump("preprocess", path, tmp_path / "out", 3136, 12845056)
    assert result.returncode == EXIT_INPUT and "aspect ratio" in result.stderr


def test_side_below_28_pixels_rejected(tmp_path):
    # transformers v5 no longer rejects this; attnmap does (a side must hold one merged patch).
    path = tmp_path / "thin.png"
    Image.new("RGB", (100, 27), (10, 20, 30)).save(path)
    result = _dump("preprocess", path, tmp_path / "out", 3136, 12845056)
    assert result.returncode == EXIT_INPUT and "28" in result.stderr
