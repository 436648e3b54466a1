"""CFF: cross feature fusion.

Each stage i takes what it lacks from every other stage j, through two gates:

    out_i = S_i + (1 - sigmoid(W_i * S_i)) * sum_{j != i} sigmoid(W_j * S_j') * S_j'

S_j' is stage j's segmentation feature resized (bilinear) to stage i's size; every W is a
3x3 conv R -> R without bias, so one CFF module holds four of them. sigmoid(W_j S_j') selects
the useful part of stage j ("what is worth sending"); 1 - sigmoid(W_i S_i) opens where stage
i itself is weak ("what is worth receiving"). That second gate is what the map explorer shows
as the CFF gate.

With `use_cff=False` the model skips CFF: out_i = S_i.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import conv3x3, resize_to


class CrossFeatureFusion(nn.Module):
    def __init__(self, dim: int, stage: int, n_stages: int = 4):
        super().__init__()
        self.stage = stage  # i, counted from 0
        self.convs = nn.ModuleList(conv3x3(dim, dim) for _ in range(n_stages))  # W_1 .. W_4

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        """feats: S_1..S_4, each (B, R, h_j, w_j) -> out_i and its gate, both (B, R, h_i, w_i)."""
        i, s_i = self.stage, feats[self.stage]
        received = 0
        for j, s_j in enumerate(feats):
            if j == i:
                continue
            s_j = resize_to(s_j, s_i)  # S_j' (B, R, h_i, w_i)
            received = received + torch.sigmoid(self.convs[j](s_j)) * s_j  # sigmoid(W_j S_j') * S_j'
        gate = 1 - torch.sigmoid(self.convs[i](s_i))  # 1 - sigmoid(W_i S_i)
        return s_i + gate * received, gate
