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
    """A (1, S, S) binary mask made of a few large discs, so most pixels are far from an edge."""
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
        confident = (out_image[0] < 0.1) | (out_image[0] > 0.9)  # away from the (blurred) edges
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
