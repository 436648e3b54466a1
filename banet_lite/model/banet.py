"""BA-Net, assembled: encoder -> per stage (reduce, PEE, mini-MTL with IA) -> CFF -> decoder.

    x (B, 3, H, W)
      -> DilatedResNet                      x_1..x_4   (B, C_i, h_i, w_i)
      -> reduce_i: 1x1 conv C_i -> R         F'_i       (B, R, h_i, w_i)
      -> PEE_i                               P_i        (B, R, h_i, w_i)
      -> MiniMTL_i (branches e, s; IA)       S_i, side mask_i, side edge_i
      -> CFF_i over S_1..S_4                 C_i        (B, R, h_i, w_i)
      -> Decoder(C_1..C_4, ASPP(x_4))        logits     (B, K, H/4, W/4)
      -> bilinear upsample                   logits     (B, K, H, W)

Every side output is upsampled to the input size too, for deep supervision. Inputs of any size
work: the decoder resizes whenever two stages disagree, and the outputs are resized to (H, W).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from torch import Tensor, nn

from ..errors import ConfigError
from .aspp import ASPP
from .backbone import IMAGENET_URLS, DilatedResNet, load_pretrained_backbone
from .cff import CrossFeatureFusion, resize_for_fusion
from .config import PRESETS, BANetConfig, get_config
from .decoder import Decoder
from .layers import conv1x1, resize_to
from .mtl import MiniMTL
from .output import SegmentationOutput
from .pee import PyramidEdgeExtraction
from .unet import UNet, UNetConfig


class BANet(nn.Module):
    def __init__(self, config: BANetConfig):
        super().__init__()
        cfg = self.config = config
        R, K = cfg.reduce_dim, cfg.num_classes
        self.backbone = DilatedResNet(cfg.depth, cfg.base_width, cfg.output_stride, cfg.in_channels)
        self.reduce = nn.ModuleList(conv1x1(c, R) for c in self.backbone.channels)  # C_i -> R
        self.pee = nn.ModuleList(
            PyramidEdgeExtraction(R, k, enabled=cfg.use_pee, border_rule=cfg.border_rule) for k in cfg.pee_kernels
        )
        self.mtl = nn.ModuleList(
            MiniMTL(R, K, cfg.use_ia, cfg.ia_attention_blocks, side_heads=cfg.deep_supervision) for _ in range(4)
        )
        self.cff = (nn.ModuleList(CrossFeatureFusion(R, i, gate_convs=cfg.cff_gate_convs) for i in range(4))
                    if cfg.use_cff else None)
        self.aspp = ASPP(self.backbone.channels[3], cfg.aspp_dim, cfg.aspp_rates) if cfg.use_aspp else None
        self.decoder = Decoder(R, K, cfg.aspp_dim if cfg.use_aspp else 0)

    def forward(self, x: Tensor, return_maps: bool = False) -> SegmentationOutput:
        size = x.shape[-2:]  # (H, W)
        feats = self.backbone(x)  # 4 x (B, C_i, h_i, w_i)
        maps: dict[str, list[Tensor]] = {"stages": feats} if return_maps else {}
        seg_feats, side_masks, side_edges = [], [], []
        for i, f in enumerate(feats):
            f = self.reduce[i](f)  # F'_i (B, R, h_i, w_i)
            if return_maps:
                maps.setdefault("reduced", []).append(f)
            f, edges = self.pee[i](f)  # P_i (B, R, h_i, w_i), edges (B, 2R, h_i, w_i)
            stage = self.mtl[i](f)
            seg_feats.append(stage["seg_features"])  # S_i
            if "side_mask" in stage:  # K-channel maps: resized in the plain layout, which suits few channels
                side_masks.append(resize_to(stage["side_mask"].contiguous(), size))  # (B, K, H, W)
                side_edges.append(resize_to(stage["side_edge"].contiguous(), size))
            if return_maps:
                if edges is not None:
                    maps.setdefault("pee_edge", []).append(edges)
                for name in ("edge_branch", "seg_branch", "ia_seg_to_edge", "ia_edge_to_seg", "ia_borrowed_by_seg",
                             "ia_borrowed_by_edge", "seg_features", "edge_features"):
                    if name in stage:
                        maps.setdefault(name, []).append(stage[name])

        fused = seg_feats
        if self.cff is not None:
            resized = resize_for_fusion(seg_feats)  # [i][j]: S_j at stage i's size, each resized once
            details = [{} if return_maps else None for _ in self.cff]  # what each CFF sends and adds
            fused, gates = zip(*(cff(seg_feats, resized[i], details[i]) for i, cff in enumerate(self.cff)))
            if return_maps:
                maps["cff_gate"] = list(gates)
                maps["cff_sent"] = [d["sent"] for d in details]  # (B, 3, R, h_i, w_i): from the other stages
                maps["cff_added"] = [d["added"] for d in details]

        aspp = self.aspp(feats[3]) if self.aspp is not None else None  # (B, D, h_4, w_4)
        steps = maps.setdefault("decoder_steps", []) if return_maps else None  # d4, d3, d2, d1
        logits = resize_to(self.decoder(list(fused), aspp, steps).contiguous(), size)  # (B, K, H, W)
        return SegmentationOutput(
            logits, tuple(side_masks), tuple(side_edges),
            {k: tuple(v) for k, v in maps.items()} if return_maps else None,
        )


# ---------------------------------------------------------------------------------------------------------
# The registry: one entry per network family. A preset name picks its family; the family knows its
# config class, how to build the network from a config, and whether it has a ResNet backbone for
# pretrained weights. The U-Net baseline is one entry, not a special case in every function.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str  # in messages: "BA-Net", "U-Net baseline"
    config_class: type
    presets: dict  # preset name -> config
    build: Callable[[object], nn.Module]  # config -> network
    has_backbone: bool  # a DilatedResNet that takes ImageNet / torchvision weights


FAMILIES = (
    Family("BA-Net", BANetConfig, PRESETS, BANet, has_backbone=True),
    Family("U-Net baseline", UNetConfig, {"unet": UNetConfig()}, UNet.from_config, has_backbone=False),
)


def family_of(preset: str | object) -> Family:
    """The family of a preset name or a config object."""
    for family in FAMILIES:
        if isinstance(preset, family.config_class) or (isinstance(preset, str) and preset in family.presets):
            return family
    known = sorted(p for family in FAMILIES for p in family.presets)
    raise ConfigError(f"preset={preset!r}: unknown; choose one of {known}")


def make_config(name: str | object = "paper", **overrides):
    """The config of a preset name (or a config object) with `overrides` applied; unknown options fail."""
    family = family_of(name)
    if family.config_class is BANetConfig and isinstance(name, str):
        return get_config(name, **overrides)
    known = [f.name for f in fields(family.config_class) if f.name != "preset"]
    bad = sorted(set(overrides) - set(known))
    if bad:
        preset = name if isinstance(name, str) else name.preset
        raise ConfigError(f"preset {preset!r}: option(s) {bad} do not apply to the {family.name} (it takes "
                          f"{', '.join(known)})" + ("; ablation switches belong to the BA-Net presets"
                                                   if not family.has_backbone else ""))
    base = family.presets[name] if isinstance(name, str) else name
    return replace(base, **overrides)


def config_from_dict(d: dict):
    """A checkpoint's `config` entry back as a config object of the right family."""
    return family_of(d.get("preset", "paper")).config_class.from_dict(d)


def default_pretrained(name: str | object = "paper", **overrides) -> str | None:
    """The backbone weights a preset starts from by default: "imagenet" where torchvision has ImageNet
    weights for its layout (ResNet-18/34/50/101 at base width 64, RGB input: the `paper` preset), else
    None (`tiny`, `lite` and the `unet` baseline have no ImageNet counterpart and train from scratch)."""
    cfg = make_config(name, **overrides)
    if not family_of(cfg).has_backbone:
        return None
    has_imagenet = cfg.base_width == 64 and cfg.depth in IMAGENET_URLS and cfg.in_channels == 3
    return "imagenet" if has_imagenet else None


def resolve_pretrained(pretrained: str | os.PathLike | None, name: str | object = "paper",
                       **overrides) -> str | None:
    """`pretrained` as build_model and fit use it: "auto" -> `default_pretrained(name)`; None, "" or
    "none" -> None; "imagenet", a URL or a file path (str) unchanged. Asking for weights a network
    cannot take is a ConfigError (a ValueError), raised here, before anything is built or downloaded."""
    if pretrained is None or str(pretrained).strip().lower() in ("", "none"):
        return None
    if str(pretrained).lower() == "auto":
        return default_pretrained(name, **overrides)
    pretrained = str(pretrained)
    cfg = make_config(name, **overrides)
    family = family_of(cfg)
    if not family.has_backbone:
        raise ConfigError(f"pretrained={pretrained!r}: the {family.name} has no ResNet backbone to load "
                          f"weights into; use pretrained=None (or 'auto') with preset {cfg.preset!r}")
    if pretrained.lower() == "imagenet":
        if default_pretrained(cfg) is None:
            raise ConfigError(
                f"pretrained='imagenet': preset {cfg.preset!r} (ResNet-{cfg.depth} layout at base width "
                f"{cfg.base_width}) has no ImageNet weights; they exist for base width 64 (the 'paper' preset)")
        return "imagenet"
    return pretrained


def build_model(name: str | object = "paper", pretrained: str | os.PathLike | None = None,
                **overrides) -> nn.Module:
    """A network from a preset name ("tiny", "lite", "paper"; "unet" for the baseline) or a config.

    Keyword overrides change config fields, e.g. build_model("paper", num_classes=1, use_aspp=False).
    `pretrained` initialises the backbone: "imagenet" (torchvision's weights, from the torch hub cache,
    downloaded on first use), an http(s)/file URL or a local `.pth` file with torchvision key names,
    "auto" (`default_pretrained(name)`: ImageNet for `paper`), or None (random init, the default).
    """
    cfg = make_config(name, **overrides)
    pretrained = resolve_pretrained(pretrained, cfg)
    model = family_of(cfg).build(cfg)
    if pretrained:
        load_pretrained_backbone(model, pretrained)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
