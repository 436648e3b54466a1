"""The model registry: one entry per network family, and the functions every caller builds networks
with.

    build_model("lite", use_ia=False)     a network from a preset name (or a config) and config
                                          overrides
    make_config("unet", base_width=16)    the config alone: the one way to get a config of any
                                          family
    config_from_dict(ckpt["config"])      a checkpoint's config back, of the right family
    resolve_pretrained("auto", "paper")   which backbone weights a preset starts from
                                          ("imagenet" / None)
    count_parameters(model)

A preset name picks its family; the family knows its config class, how to build the network from a
config, and whether it has a ResNet backbone for pretrained weights. The U-Net baseline is one
entry, not a special case in every function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from torch import nn

from ..errors import ConfigError
from .backbone import IMAGENET_URLS, load_pretrained_backbone
from .banet import BANet
from .config import PRESETS, BANetConfig
from .unet import UNet, UNetConfig


@dataclass(frozen=True)
class Family:
    name: str  # in messages: "BA-Net", "U-Net baseline"
    config_class: type
    presets: dict  # preset name -> config
    build: Callable[[object], nn.Module]  # config -> network
    has_backbone: bool  # a DilatedResNet that takes ImageNet / torchvision weights


FAMILIES = (
    Family("BA-Net", BANetConfig, PRESETS, BANet, has_backbone=True),
    Family("U-Net baseline", UNetConfig, {"unet": UNetConfig()}, UNet, has_backbone=False),
)


def family_of(preset: str | object) -> Family:
    """The family of a preset name or a config object."""
    for family in FAMILIES:
        if (isinstance(preset, family.config_class)
                or (isinstance(preset, str) and preset in family.presets)):
            return family
    known = sorted(p for family in FAMILIES for p in family.presets)
    raise ConfigError(f"preset={preset!r}: unknown; choose one of {known}")


def make_config(name: str | object = "paper", **overrides):
    """The config of a preset name (or a config object) with `overrides` applied; unknown options
    fail."""
    family = family_of(name)
    known = [f.name for f in fields(family.config_class) if f.name != "preset"]
    bad = sorted(set(overrides) - set(known))
    if bad:
        preset = name if isinstance(name, str) else name.preset
        raise ConfigError(f"preset {preset!r}: option(s) {bad} do not apply to the {family.name} "
                          f"(it takes {', '.join(known)})"
                          + ("; ablation switches belong to the BA-Net presets"
                             if not family.has_backbone else ""))
    base = family.presets[name] if isinstance(name, str) else name
    return replace(base, **overrides)


def config_from_dict(d: dict):
    """A checkpoint's `config` entry back as a config object of the right family."""
    return family_of(d.get("preset", "paper")).config_class.from_dict(d)


def default_pretrained(name: str | object = "paper", **overrides) -> str | None:
    """The backbone weights a preset starts from by default: "imagenet" where torchvision has
    ImageNet weights for its layout (ResNet-18/34/50/101 at base width 64, RGB input: the `paper`
    preset), else None (`tiny`, `lite` and the `unet` baseline have no ImageNet counterpart and
    train from scratch)."""
    cfg = make_config(name, **overrides)
    if not family_of(cfg).has_backbone:
        return None
    has_imagenet = cfg.base_width == 64 and cfg.depth in IMAGENET_URLS and cfg.in_channels == 3
    return "imagenet" if has_imagenet else None


def resolve_pretrained(pretrained: str | os.PathLike | None, name: str | object = "paper",
                       **overrides) -> str | None:
    """`pretrained` as build_model and fit use it: "auto" -> `default_pretrained(name)`; None, "" or
    "none" -> None; "imagenet", a URL or a file path (str) unchanged. Asking for weights a network
    cannot take is a ConfigError (a ValueError), raised here, before anything is built or
    downloaded."""
    if pretrained is None or str(pretrained).strip().lower() in ("", "none"):
        return None
    if str(pretrained).lower() == "auto":
        return default_pretrained(name, **overrides)
    pretrained = str(pretrained)
    cfg = make_config(name, **overrides)
    family = family_of(cfg)
    if not family.has_backbone:
        raise ConfigError(f"pretrained={pretrained!r}: the {family.name} has no ResNet backbone "
                          "to load weights into; use pretrained=None (or 'auto') with preset "
                          f"{cfg.preset!r}")
    if pretrained.lower() == "imagenet":
        if default_pretrained(cfg) is None:
            raise ConfigError(
                f"pretrained='imagenet': preset {cfg.preset!r} (ResNet-{cfg.depth} layout at base "
                f"width {cfg.base_width}) has no ImageNet weights; they exist for base width 64 "
                "(the 'paper' preset)")
        return "imagenet"
    return pretrained


def build_model(name: str | object = "paper", pretrained: str | os.PathLike | None = None,
                **overrides) -> nn.Module:
    """A network from a preset name ("tiny", "lite", "paper"; "unet" for the baseline) or a config.

    Args:
        name: a preset name, or a config (`make_config`'s) to build as it is.
        pretrained: backbone initialisation: "imagenet" (torchvision's weights, from the torch hub
            cache, downloaded on first use), an http(s)/file URL or a local `.pth` file with
            torchvision key names, "auto" (`default_pretrained(name)`: ImageNet for `paper`), or
            None (random init, the default).
        **overrides: config fields to change (`num_classes=1`, `use_aspp=False`, ...); a field the
            family does not have is a ConfigError.

    Returns:
        a `BANet` or `UNet` in training mode; its forward returns a `SegmentationOutput`.

    Example:
        >>> model = build_model("tiny", num_classes=2)
        >>> out = model(torch.randn(2, 3, 64, 64))  # out.logits: (2, 2, 64, 64)
    """
    cfg = make_config(name, **overrides)
    pretrained = resolve_pretrained(pretrained, cfg)
    model = family_of(cfg).build(cfg)
    if pretrained:
        load_pretrained_backbone(model, pretrained)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
