"""Where is a map strong? Its mean over four regions of the image, at the map's own resolution.

A map of a trained network (an edge response, a gate, a side output) is read against the lesion mask
in four regions of its cells:

    outline     cells the lesion's outline crosses: any pixel of the boundary band b (notebook 00)
                in the cell
    interior    cells wholly inside the lesion (no band pixel)
    background  cells wholly outside it (no band pixel)
    frame       the outermost ring of cells, kept apart: zero padding makes maps respond along
                the image border, which says nothing about the lesion

A map is **boundary-specific** only when its outline mean stands above BOTH the interior and
the background by a stated margin (BOUNDARY_MARGIN, 1.25 times); a map high on the whole lesion is
a soft lesion mask, one low on the lesion and high around it an inverted mask. One ratio of "outline
over everything else" would call a soft lesion mask "boundary" whenever the lesion is small, since
its interior is then a few cells. At 96 px input, stages 2-4 are 12 x 12: one cell is 8 x 8 pixels,
and a small lesion has no interior cell at all; `read()` says so rather than guess.

    profile = region_profile(arr, mask)        # (h, w) map, (H, W) mask; or lists of both, pooled
    print(profile, "->", profile.read())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.losses import boundary_target

REGIONS = ("outline", "interior", "background", "frame")
BOUNDARY_MARGIN = 1.25  # "stands above" means at least this many times as strong


def region_cells(mask: Tensor, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The four regions as (h, w) boolean cell masks for an (H, W) lesion mask read at `size`."""
    m = torch.as_tensor(mask).float()[None, None]  # (1, 1, H, W)
    # any band pixel in the cell
    band = F.adaptive_max_pool2d(boundary_target(m), size)[0, 0].numpy() > 0
    # away from the band: wholly in or out
    inside = F.adaptive_avg_pool2d(m, size)[0, 0].numpy() > 0.5
    frame = np.zeros(size, dtype=bool)
    frame[[0, -1], :] = frame[:, [0, -1]] = True
    return {"outline": band & ~frame, "interior": inside & ~band & ~frame,
            "background": ~inside & ~band & ~frame, "frame": frame}


@dataclass(frozen=True)
class RegionProfile:
    """Mean |map| per region (NaN where a region has no cell) and how many cells each region has."""

    means: dict[str, float]
    cells: dict[str, int]
    size: tuple[int, int]

    def __getitem__(self, region: str) -> float:
        return self.means[region]

    def __str__(self) -> str:
        return (" · ".join(f"{r} {self.means[r]:.2g}" for r in REGIONS)
                + f" ({self.size[0]}x{self.size[1]} cells)")

    def contrast(self) -> float:
        """outline / max(interior, background): above BOUNDARY_MARGIN, the map is
        boundary-specific."""
        rest = max(self.means["interior"], self.means["background"])
        return self.means["outline"] / rest if rest > 0 else float("inf")

    def kind(self, margin: float = BOUNDARY_MARGIN) -> str:
        """What the map does, in two or three words (the start of `read()`)."""
        return self.read(margin).split(":")[0].split(";")[0]

    def read(self, margin: float = BOUNDARY_MARGIN) -> str:
        """What the map does, in words, by the rule in this module's docstring."""
        o, i, b, f = (self.means[r] for r in REGIONS)
        if not self.cells["interior"]:
            return (f"too coarse: no {self.size[0]}x{self.size[1]} cell lies wholly inside "
                    "the lesion, so an outline cannot be told from the lesion")
        if not self.cells["background"] or not self.cells["outline"]:
            return "not measurable: the lesion leaves no background or no outline cell"
        if o > 0 and o >= margin * max(i, b):
            words = (f"boundary-specific: the outline {_times(o, max(i, b))} both the interior and "
                     "the background")
        elif min(o, i) > 0 and min(o, i) >= margin * b:
            words = (f"a soft lesion mask: outline and interior {_times(min(o, i), b)} "
                     "the background")
        elif i > 0 and i >= margin * max(o, b):
            words = f"the lesion's interior: {_times(i, max(o, b))} the outline and the background"
        elif b > 0 and b >= margin * max(o, i):
            words = f"an inverted lesion mask: the background {_times(b, max(o, i))} the lesion"
        else:
            words = f"flat: no region stands out by {margin}x"
        if f > 0 and f >= margin * max(o, i, b):
            words += "; strongest along the image frame"
        return words


def _times(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "far above"


def region_profile(arr, mask) -> RegionProfile:
    """Mean |map| per region: `arr` an (h, w) map and `mask` its (H, W) lesion mask, or sequences
    of both (one per image; every map the same size), pooled over all their cells."""
    arrs = [arr] if np.ndim(arr) == 2 else list(arr)
    masks = [mask] if np.ndim(mask) == 2 else list(mask)
    if len(arrs) != len(masks) or not arrs:
        raise ValueError(f"regions.py: {len(arrs)} maps and {len(masks)} masks")
    size = tuple(np.shape(arrs[0]))
    sums, cells = dict.fromkeys(REGIONS, 0.0), dict.fromkeys(REGIONS, 0)
    for a, m in zip(arrs, masks):
        a = np.abs(np.asarray(a, dtype=np.float64))
        if a.shape != size:
            raise ValueError(f"regions.py: maps of different sizes {size} and {a.shape}; "
                             "pool one size at a time")
        for region, where in region_cells(m, size).items():
            sums[region] += float(a[where].sum())
            cells[region] += int(where.sum())
    means = {r: sums[r] / cells[r] if cells[r] else float("nan") for r in REGIONS}
    return RegionProfile(means, cells, size)


def pooled(profiles: Sequence[RegionProfile]) -> RegionProfile:
    """Profiles of several images (one map size) as one: cell-weighted means."""
    cells = {r: sum(p.cells[r] for p in profiles) for r in REGIONS}
    means = {r: sum(p.means[r] * p.cells[r] for p in profiles if p.cells[r]) / cells[r] if cells[r]
             else float("nan") for r in REGIONS}
    return RegionProfile(means, cells, profiles[0].size)
