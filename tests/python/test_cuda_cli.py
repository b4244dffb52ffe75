"""attnmap on a CUDA device: same maps as on the CPU, peak GPU memory reported, batch keeps going.

Skipped unless the binary was built against a CUDA libtorch and sees a GPU (`attnmap info`'s last
line); the CPU suite covers everything else.
"""
import json
import re
import subprocess

import numpy as np
import pytest

from attnmap_tools.testing import hf_reference as ref

PROMPT = "Where is the brightest part?"


def run(bin_path, *args):
    return subprocess.run([bin_path] + [str(a) for a in args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def cuda_bin(attnmap_bin, tiny_model):
    line = run(attnmap_bin, "info", "--model", tiny_model["model"]).stdout.strip().splitlines()[-1]
    found = re.search(r"CUDA, (\d+) devices? visible", line)
    if not found or int(found.group(1)) == 0:
        pytest.skip(f"no CUDA device for this attnmap ({line})")
    return attnmap_bin


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.png"
    ref.synthetic_image(300, 420, seed=8).save(path)
    return path


def _run(bin_path, model, image, out, device, dtype):
    proc = run(bin_path, "run", "--model", model, "--image", image, "--prompt", PROMPT, "--out", out,
               "--device", device, "--dtype", dtype, "--no-images")
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "attention.json").read_text()), np.load(out / "maps.npy")


def test_cuda_fp32_maps_match_cpu(cuda_bin, tiny_model, image, tmp_path):
    cpu_doc, cpu_maps = _run(cuda_bin, tiny_model["model"], image, tmp_path / "cpu", "cpu", "fp32")
    gpu_doc, gpu_maps = _run(cuda_bin, tiny_model["model"], image, tmp_path / "gpu", "cuda", "fp32")
    assert gpu_doc["device"].startswith("cuda")
    # TF32 is off by default in libtorch, so fp32 on the GPU differs from the CPU by summation order only.
    np.testing.assert_allclose(gpu_maps, cpu_maps, rtol=1e-3, atol=1e-5)
    assert gpu_doc["prediction"]["token_id"] == cpu_doc["prediction"]["token_id"]
    weights_mib = tiny_model["model"].stat().st_size / 2**20
    assert gpu_doc["peak_device_memory_mib"] >= 0.5 * weights_mib
    assert "peak_device_memory_mib" not in cpu_doc


def test_cuda_bf16_default_runs_close_to_fp32(cuda_bin, tiny_model, image, tmp_path):
    _, fp32 = _run(cuda_bin, tiny_model["model"], image, tmp_path / "fp32", "cuda", "fp32")
    doc, bf16 = _run(cuda_bin, tiny_model["model"], image, tmp_path / "auto", "auto", "auto")
    assert doc["device"].startswith("cuda") and doc["dtype"] == "bfloat16"
    scale = np.abs(fp32).max(axis=(1, 2), keepdims=True)
    assert np.abs(bf16 - fp32).max() <= 0.1 * scale.max()


def test_cuda_batch_reports_peak_memory_per_item(cuda_bin, tiny_model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (h, w) in enumerate([(120, 160), (400, 300), (200, 200)]):
        ref.synthetic_image(h, w, seed=i).save(folder / f"img{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    proc = run(cuda_bin, "batch", "--model", tiny_model["model"], "--images", folder, "--prompt", PROMPT,
               "--out", out, "--device", "cuda", "--no-progress", "--no-images")
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(l) for l in (out / "summary.jsonl").read_text().splitlines()]
    ok = [l for l in lines if l["status"] == "ok"]
    assert len(ok) == 3 and len(lines) == 4
    assert all(l["peak_device_memory_mib"] > 0 for l in ok)
