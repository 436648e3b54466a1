"""The top-down decoder: from the deepest CFF output back to 1/4 resolution.

    d4 = CFF_4                                   (or, with ASPP: Up([CFF_4, ASPP(x4)]) -> R)
    d3 = Up([CFF_3, d4])
    d2 = Up([CFF_2, d3])
    d1 = Up([CFF_1, resize(d2 -> stage 1)])
    logits = Conv1x1_{R->K}( ReLU( BN( Conv3x3_{R->R}(d1) ) ) )

Up is the reference's light fusion block: ReLU -> depthwise 3x3 over the concatenation ->
BN -> 1x1 back to R channels. The model upsamples the logits (1/4) to the input size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import SeparableConv, conv1x1, conv3x3, resize_to


class Decoder(nn.Module):
    def __init__(self, dim: int, num_classes: int, aspp_dim: int = 0):
        super().__init__()
        # (R + D) -> R
        self.top = SeparableConv(dim + aspp_dim, dim, pre_relu=True) if aspp_dim else None
        # 2R -> R
        self.up = nn.ModuleList(SeparableConv(2 * dim, dim, pre_relu=True) for _ in range(3))
        self.head = nn.Sequential(
            conv3x3(dim, dim, bias=True), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
            conv1x1(dim, num_classes, bias=True),
        )

    def forward(self, fused: list[Tensor], aspp: Tensor | None = None,
                steps: list | None = None) -> Tensor:
        """fused: CFF_1..CFF_4 (B, R, h_i, w_i); aspp: (B, D, h_4, w_4) -> logits (B, K, h_1, w_1).

        `steps`, when given a list, receives d4, d3, d2, d1 (each (B, R, h_i, w_i)) for
        the explorer."""
        d = fused[3]  # d4
        if self.top is not None:
            d = self.top(torch.cat([d, resize_to(aspp, d)], dim=1))
        if steps is not None:
            steps.append(d)
        for i in (2, 1, 0):  # d3, d2, d1
            skip = fused[i]
            # (B, 2R, .) -> (B, R, .)
            d = self.up[2 - i](torch.cat([skip, resize_to(d, skip)], dim=1))
            if steps is not None:
                steps.append(d)
        return self.head(d)
