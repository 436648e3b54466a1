"""Tests for banet_lite.data (synthetic): synthetic lesions: determinism, never-empty masks, the folder writer."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from banet_lite import data

# ---------------------------------------------------------------------------------------------------------
# 1. Synthetic lesions
# ---------------------------------------------------------------------------------------------------------


def test_synthetic_sample_is_deterministic_and_well_formed():
    image, mask = data.synthetic_sample(7, size=64)
    again_image, again_mask = data.synthetic_sample(7, size=64)
    other_image, _ = data.synthetic_sample(8, size=64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    assert np.array_equal(image, again_image) and np.array_equal(mask, again_mask)
    assert not np.array_equal(image, other_image)
    assert set(np.unique(mask)) <= {0, 1}
    assert image.std() > 2  # not a flat picture


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_synthetic_masks_never_empty_and_never_full(difficulty):
    for seed in range(40):
        _, mask = data.synthetic_sample(seed, size=32, difficulty=difficulty)
        assert 0 < mask.sum() < mask.size


def test_synthetic_lesion_is_low_contrast_but_visible():
    # Mean colour inside and outside the lesion differ, and harder samples differ less.
    def gap(difficulty):
        gaps = []
        for seed in range(20):
            image, mask = data.synthetic_sample(seed, size=64, difficulty=difficulty)
            inside, outside = image[mask == 1].mean(0), image[mask == 0].mean(0)
            gaps.append(np.abs(inside.astype(float) - outside).max())
        return np.mean(gaps)

    easy, hard = gap(0.0), gap(1.0)
    assert 2 < hard < easy < 80


def test_synthetic_sample_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        data.synthetic_sample(0, size=4)
    with pytest.raises(ValueError, match="difficulty"):
        data.synthetic_sample(0, difficulty=1.5)


def test_synthetic_lesions_dataset():
    ds = data.SyntheticLesions(4, size=32, seed=3)
    image, mask = ds[1]
    assert len(ds) == 4
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert mask.shape == (1, 32, 32) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    raw_image, raw_mask = data.synthetic_sample(data.synthetic_seed(3, 1), 32, 0.5)
    assert torch.equal(image, data.normalize(raw_image))
    assert torch.equal(mask[0], torch.from_numpy(raw_mask).float())
    with pytest.raises(IndexError):
        ds[4]


def test_synthetic_lesions_augmentation_is_deterministic_per_epoch():
    a = data.SyntheticLesions(6, size=32, augment=True)
    b = data.SyntheticLesions(6, size=32, augment=True)
    assert all(torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1]) for i in range(6))
    before = [a[i][0] for i in range(6)]
    a.set_epoch(1)
    assert any(not torch.equal(before[i], a[i][0]) for i in range(6))


def test_write_synthetic_dataset(tmp_path):
    out = data.write_synthetic_dataset(tmp_path / "synth", n=6, size=32, seed=1, test_fraction=0.5)
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"synth_{i:04d}.png" for i in range(6)]
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"synth_{i:04d}.png" for i in range(6)]
    with (out / "split.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["stem"] for r in rows] == [f"synth_{i:04d}" for i in range(6)]
    assert sorted(r["split"] for r in rows) == ["test"] * 3 + ["train"] * 3

    image = np.asarray(Image.open(out / "images" / "synth_0002.png"))
    mask = np.asarray(Image.open(out / "masks" / "synth_0002.png"))
    expected_image, expected_mask = data.synthetic_sample(data.synthetic_seed(1, 2), 32, 0.5)
    assert np.array_equal(image, expected_image) and np.array_equal(mask, expected_mask * 255)

    pairs = data.find_pairs(out)
    data.validate_pairs(pairs, out)
    assert data.read_split_csv(out, stems=[p.stem for p in pairs]) == {r["stem"]: r["split"] for r in rows}

    # Writing again with fewer samples leaves no stale files behind.
    data.write_synthetic_dataset(out, n=3, size=32)
    assert len(data.find_pairs(out)) == 3
    assert not list(out.rglob(".*tmp*"))


# ---------------------------------------------------------------------------------------------------------
# 1b. The cases where the outline decides
# ---------------------------------------------------------------------------------------------------------


def test_every_case_is_drawn_and_keeps_the_base_lesion():
    seen = {data.synthetic_case(data.synthetic_seed(0, i)) for i in range(200)}
    assert seen == set(data.CASES)
    for seed in range(6):
        _, base = data.synthetic_sample(seed, size=96, case="easy")
        for case in ("faint_rim", "decoy", "occluded"):  # only the irregular case changes the mask
            _, mask = data.synthetic_sample(seed, size=96, case=case)
            assert np.array_equal(mask, base), case
        # the seed's own case is what case=None paints
        own = data.synthetic_sample(seed, size=96)
        named = data.synthetic_sample(seed, size=96, case=data.synthetic_case(seed))
        assert all(np.array_equal(a, b) for a, b in zip(own, named))
    with pytest.raises(ValueError, match="case"):
        data.synthetic_sample(0, case="blurry")


def _outline(mask):
    from banet_lite.metrics import boundary

    return boundary(mask.astype(bool))


def test_cases_change_what_they_say():
    faint, decoy, occluded, irregular = [], [], [], []
    for seed in range(12):
        easy_image, mask = data.synthetic_sample(seed, size=96, difficulty=0.3, case="easy")
        easy = easy_image.astype(float)
        outside = mask == 0
        # faint_rim: the image moves toward the background along part of the outline only
        image = data.synthetic_sample(seed, size=96, difficulty=0.3, case="faint_rim")[0].astype(float)
        band = _outline(mask)
        faint.append(np.abs(image - easy)[band].mean() > np.abs(image - easy)[~band & ~outside].mean())
        # decoy: pixels outside the lesion change, pixels deep inside it do not
        image = data.synthetic_sample(seed, size=96, difficulty=0.3, case="decoy")[0].astype(float)
        decoy.append(np.abs(image - easy)[outside].max() > 15)
        # occluded: hairs and highlights land on the outline
        image = data.synthetic_sample(seed, size=96, difficulty=0.3, case="occluded")[0].astype(float)
        occluded.append(np.abs(image - easy)[band].max() > 60)
        # irregular: a longer outline for about the same area
        _, ragged = data.synthetic_sample(seed, size=96, difficulty=0.3, case="irregular")
        irregular.append(_outline(ragged).sum() / np.sqrt(ragged.sum()) > _outline(mask).sum() / np.sqrt(mask.sum()))
    assert all(decoy) and all(occluded)
    assert np.mean(faint) >= 0.75 and np.mean(irregular) >= 0.75


def test_the_shipped_sample_is_what_the_generator_makes_today(tmp_path):
    """data/synthetic (`python -m banet_lite synth --out data/synthetic --n 16 --size 96`) regenerated bit for
    bit: a change to synthetic_sample that moves any lesion, or draws in another order, shows here."""
    shipped = Path(__file__).resolve().parents[1] / "data" / "synthetic"
    fresh = data.write_synthetic_dataset(tmp_path / "synth", n=16, size=96)
    for kind in ("images", "masks"):
        for path in sorted((shipped / kind).iterdir()):
            assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(fresh / kind / path.name))), path
    assert (shipped / "split.csv").read_text() == (fresh / "split.csv").read_text()
