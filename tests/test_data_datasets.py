"""Tests for banet_lite.data (datasets): the torch datasets: items, caching, preloading in workers."""


import numpy as np
import pytest
import torch
from datafiles import blob_mask, make_generic

from banet_lite import data
from banet_lite.data import DatasetError


def test_folder_dataset(tmp_path):
    make_generic(tmp_path, stems=("a", "b", "c", "d"), image_ext=".jpg")
    pairs = data.find_pairs(tmp_path)
    ds = data.FolderDataset(pairs, img_size=24, augment=True, seed=3)
    image, mask = ds[0]
    assert ds.pairs == pairs and len(ds) == 4
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert mask.shape == (1, 24, 24) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}

    other = data.FolderDataset(pairs, img_size=24, augment=True, seed=3)
    assert all(torch.equal(ds[i][0], other[i][0]) and torch.equal(ds[i][1], other[i][1]) for i in range(4))
    ds.set_epoch(1)
    assert any(not torch.equal(ds[i][0], other[i][0]) for i in range(4))

    # The cache holds decoded pairs: the files are no longer needed.
    for p in pairs:
        p.image.unlink()
    assert ds[2][0].shape == (3, 24, 24)
    uncached = data.FolderDataset(pairs, img_size=24, cache=False)
    with pytest.raises(DatasetError, match="a.jpg"):
        uncached[0]


def test_folder_dataset_preload_and_plain_items(tmp_path):
    make_generic(tmp_path, stems=("a", "b"))
    ds = data.FolderDataset(data.find_pairs(tmp_path), img_size=16).preload(progress=False)
    image, mask = ds[1]
    expected = data.normalize(data.resize_image(data.load_image(tmp_path / "images" / "b.png"), 16))
    assert torch.equal(image, expected)
    assert np.array_equal(mask[0].numpy(), data.resize_mask(blob_mask() // 255, 16))


def test_preload_in_workers_fills_the_same_cache(tmp_path):
    make_generic(tmp_path, stems=("a", "b", "c"))
    pairs = data.find_pairs(tmp_path)
    serial = data.FolderDataset(pairs, img_size=16).preload(progress=False)
    parallel = data.FolderDataset(pairs, img_size=16).preload(progress=False, workers=2)
    for (im1, m1), (im2, m2) in zip(serial._cache, parallel._cache):
        assert np.array_equal(im1, im2) and np.array_equal(m1, m2)
    synth = data.SyntheticLesions(5, size=24, seed=2).preload(progress=False, workers=1)
    assert sorted(synth._cache) == list(range(5))
    assert np.array_equal(synth.sample(3)[0], data.synthetic_sample(data.synthetic_seed(2, 3), 24)[0])
