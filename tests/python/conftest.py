"""Shared pytest fixtures: where the built attnmap binary and the tools live."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the checkout: run_compare's fallback build/attnmap


def missing_build_output(reason):
    """A test that needs a built binary or model skips when run by hand without one, but fails under
    CTest (which sets ATTNMAP_UNDER_CTEST and every path): there a missing one is a broken build."""
    if os.environ.get("ATTNMAP_UNDER_CTEST"):
        pytest.fail(reason + " (under CTest this is a broken build, not a skip)")
    pytest.skip(reason)


def run_compare(*args):
    """`attnmap compare ARGS` with the built binary (ATTNMAP_BIN, else build/attnmap)."""
    binary = os.environ.get("ATTNMAP_BIN") or str(ROOT / "build" / "attnmap")
    assert pathlib.Path(binary).exists(), f"built CLI not found at {binary}; set ATTNMAP_BIN"
    return subprocess.run([binary, "compare", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint and its attnmap export, shared by the CLI tests."""
    from attnmap_tools.testing import hf_reference as ref

    work = tmp_path_factory.mktemp("tiny_model")
    ckpt = ref.make_checkpoint(work / "ckpt", seed=11)
    model_pt = work / "tiny.pt"
    proc = ref.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    return {"checkpoint": pathlib.Path(ckpt), "model": model_pt}


@pytest.fixture(scope="session")
def attnmap_bin():
    path = os.environ.get("ATTNMAP_BIN")
    assert path and os.path.exists(path), "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    return path
