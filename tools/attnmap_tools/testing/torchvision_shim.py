"""Imports torchvision beside the CPU torch of tools/requirements.txt.

transformers' video processors (Qwen2VLVideoProcessor, the oracle of the video tests) import
torchvision. torchvision 0.28's C++ extension does not load against this torch build, and without it
`import torchvision` fails while registering fake kernels for `torchvision::nms`/`qnms`, operators it
expects the extension to have defined. Defining those two schemas first (no kernels: the tests never
run NMS) lets the Python side import. Where the real extension loads, it defines them and the shim
does nothing.
"""
import glob
import importlib.util
import os
import sys

import torch

# Kept alive for the process: dropping the Library object would deregister the schemas.
_LIBRARY = None
_CHECKED = False


def _has_nms():
    try:
        torch.ops.torchvision.nms.default  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


def _load_real_extension():
    """Loads torchvision's own _C library without importing the package; False when it cannot."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for location in spec.submodule_search_locations:
        for library in glob.glob(os.path.join(location, "_C*.so")):
            try:
                torch.ops.load_library(library)
                return True
            except (OSError, RuntimeError):
                return False
    return False


def import_torchvision():
    """Returns the torchvision module (ImportError when it is not installed); idempotent."""
    global _LIBRARY, _CHECKED
    if importlib.util.find_spec("torchvision") is None:
        raise ImportError("No module named 'torchvision'")
    if not _CHECKED:
        _CHECKED = True
        if not _has_nms() and not _load_real_extension() and not _has_nms():
            _LIBRARY = torch.library.Library("torchvision", "DEF")
            _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torchvision

    return torchvision
