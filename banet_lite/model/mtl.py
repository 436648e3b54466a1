"""Mini-MTL with IA: two task branches that attend to each other.

From the PEE features each stage grows two light branches, one for the boundary (e) and one
for the segmentation (s); each is a depthwise-separable conv (DW3x3 -> BN -> 1x1).

IA (interactive attention) lets each task borrow from the other where it is unsure. With the
reference's attention blocks A_e, A_s (each another DW3x3 -> BN -> 1x1):

    E = e + (1 - sigmoid(A_e(e))) * s    # where the boundary branch is unsure, add seg cues
    S = s + (1 - sigmoid(A_s(s))) * e    # where the seg branch is unsure, add boundary cues

The paper writes the same with A = identity (no parameters): E = e + (1 - sigmoid(e)) * s;
`attention_blocks=False` gives that form. The gates 1 - sigmoid(.) lie in [0, 1].

Side heads (3x3 conv R -> K, with bias) on E and S give a boundary and a segmentation
prediction per stage for deep supervision; `side_heads=False` drops them, and with them E,
which nothing else reads (IA then computes S alone, so no parameter sits idle).
With `use_ia=False` the branches stay independent: E = e, S = s.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import SeparableConv, conv3x3


class InteractiveAttention(nn.Module):
    def __init__(self, dim: int, attention_blocks: bool = True, boundary_output: bool = True):
        super().__init__()
        block = (lambda: SeparableConv(dim, dim)) if attention_blocks else nn.Identity
        self.attend_boundary = block() if boundary_output else None  # A_e
        self.attend_seg = block()  # A_s

    def forward(self, e: Tensor, s: Tensor, details: dict | None = None
                ) -> tuple[Tensor | None, Tensor, Tensor | None, Tensor]:
        """e, s: (B, R, h, w) -> E, S and the two gates, all (B, R, h, w) (E and its gate None
        when built with boundary_output=False). `details`, when given a dict, receives what each
        task borrows from the other: "borrowed_by_seg" (gate * e) and "borrowed_by_boundary"
        (gate * s)."""
        details = {} if details is None else details
        boundary_to_seg = 1 - torch.sigmoid(self.attend_seg(s))  # how much of e flows into S
        details["borrowed_by_seg"] = boundary_to_seg * e
        S = s + details["borrowed_by_seg"]
        if self.attend_boundary is None:
            return None, S, None, boundary_to_seg
        seg_to_boundary = 1 - torch.sigmoid(self.attend_boundary(e))  # how much of s flows into E
        details["borrowed_by_boundary"] = seg_to_boundary * s
        E = e + details["borrowed_by_boundary"]
        return E, S, seg_to_boundary, boundary_to_seg


class MiniMTL(nn.Module):
    def __init__(self, dim: int, num_classes: int, use_ia: bool = True,
                 attention_blocks: bool = True, side_heads: bool = True):
        super().__init__()
        self.boundary_branch = SeparableConv(dim, dim)  # e
        self.seg_branch = SeparableConv(dim, dim)  # s
        self.ia = (InteractiveAttention(dim, attention_blocks, boundary_output=side_heads) if use_ia
                   else None)
        self.boundary_head = conv3x3(dim, num_classes, bias=True) if side_heads else None
        self.seg_head = conv3x3(dim, num_classes, bias=True) if side_heads else None

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """x: (B, R, h, w) PEE features -> dict with S (for CFF), E, side logits, IA gates and what
        each task borrows from the other."""
        e, s = self.boundary_branch(x), self.seg_branch(x)  # (B, R, h, w) each
        # before IA: what each task lends
        out: dict[str, Tensor] = {"boundary_branch": e, "seg_branch": s}
        if self.ia is not None:
            borrowed: dict[str, Tensor] = {}
            e, s, seg_to_boundary, out["ia_boundary_to_seg"] = self.ia(e, s, borrowed)
            out["ia_borrowed_by_seg"] = borrowed["borrowed_by_seg"]
            if seg_to_boundary is not None:
                out["ia_seg_to_boundary"] = seg_to_boundary
                out["ia_borrowed_by_boundary"] = borrowed["borrowed_by_boundary"]
        out["seg_features"] = s  # S: what CFF and the decoder use
        if e is not None:
            out["boundary_features"] = e  # E: what the side boundary head reads
        if self.seg_head is not None:
            out["side_mask"] = self.seg_head(s)  # (B, K, h, w)
            out["side_boundary"] = self.boundary_head(e)  # (B, K, h, w)
        return out
