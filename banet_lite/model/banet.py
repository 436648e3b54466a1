"""BA-Net, assembled: encoder -> per stage (reduce, PEE, mini-MTL with IA) -> CFF -> decoder.

    x (B, 3, H, W)
      -> DilatedResNet                      x_1..x_4   (B, C_i, h_i, w_i)
      -> reduce_i: 1x1 conv C_i -> R         F'_i       (B, R, h_i, w_i)
      -> PEE_i                               P_i        (B, R, h_i, w_i)
      -> MiniMTL_i (branches e, s; IA)       S_i, side mask_i, side boundary_i
      -> CFF_i over S_1..S_4                 C_i        (B, R, h_i, w_i)
      -> Decoder(C_1..C_4, ASPP(x_4))        logits     (B, K, H/4, W/4)
      -> bilinear upsample                   logits     (B, K, H, W)

Every side output is upsampled to the input size too, for deep supervision. Inputs of any size
work: the decoder resizes whenever two stages disagree, and the outputs are resized to (H, W).
"""

from __future__ import annotations

from torch import Tensor, nn

from .aspp import ASPP
from .backbone import DilatedResNet
from .cff import CrossFeatureFusion, resize_for_fusion
from .config import BANetConfig
from .decoder import Decoder
from .layers import conv1x1, resize_to
from .mtl import MiniMTL
from .output import SegmentationOutput
from .pee import PyramidEdgeExtraction


class BANet(nn.Module):
    def __init__(self, config: BANetConfig):
        super().__init__()
        cfg = self.config = config
        R, K = cfg.reduce_dim, cfg.num_classes
        self.backbone = DilatedResNet(cfg.depth, cfg.base_width, cfg.output_stride, cfg.in_channels)
        self.reduce = nn.ModuleList(conv1x1(c, R) for c in self.backbone.channels)  # C_i -> R
        self.pee = nn.ModuleList(
            PyramidEdgeExtraction(R, k, enabled=cfg.use_pee, border_rule=cfg.border_rule)
            for k in cfg.pee_kernels
        )
        self.mtl = nn.ModuleList(
            MiniMTL(R, K, cfg.use_ia, cfg.ia_attention_blocks, side_heads=cfg.deep_supervision)
            for _ in range(4)
        )
        self.cff = (nn.ModuleList(CrossFeatureFusion(R, i, gate_convs=cfg.cff_gate_convs)
                                  for i in range(4))
                    if cfg.use_cff else None)
        self.aspp = (ASPP(self.backbone.channels[3], cfg.aspp_dim, cfg.aspp_rates) if cfg.use_aspp
                     else None)
        self.decoder = Decoder(R, K, cfg.aspp_dim if cfg.use_aspp else 0)

    def forward(self, x: Tensor, return_maps: bool = False) -> SegmentationOutput:
        size = x.shape[-2:]  # (H, W)
        feats = self.backbone(x)  # 4 x (B, C_i, h_i, w_i)
        maps: dict[str, list[Tensor]] = {"stages": feats} if return_maps else {}
        seg_feats, side_masks, side_boundaries = [], [], []
        for i, f in enumerate(feats):
            f = self.reduce[i](f)  # F'_i (B, R, h_i, w_i)
            if return_maps:
                maps.setdefault("reduced", []).append(f)
            f, edges = self.pee[i](f)  # P_i (B, R, h_i, w_i), edges (B, 2R, h_i, w_i)
            stage = self.mtl[i](f)
            seg_feats.append(stage["seg_features"])  # S_i
            # K-channel maps: resized in the plain layout, which suits few channels
            if "side_mask" in stage:
                side_masks.append(resize_to(stage["side_mask"].contiguous(), size))  # (B, K, H, W)
                side_boundaries.append(resize_to(stage["side_boundary"].contiguous(), size))
            if return_maps:
                if edges is not None:
                    maps.setdefault("pee_edge", []).append(edges)
                for name in ("boundary_branch", "seg_branch", "ia_seg_to_boundary",
                             "ia_boundary_to_seg", "ia_borrowed_by_seg", "ia_borrowed_by_boundary",
                             "seg_features", "boundary_features"):
                    if name in stage:
                        maps.setdefault(name, []).append(stage[name])

        fused = seg_feats
        if self.cff is not None:
            # [i][j]: S_j at stage i's size, each resized once
            resized = resize_for_fusion(seg_feats)
            # what each CFF sends and adds
            details = [{} if return_maps else None for _ in self.cff]
            fused, gates = zip(*(cff(seg_feats, resized[i], details[i])
                                 for i, cff in enumerate(self.cff)))
            if return_maps:
                maps["cff_gate"] = list(gates)
                # (B, 3, R, h_i, w_i): from the other stages
                maps["cff_sent"] = [d["sent"] for d in details]
                maps["cff_added"] = [d["added"] for d in details]

        aspp = self.aspp(feats[3]) if self.aspp is not None else None  # (B, D, h_4, w_4)
        steps = maps.setdefault("decoder_steps", []) if return_maps else None  # d4, d3, d2, d1
        # (B, K, H, W)
        logits = resize_to(self.decoder(list(fused), aspp, steps).contiguous(), size)
        return SegmentationOutput(
            logits, tuple(side_masks), tuple(side_boundaries),
            {k: tuple(v) for k, v in maps.items()} if return_maps else None,
        )
