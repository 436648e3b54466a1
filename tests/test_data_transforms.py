"""Tests for banet_lite.data (transforms): resize, normalise and its inverse, the paper's augmentation."""


import numpy as np
import pytest
import torch
from datafiles import blob_mask, rgb

from banet_lite import data

# ---------------------------------------------------------------------------------------------------------
# 3. Preprocessing and augmentation
# ---------------------------------------------------------------------------------------------------------


def test_normalize_and_denormalize_round_trip():
    image = rgb(8, 10)
    x = data.normalize(image)
    assert x.shape == (3, 8, 10) and x.dtype == torch.float32
    mean, std = torch.tensor(data.IMAGENET_MEAN), torch.tensor(data.IMAGENET_STD)
    assert torch.allclose(x[:, 0, 0], (torch.from_numpy(image[0, 0] / 255.0).float() - mean) / std)
    assert np.array_equal(data.denormalize(x), image)
    assert np.array_equal(data.denormalize(torch.stack([x, x])), np.stack([image, image]))
    with pytest.raises(ValueError, match="image"):
        data.normalize(image.astype(np.float32))


def test_resize_image_and_mask():
    assert data.resize_image(rgb(12, 16), 8).shape == (8, 8, 3)
    mask = data.resize_mask(blob_mask() // 255, 8)
    assert mask.shape == (8, 8) and set(np.unique(mask)) == {0, 1}


def smooth_blobs(size: int, seed: int) -> torch.Tensor:
    """A (1, S, S) binary mask made of a few large discs, so most pixels are far from the outline."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    m = np.zeros((size, size), bool)
    for _ in range(3):
        (cy, cx), r = rng.uniform(0.2, 0.8, 2) * size, rng.uniform(0.1, 0.25) * size
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    return torch.from_numpy(m).float()[None]


def test_augment_pair_moves_image_and_mask_together():
    size = 48
    for seed in range(24):  # enough draws to hit every branch
        mask = smooth_blobs(size, seed)
        image = torch.cat([mask, 1 - mask, torch.full_like(mask, 0.5)])  # channel 0 == mask
        out_image, out_mask = data.augment_pair(image, mask, np.random.default_rng(seed))
        assert out_image.shape == (3, size, size) and out_mask.shape == (1, size, size)
        assert set(out_mask.unique().tolist()) <= {0.0, 1.0}
        confident = (out_image[0] < 0.1) | (out_image[0] > 0.9)  # away from the (blurred) outlines
        assert confident.float().mean() > 0.8
        assert torch.equal(out_mask[0][confident], out_image[0][confident].round())


def test_augment_pair_is_deterministic_and_strength_zero_is_identity():
    mask = smooth_blobs(32, 0)
    image = torch.randn(3, 32, 32)
    outs = [data.augment_pair(image, mask, np.random.default_rng(11)) for _ in range(2)]
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    results = {data.augment_pair(image, mask, np.random.default_rng(s))[0].sum().item() for s in range(8)}
    assert len(results) > 1
    same_image, same_mask = data.augment_pair(image, mask, np.random.default_rng(11), strength=0.0)
    assert torch.equal(same_image, image) and torch.equal(same_mask, mask)


def test_augment_pair_flips_are_exact():
    image, mask = torch.randn(3, 16, 16), smooth_blobs(16, 1)

    class Draws:  # vertical and horizontal flip fire, zoom/crop and rotation do not
        def random(self, n):
            return np.array([0.1, 0.1, 0.9, 0.0, 0.0, 0.9, 0.0])

    out_image, out_mask = data.augment_pair(image, mask, Draws())
    assert torch.equal(out_image, image.flip([-2, -1])) and torch.equal(out_mask, mask.flip([-2, -1]))


class FixedDraws:
    """Stands in for np.random.Generator: `random(7)` returns the given draws (the augmentation's only call)."""

    def __init__(self, *u):
        self.u = np.array(u + (0.0,) * (7 - len(u)))

    def random(self, n):
        assert n == 7
        return self.u


def marker_centre(dx: float, dy: float, draws, size: int = 101):
    """Augment a mask holding one 5x5 marker (dx, dy) px right of and below the centre; where does it land?"""
    c = size // 2
    mask = torch.zeros(1, size, size)
    mask[0, c + dy - 2 : c + dy + 3, c + dx - 2 : c + dx + 3] = 1
    _, out = data.augment_pair(torch.zeros(3, size, size), mask, FixedDraws(*draws))
    ys, xs = torch.nonzero(out[0] > 0.5, as_tuple=True)
    return xs.float().mean().item() - c, ys.float().mean().item() - c  # (right, down) from the centre


# draws: u0 < .5 flip rows, u1 < .5 flip columns, u2 < .5 zoom or crop (u3 < .5 zoom), u4 its amount,
#        u5 < .5 rotate, u6 the angle: 10 * (2 u6 - 1) degrees
NOTHING = (0.9, 0.9, 0.9, 0.9, 0.0, 0.9, 0.5)


@pytest.mark.parametrize("u4, zoom", [(0.0, 1.0), (0.5, 1.25), (1.0, 1.5)])
def test_augment_zoom_spans_1_to_1_5(u4, zoom):
    right, down = marker_centre(20, -12, (0.9, 0.9, 0.0, 0.0, u4, 0.9))
    assert right == pytest.approx(20 * zoom, abs=0.75) and down == pytest.approx(-12 * zoom, abs=0.75)


@pytest.mark.parametrize("u4, side", [(0.0, 1.0), (0.5, 0.75), (1.0, 0.5)])
def test_augment_centre_crop_keeps_half_to_all_of_the_side(u4, side):
    right, down = marker_centre(20, 10, (0.9, 0.9, 0.0, 0.9, u4, 0.9))
    assert right == pytest.approx(20 / side, abs=0.75) and down == pytest.approx(10 / side, abs=0.75)


@pytest.mark.parametrize("u6, degrees", [(1.0, 10.0), (0.0, -10.0), (0.75, 5.0)])
def test_augment_rotation_angle_and_direction(u6, degrees):
    """A positive angle turns the content counter-clockwise as displayed (rows grow downwards): a marker to
    the right of the centre moves up."""
    import math

    right, down = marker_centre(30, 0, (0.9, 0.9, 0.9, 0.9, 0.0, 0.0, u6))
    a = math.radians(degrees)
    assert right == pytest.approx(30 * math.cos(a), abs=0.75)
    assert down == pytest.approx(-30 * math.sin(a), abs=0.75)


def test_augment_flips_and_nothing():
    assert marker_centre(20, 10, NOTHING) == pytest.approx((20, 10))
    assert marker_centre(20, 10, (0.0,) + NOTHING[1:]) == pytest.approx((20, -10))  # u0: rows flipped
    assert marker_centre(20, 10, (0.9, 0.0) + NOTHING[2:]) == pytest.approx((-20, 10))  # u1: columns flipped
