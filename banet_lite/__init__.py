"""banet-lite: BA-Net (boundary-aware context network for medical image segmentation), from scratch.

    import banet_lite as bl
    model = bl.build_model("lite", num_classes=2)
    out = model(x)                          # out.logits, out.side_masks, out.side_boundaries
    total, parts = bl.JointLoss()(out, mask)
"""

import importlib

__version__ = "0.2.0"

# Every public name loads on first use: `import banet_lite` itself imports nothing heavy, so that
# `python -m banet_lite --help` answers at once (torch is imported when a command runs, not before).
_PUBLIC_NAMES = {
    "ASPP": "model.aspp", "DilatedResNet": "model.backbone",
    "load_pretrained_backbone": "model.backbone", "BANet": "model.banet",
    "SegmentationOutput": "model.output",
    **dict.fromkeys(("build_model", "make_config", "count_parameters"), "model.registry"),
    "CrossFeatureFusion": "model.cff",
    **dict.fromkeys(("PRESETS", "BANetConfig"), "model.config"),
    "Decoder": "model.decoder", "JointLoss": "model.losses", "boundary_target": "model.losses",
    "InteractiveAttention": "model.mtl", "MiniMTL": "model.mtl",
    "PyramidEdgeExtraction": "model.pee", "UNet": "model.unet", "course_model": "teaching.course",
    "expect": "teaching.expect", "default_device": "utils", "seed_everything": "utils",
}

# The package has four rooms: model/ (the network and its loss), training/ (fit and what it needs),
# teaching/ (explorers, plots, the diagram, exercises, the course model) and data/; metrics and
# evaluate sit at the top. The modules below load on first use under their short public names, so
# that `bl.data`, `bl.train`, `bl.pee` ... work after `import banet_lite as bl`, while
# `import banet_lite; bl.build_model(...)` stays free of matplotlib, seaborn, pandas and ipywidgets
# (the teaching room needs them).
_PUBLIC_MODULES = {
    "data": "data", "evaluate": "evaluate", "metrics": "metrics", "stats": "stats",
    **{name: f"model.{name}" for name in ("aspp", "backbone", "cff", "config", "decoder", "layers",
                                          "losses", "mtl", "output", "pee", "unet")},
    "train": "training.train", "checkpoint": "training.checkpoint",
    **{name: f"teaching.{name}" for name in ("claims", "course", "diagram", "exercises", "results",
                                             "viz")},
}


def __getattr__(name: str):
    if name in _PUBLIC_MODULES:
        module = importlib.import_module(f".{_PUBLIC_MODULES[name]}", __name__)
        globals()[name] = module  # found directly from now on
        return module
    if name in _PUBLIC_NAMES:
        value = getattr(importlib.import_module(f".{_PUBLIC_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC_MODULES) | set(_PUBLIC_NAMES))


__all__ = [
    "claims", "data", "evaluate", "metrics", "results", "stats", "train", "viz",
    "ASPP", "BANet", "BANetConfig", "CrossFeatureFusion", "Decoder", "DilatedResNet",
    "InteractiveAttention", "JointLoss", "MiniMTL", "PRESETS", "PyramidEdgeExtraction",
    "SegmentationOutput", "UNet", "build_model", "count_parameters", "course_model",
    "default_device", "boundary_target", "expect", "load_pretrained_backbone", "make_config",
    "seed_everything",
]
