"""Preprocessing and augmentation, as in the BA-Net paper; the one copy of each.

    resize        bilinear for images, nearest for masks (stays binary), to S x S
    normalise     x = (rgb / 255 - mean) / std with ImageNet's mean and std; `denormalize` undoes it
    augment       each with p = 0.5: vertical flip, horizontal flip, zoom (1.0-1.5x) or centre crop
                  (0.5-1.0 of the side), rotation (+-10 degrees), folded into one affine warp that
                  is applied identically to image and mask
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (size, size, 3), bilinear (Pillow's, which also antialiases when
    shrinking)."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W) in {0, 1} -> (size, size), nearest neighbour (stays binary)."""
    if mask.shape == (size, size):
        return mask
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))


def normalize(image: np.ndarray) -> Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W): scaled to [0, 1], then (x - mean) / std per channel."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {tuple(image.shape)}")
    # torch wants a writable array (Pillow's are not)
    image = np.require(image, requirements=["C", "W"])
    x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)  # (3, H, W), a new tensor
    return x.sub_(_MEAN).div_(_STD)


def denormalize(x: Tensor) -> np.ndarray:
    """float (3, H, W) or (B, 3, H, W), normalised -> uint8 (H, W, 3) or (B, H, W, 3) for
    display."""
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"x: expected (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
    x = x.detach().float().cpu() * _STD + _MEAN
    x = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return x.movedim(-3, -1).contiguous().numpy()


def augment_pair(
    image: Tensor, mask: Tensor, rng: np.random.Generator, strength: float = 1.0
) -> tuple[Tensor, Tensor]:
    """The paper's augmentation on image (3, S, S) and mask (1, S, S), identically.

    Each with p = 0.5: vertical flip; horizontal flip; either zoom by 1.0-1.5 and centre-crop back
    to S, or centre-crop 0.5-1.0 of the side and resize back; rotation by +-10 degrees. `strength`
    scales the zoom, crop and rotation ranges; strength <= 0 switches augmentation off (flips too).

    The steps compose into one affine map from output to input coordinates (normalised to [-1, 1]):

        p_in = scale * R(angle) @ diag(flip_x, flip_y) @ p_out

    sampled once with `grid_sample`: bilinear for the image, nearest for the mask, reflection at the
    border for both (so labels follow the reflected content). Flips alone are exact `torch.flip`s.
    """
    if image.dim() != 3 or mask.dim() != 3 or image.shape[-2:] != mask.shape[-2:]:
        shapes = f"{tuple(image.shape)} and {tuple(mask.shape)}"
        raise ValueError(f"image, mask: expected (3, S, S) and (1, S, S), got {shapes}")
    u = rng.random(7)  # always 7 draws, so the stream does not depend on which steps fire
    if strength <= 0:
        return image, mask
    flip_y, flip_x = u[0] < 0.5, u[1] < 0.5
    scale = 1.0
    if u[2] < 0.5:
        if u[3] < 0.5:
            # zoom in by 1.0-1.5: see 1/zoom of the field
            scale = 1.0 / (1.0 + 0.5 * strength * u[4])
        else:
            scale = 1.0 - 0.5 * strength * u[4]  # centre crop of 0.5-1.0 of the side, resized back
        scale = min(max(scale, 0.05), 1.0)
    angle = math.radians(10.0 * strength * (2.0 * u[6] - 1.0)) if u[5] < 0.5 else 0.0

    if scale == 1.0 and angle == 0.0:  # flips only: exact and cheap
        dims = [d for d, flip in ((-2, flip_y), (-1, flip_x)) if flip]
        return (image.flip(dims), mask.flip(dims)) if dims else (image, mask)

    # The sampling grid, built directly (F.affine_grid is a batched matmul, 10x slower on CPU).
    fx, fy = (-1.0 if flip_x else 1.0), (-1.0 if flip_y else 1.0)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    h, w = image.shape[-2:]
    # pixel centres, (W,)
    xs = torch.linspace(-1.0 + 1.0 / w, 1.0 - 1.0 / w, w, dtype=image.dtype) * fx
    ys = torch.linspace(-1.0 + 1.0 / h, 1.0 - 1.0 / h, h, dtype=image.dtype)[:, None] * fy  # (H, 1)
    grid = torch.stack([c * xs - s * ys, s * xs + c * ys], dim=-1)[None]  # (1, H, W, 2) as (x, y)
    image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)
    mask = F.grid_sample(mask[None].to(grid.dtype), grid, mode="nearest", padding_mode="reflection",
                         align_corners=False)
    return image[0], mask[0]
