"""banet-lite: BA-Net (boundary-aware context network for medical image segmentation), from scratch.

    import banet_lite as bl
    model = bl.build_model("lite", num_classes=2)
    out = model(x)                          # out.logits, out.side_masks, out.side_edges
    total, parts = bl.JointLoss()(out, mask)
"""

import importlib

from .aspp import ASPP
from .backbone import DilatedResNet, load_pretrained_backbone
from .cff import CrossFeatureFusion
from .config import PRESETS, BANetConfig, get_config
from .course import course_model
from .decoder import Decoder
from .losses import JointLoss, edge_target
from .model import BANet, SegmentationOutput, build_model, count_parameters
from .mtl import InteractiveAttention, MiniMTL
from .pee import PyramidEdgeExtraction
from .unet import UNet
from .utils import default_device, seed_everything

__version__ = "0.1.0"

# The pipeline modules load on first use, so that `bl.data`, `bl.train`, ... work after `import banet_lite as bl`
# while `import banet_lite; bl.build_model(...)` stays free of matplotlib, seaborn and pandas (viz needs them).
_LAZY = ("checkpoint", "data", "diagram", "evaluate", "exercises", "metrics", "output", "train", "viz")


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module  # found directly from now on
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "data", "evaluate", "metrics", "train", "viz",
    "ASPP", "BANet", "BANetConfig", "CrossFeatureFusion", "Decoder", "DilatedResNet", "InteractiveAttention",
    "JointLoss", "MiniMTL", "PRESETS", "PyramidEdgeExtraction", "SegmentationOutput", "UNet",
    "build_model", "count_parameters", "course_model", "default_device", "edge_target", "get_config",
    "load_pretrained_backbone", "seed_everything",
]
