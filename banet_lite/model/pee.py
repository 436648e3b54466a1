"""PEE: pyramid edge extraction.

A boundary is where a feature differs from its neighbourhood. Subtracting a local average
keeps exactly that difference (a high-pass filter); two window sizes give edges at two
granularities (a thin contour and a wider band):

    E_k   = F' - AvgPool_k(F')                      for k in (k_a, k_b)
    F_pee = Conv1x1( BN( DW3x3( ReLU( Conv1x1( [F', E_a, E_b] ) ) ) ) )

F' is the stage feature reduced to R channels. The average pooling has stride 1 and "same"
padding. Near the image frame the window sticks out; the border rule decides what the outside is:
  "exclude_padding" (count_include_pad=False; lite, tiny): the average runs over the pixels that
      exist, so a constant map has exactly zero edge response, also along the frame;
  "zero_padding" (count_include_pad=True; the paper preset, as the reference code): the outside
      counts as zeros, the average drops near the frame, and every map gets a frame "edge".
Stages 1-2 use (5, 7) windows, stages 3-4 (3, 5), as in the reference code (the paper gives no
reason for the choice).

The reference feeds concat(F', avg_a F', avg_b F') to the same convs; the first (learnt, linear)
1x1 conv can form the differences, so both forms have the same parameters. We use the paper's
form, so the edge maps E_k can be looked at directly.

With `enabled=False` (the `use_pee=False` ablation) the same fusion stack sees F' alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BORDER_RULES
from .layers import SeparableConv, conv1x1


def local_average(f: Tensor, k: int, border_rule: str = "exclude_padding") -> Tensor:
    """AvgPool_k(F): stride 1, "same" padding, the border rule's treatment of the padding;
    (B, C, h, w)."""
    return F.avg_pool2d(f, k, stride=1, padding=k // 2, count_include_pad=BORDER_RULES[border_rule])


def pyramid_edges(f: Tensor, kernels: tuple[int, ...],
                  border_rule: str = "exclude_padding") -> list[Tensor]:
    """E_k = F - AvgPool_k(F) for each window size k; each (B, R, h, w)."""
    return [f - local_average(f, k, border_rule) for k in kernels]


class PyramidEdgeExtraction(nn.Module):
    def __init__(self, dim: int, kernels: tuple[int, int] = (5, 7), enabled: bool = True,
                 border_rule: str = "exclude_padding"):
        super().__init__()
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"PEE kernels must be odd for 'same' padding, got {kernels}")
        if border_rule not in BORDER_RULES:
            raise ValueError(f"PEE border_rule={border_rule!r}: choose one "
                             f"of {sorted(BORDER_RULES)}")
        self.kernels, self.enabled, self.border_rule = tuple(kernels), enabled, border_rule
        n_inputs = 1 + len(self.kernels) if enabled else 1
        self.squeeze = conv1x1(n_inputs * dim, dim)  # [F', E_a, E_b] (3R) -> R
        self.fuse = SeparableConv(dim, dim, pre_relu=True)  # ReLU, DW3x3, BN, 1x1

    def forward(self, f: Tensor) -> tuple[Tensor, Tensor | None]:
        """f: (B, R, h, w) -> fused (B, R, h, w) and the edge maps (B, 2R, h, w)
        (None if disabled)."""
        if not self.enabled:
            return self.fuse(self.squeeze(f)), None
        # (B, 2R, h, w): [E_a, E_b]
        edges = torch.cat(pyramid_edges(f, self.kernels, self.border_rule), dim=1)
        fused = self.fuse(self.squeeze(torch.cat([f, edges], dim=1)))  # (B, R, h, w)
        return fused, edges
