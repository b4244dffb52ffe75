"""Import torchvision beside the CPU torch wheel, for transformers' video processor (the oracle).

torchvision is not installed into the venv proper: once transformers can see it, importing any
Qwen2.5-VL model class imports it too, and image processors switch to their torchvision backend,
which is not Pillow-exact. scripts/bootstrap.sh puts it in a folder of its own (.venv/video-oracle,
tools/requirements-video-oracle.txt) that only the video oracle tests add to sys.path, through
import_torchvision(), before they import transformers.

The registry's torchvision for torch 2.13 is a CUDA build: its C++ extension (_C.so) does not load
beside the CPU torch, and then its import fails registering fake kernels for `torchvision::nms` and
`torchvision::qnms`, ops the missing extension would have defined. Defining those two schemas first
lets the import finish; the Python transforms the video processor uses (resize, normalize) are plain
torch code and work. Nothing here calls the ops. Where the extension does load, this is a no-op.
"""
import importlib.util

import torch

_LIBRARY = None  # kept alive: dropping the Library object would unregister the schemas


def oracle_path() -> str:
    """Where bootstrap installs torchvision: $ATTNMAP_VIDEO_ORACLE, else <venv>/video-oracle."""
    import os
    import sys
    return os.environ.get("ATTNMAP_VIDEO_ORACLE") or os.path.join(sys.prefix, "video-oracle")


def import_torchvision():
    """Imports and returns torchvision (idempotent). Call it before the first transformers import:
    transformers decides once, at import, whether torchvision exists."""
    global _LIBRARY
    import sys
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    if "transformers" in sys.modules and importlib.util.find_spec("torchvision") is None:
        raise RuntimeError("import_torchvision() must run before transformers is imported")
    path = oracle_path()
    if path not in sys.path:
        sys.path.insert(0, path)
    if importlib.util.find_spec("torchvision") is None:
        raise ImportError(f"torchvision is not in {path}: run scripts/bootstrap.sh "
                          "(tools/requirements-video-oracle.txt)")
    if _LIBRARY is None and not _extension_loads():
        _LIBRARY = torch.library.Library("torchvision", "DEF")
        _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision
    return torchvision


def _extension_loads() -> bool:
    """Whether torchvision's own _C extension loads here (then it defines the ops itself)."""
    import glob
    import os
    spec = importlib.util.find_spec("torchvision")
    folder = os.path.dirname(spec.origin)
    for path in glob.glob(os.path.join(folder, "_C*.so")):
        try:
            torch.ops.load_library(path)
            return True
        except (OSError, RuntimeError):
            return False
    return False
