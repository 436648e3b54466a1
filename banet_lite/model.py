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
from dataclasses import dataclass, replace

from torch import Tensor, nn

from .aspp import ASPP
from .backbone import IMAGENET_URLS, DilatedResNet, load_pretrained_backbone
from .cff import CrossFeatureFusion, resize_for_fusion
from .config import BANetConfig, get_config
from .decoder import Decoder
from .layers import conv1x1, resize_to
from .mtl import MiniMTL
from .pee import PyramidEdgeExtraction


@dataclass
class SegmentationOutput:
    logits: Tensor  # (B, K, H, W)
    side_masks: tuple[Tensor, ...] = ()  # 4 x (B, K, H, W), or () without deep supervision
    side_edges: tuple[Tensor, ...] = ()  # 4 x (B, K, H, W)
    maps: dict[str, tuple[Tensor, ...]] | None = None  # name -> 4 per-stage maps, with return_maps=True


class BANet(nn.Module):
    def __init__(self, config: BANetConfig):
        super().__init__()
        cfg = self.config = config
        R, K = cfg.reduce_dim, cfg.num_classes
        self.backbone = DilatedResNet(cfg.depth, cfg.base_width, cfg.output_stride, cfg.in_channels)
        self.reduce = nn.ModuleList(conv1x1(c, R) for c in self.backbone.channels)  # C_i -> R
        self.pee = nn.ModuleList(PyramidEdgeExtraction(R, k, enabled=cfg.use_pee) for k in cfg.pee_kernels)
        self.mtl = nn.ModuleList(
            MiniMTL(R, K, cfg.use_ia, cfg.ia_attention_blocks, side_heads=cfg.deep_supervision) for _ in range(4)
        )
        self.cff = nn.ModuleList(CrossFeatureFusion(R, i) for i in range(4)) if cfg.use_cff else None
        self.aspp = ASPP(self.backbone.channels[3], cfg.aspp_dim, cfg.aspp_rates) if cfg.use_aspp else None
        self.decoder = Decoder(R, K, cfg.aspp_dim if cfg.use_aspp else 0)

    def forward(self, x: Tensor, return_maps: bool = False) -> SegmentationOutput:
        size = x.shape[-2:]  # (H, W)
        feats = self.backbone(x)  # 4 x (B, C_i, h_i, w_i)
        maps: dict[str, list[Tensor]] = {}
        seg_feats, side_masks, side_edges = [], [], []
        for i, f in enumerate(feats):
            f = self.reduce[i](f)  # F'_i (B, R, h_i, w_i)
            f, edges = self.pee[i](f)  # P_i (B, R, h_i, w_i), edges (B, 2R, h_i, w_i)
            stage = self.mtl[i](f)
            seg_feats.append(stage["seg_features"])  # S_i
            if "side_mask" in stage:  # K-channel maps: resized in the plain layout, which suits few channels
                side_masks.append(resize_to(stage["side_mask"].contiguous(), size))  # (B, K, H, W)
                side_edges.append(resize_to(stage["side_edge"].contiguous(), size))
            if return_maps:
                if edges is not None:
                    maps.setdefault("pee_edge", []).append(edges)
                for name in ("ia_seg_to_edge", "ia_edge_to_seg"):
                    if name in stage:
                        maps.setdefault(name, []).append(stage[name])

        fused = seg_feats
        if self.cff is not None:
            resized = resize_for_fusion(seg_feats)  # [i][j]: S_j at stage i's size, each resized once
            fused, gates = zip(*(cff(seg_feats, resized[i]) for i, cff in enumerate(self.cff)))  # C_i, gate_i
            if return_maps:
                maps["cff_gate"] = list(gates)

        aspp = self.aspp(feats[3]) if self.aspp is not None else None  # (B, D, h_4, w_4)
        logits = resize_to(self.decoder(list(fused), aspp).contiguous(), size)  # (B, K, H, W)
        return SegmentationOutput(
            logits, tuple(side_masks), tuple(side_edges),
            {k: tuple(v) for k, v in maps.items()} if return_maps else None,
        )


UNET_OPTIONS = ("num_classes", "base_width", "in_channels", "depth")  # what UNet(...) takes


def check_unet_options(options: dict) -> None:
    """A ValueError naming any option the U-Net baseline does not take (e.g. an ablation switch)."""
    bad = sorted(set(options) - set(UNET_OPTIONS))
    if bad:
        raise ValueError(f"preset 'unet': option(s) {bad} do not apply to the U-Net baseline (it takes "
                         f"{', '.join(UNET_OPTIONS)}); ablation switches belong to the BA-Net presets")


def default_pretrained(name: str | BANetConfig = "paper", **overrides) -> str | None:
    """The backbone weights a preset starts from by default: "imagenet" where torchvision has ImageNet
    weights for its layout (ResNet-18/34/50/101 at base width 64, RGB input: the `paper` preset), else
    None (`tiny`, `lite` and the `unet` baseline have no ImageNet counterpart and train from scratch)."""
    if name == "unet":
        return None
    cfg = replace(name, **overrides) if isinstance(name, BANetConfig) else get_config(name, **overrides)
    has_imagenet = cfg.base_width == 64 and cfg.depth in IMAGENET_URLS and cfg.in_channels == 3
    return "imagenet" if has_imagenet else None


def resolve_pretrained(pretrained: str | os.PathLike | None, name: str | BANetConfig = "paper",
                       **overrides) -> str | None:
    """`pretrained` as build_model and fit use it: "auto" -> `default_pretrained(name)`; None, "" or
    "none" -> None; "imagenet", a URL or a file path (str) unchanged. Asking for weights a network
    cannot take is a ValueError, raised here, before anything is built or downloaded."""
    if pretrained is None or str(pretrained).strip().lower() in ("", "none"):
        return None
    if str(pretrained).lower() == "auto":
        return default_pretrained(name, **overrides)
    pretrained = str(pretrained)
    if name == "unet":
        raise ValueError(f"pretrained={pretrained!r}: the U-Net baseline has no ResNet backbone to load "
                         f"weights into; use pretrained=None (or 'auto') with preset 'unet'")
    if pretrained.lower() == "imagenet":
        if default_pretrained(name, **overrides) is None:
            cfg = name if isinstance(name, BANetConfig) else get_config(name, **overrides)
            raise ValueError(
                f"pretrained='imagenet': preset {cfg.preset!r} (ResNet-{cfg.depth} layout at base width "
                f"{cfg.base_width}) has no ImageNet weights; they exist for base width 64 (the 'paper' preset)")
        return "imagenet"
    return pretrained


def build_model(name: str | BANetConfig = "paper", pretrained: str | os.PathLike | None = None,
                **overrides) -> nn.Module:
    """A BA-Net from a preset name ("tiny", "lite", "paper") or a config; "unet" for the baseline.

    Keyword overrides change config fields, e.g. build_model("paper", num_classes=1, use_aspp=False).
    `pretrained` initialises the backbone: "imagenet" (torchvision's weights, from the torch hub cache,
    downloaded on first use), an http(s)/file URL or a local `.pth` file with torchvision key names,
    "auto" (`default_pretrained(name)`: ImageNet for `paper`), or None (random init, the default).
    """
    pretrained = resolve_pretrained(pretrained, name, **overrides)
    if name == "unet":
        from .unet import UNet

        check_unet_options(overrides)
        return UNet(**overrides)
    model = BANet(replace(name, **overrides) if isinstance(name, BANetConfig) else get_config(name, **overrides))
    if pretrained:
        load_pretrained_backbone(model, pretrained)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
