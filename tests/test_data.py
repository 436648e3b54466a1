"""Tests for banet_lite.data: synthetic data, folder layouts, validation, splits, augmentation, downloads.

Everything runs offline on tiny files made in tmp_path; downloads use file:// URLs or a local HTTP server.
"""

import csv
import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from banet_lite import data
from banet_lite.data import DatasetError, Pair

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def save(path: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    """Save a uint8 array as an image file (format from the extension unless given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def rgb(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def blob_mask(h: int = 12, w: int = 16) -> np.ndarray:
    """A 0/255 mask with a filled rectangle."""
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    return m


def make_generic(root: Path, stems=("a", "b", "c"), image_ext=".png", mask_ext=".png") -> Path:
    for i, stem in enumerate(stems):
        save(root / "images" / f"{stem}{image_ext}", rgb(seed=i))
        save(root / "masks" / f"{stem}{mask_ext}", blob_mask())
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def dataset_zip(path: Path, n: int = 3) -> Path:
    """A zip holding a Kvasir-like `Toy/images + Toy/masks` folder with n pairs."""
    members = {}
    for i in range(n):
        members[f"Toy/images/t{i}.png"] = png_bytes(rgb(seed=i))
        members[f"Toy/masks/t{i}.png"] = png_bytes(blob_mask())
    return make_zip(path, members)


def register(monkeypatch, url: str, filename: str, sha: str | None) -> None:
    source = data.DatasetSource(
        name="Toy", files=(data.RemoteFile(url, sha, filename),), homepage="https://example.org",
        licence="none", citation="none", layout_note="Toy/images + Toy/masks",
    )
    monkeypatch.setitem(data.DATASETS, "toy", source)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


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
# 2. Folder layouts, reading, validation, splits
# ---------------------------------------------------------------------------------------------------------


def test_find_pairs_generic_layout_ignores_junk(tmp_path):
    make_generic(tmp_path, stems=("b", "a"), image_ext=".jpg")
    save(tmp_path / "images" / "c.png", rgb())  # no mask
    save(tmp_path / "masks" / "d_mask.png", blob_mask())  # mask named <stem>_mask
    save(tmp_path / "images" / "d.tif", rgb())
    (tmp_path / "images" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "images" / "Thumbs.db").write_bytes(b"junk")
    (tmp_path / "images" / "._a.jpg").write_bytes(b"AppleDouble junk")
    (tmp_path / "masks" / "notes.txt").write_text("ignored")

    pairs = data.find_pairs(tmp_path)
    assert [p.stem for p in pairs] == ["a", "b", "c", "d"]
    assert pairs[0] == Pair("a", tmp_path / "images" / "a.jpg", tmp_path / "masks" / "a.png")
    assert pairs[2].mask is None
    assert pairs[3].mask == tmp_path / "masks" / "d_mask.png"


def test_find_pairs_kvasir_native_layout(tmp_path):
    kvasir = tmp_path / "Kvasir-SEG"
    for stem in ("cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4"):
        save(kvasir / "images" / f"{stem}.jpg", rgb())
        save(kvasir / "masks" / f"{stem}.jpg", blob_mask())  # Kvasir ships JPEG masks
    (tmp_path / "kavsir_bboxes.json").write_text("{}")

    from_parent, from_folder = data.find_pairs(tmp_path), data.find_pairs(kvasir)
    assert from_parent == from_folder and len(from_parent) == 2
    data.validate_pairs(from_parent, tmp_path)
    assert set(np.unique(data.load_mask(from_parent[0].mask))) == {0, 1}


def test_find_pairs_isic_layout(tmp_path):
    for split, stems in (("Training", ("ISIC_0000001", "ISIC_0000000")), ("Validation", ("ISIC_0012255",))):
        for stem in stems:
            save(tmp_path / f"ISIC2018_Task1-2_{split}_Input" / f"{stem}.jpg", rgb())
            save(tmp_path / f"ISIC2018_Task1_{split}_GroundTruth" / f"{stem}_segmentation.png", blob_mask())
    (tmp_path / "ISIC2018_Task1-2_Training_Input" / "LICENSE.txt").write_text("CC-BY-NC")
    (tmp_path / "ISIC2018_Task1-2_Training_Input.zip").write_bytes(b"not a folder")

    pairs = data.find_pairs(tmp_path)
    assert [p.stem for p in pairs] == ["ISIC_0000000", "ISIC_0000001", "ISIC_0012255"]
    assert pairs[0].mask.name == "ISIC_0000000_segmentation.png"
    data.validate_pairs(pairs, tmp_path)


def test_find_pairs_ph2_native_layout(tmp_path):
    cases = tmp_path / "PH2Dataset" / "PH2 Dataset images"
    for stem in ("IMD003", "IMD002"):
        save(cases / stem / f"{stem}_Dermoscopic_Image" / f"{stem}.bmp", rgb())
        lesion = cases / stem / f"{stem}_lesion" / f"{stem}_lesion.bmp"
        lesion.parent.mkdir(parents=True)
        Image.fromarray(blob_mask()).convert("1").save(lesion)  # PH2 masks are 1-bit BMPs
        (cases / stem / f"{stem}_roi").mkdir()  # PH2 also has colour-ROI folders: ignored
    (tmp_path / "PH2Dataset" / "PH2_dataset.txt").write_text("clinical labels")

    pairs = data.find_pairs(tmp_path)
    assert [p.stem for p in pairs] == ["IMD002", "IMD003"]
    assert pairs[0].image.name == "IMD002.bmp" and pairs[0].mask.name == "IMD002_lesion.bmp"
    data.validate_pairs(pairs, tmp_path)
    assert np.array_equal(data.load_mask(pairs[0].mask), blob_mask() // 255)


def test_find_pairs_unknown_layout_is_empty_and_validation_says_so(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    assert data.find_pairs(tmp_path) == []
    with pytest.raises(DatasetError, match="no image/mask pairs found") as err:
        data.validate_pairs([], tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(DatasetError, match="not a folder"):
        data.find_pairs(tmp_path / "missing")


def test_load_image_modes(tmp_path):
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    out = data.load_image(save(tmp_path / "gray.png", gray))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8 and np.array_equal(out[..., 1], gray)

    rgba = np.dstack([rgb(), np.full((12, 16), 7, np.uint8)])
    assert np.array_equal(data.load_image(save(tmp_path / "rgba.png", rgba)), rgba[..., :3])

    deep = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = data.load_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and np.abs(out[..., 0].astype(int) - np.round(deep / 257)).max() <= 1

    palette = Image.fromarray(rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(data.load_image(tmp_path / "palette.png"), np.asarray(palette.convert("RGB")))


def test_load_mask_labels_and_binarisation(tmp_path):
    labels = blob_mask() // 255
    assert np.array_equal(data.load_mask(save(tmp_path / "labels.png", labels)), labels)
    assert np.array_equal(data.load_mask(save(tmp_path / "binary.png", blob_mask())), labels)
    noisy = np.where(labels == 1, 250, 4).astype(np.uint8)  # JPEG-like values around 0 and 255
    assert np.array_equal(data.load_mask(save(tmp_path / "noisy.png", noisy)), labels)
    colour = np.repeat(blob_mask()[..., None], 3, axis=2)
    assert np.array_equal(data.load_mask(save(tmp_path / "colour.png", colour)), labels)


def bad_truncated(root: Path) -> str:
    make_generic(root)
    path = root / "images" / "b.png"
    save(path, rgb(64, 64))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    save(root / "masks" / "b.png", np.zeros((64, 64), np.uint8))
    return "b.png"


def bad_missing_mask(root: Path) -> str:
    make_generic(root)
    (root / "masks" / "c.png").unlink()
    return "c.png"


def bad_size_mismatch(root: Path) -> str:
    make_generic(root)
    save(root / "masks" / "a.png", np.zeros((5, 5), np.uint8))
    return "a.png"


def bad_not_an_image(root: Path) -> str:
    make_generic(root)
    (root / "masks" / "b.png").write_text("this is not a PNG")
    return "b.png"


@pytest.mark.parametrize("make_bad", [bad_truncated, bad_missing_mask, bad_size_mismatch, bad_not_an_image])
def test_validate_pairs_names_the_bad_file(tmp_path, make_bad):
    name = make_bad(tmp_path)
    with pytest.raises(DatasetError) as err:
        data.validate_pairs(data.find_pairs(tmp_path), tmp_path)
    message = str(err.value)
    assert name in message and "\n" not in message


def test_validate_pairs_accepts_good_pairs(tmp_path):
    data.validate_pairs(data.find_pairs(make_generic(tmp_path, image_ext=".jpg")), tmp_path)


def write_split(root: Path, rows: list[tuple[str, str]]) -> None:
    (root / "split.csv").write_text("stem,split\n" + "".join(f"{a},{b}\n" for a, b in rows))


def test_split_csv_is_honoured_and_val_comes_from_train(tmp_path):
    stems = [f"s{i:02d}" for i in range(30)]
    make_generic(tmp_path, stems=stems)
    write_split(tmp_path, [(s, "test" if i % 5 == 0 else "train") for i, s in enumerate(stems)])
    pairs = data.find_pairs(tmp_path)
    split_map = data.read_split_csv(tmp_path, stems=[p.stem for p in pairs])
    parts = data.split_pairs(pairs, split_map, seed=0, val_fraction=0.25)
    again = data.split_pairs(pairs, split_map, seed=0, val_fraction=0.25)
    other_seed = data.split_pairs(pairs, split_map, seed=1, val_fraction=0.25)

    assert [p.stem for p in parts["test"]] == [s for i, s in enumerate(stems) if i % 5 == 0]
    assert len(parts["val"]) == 6 and len(parts["train"]) == 18
    assert all(split_map[p.stem] == "train" for p in parts["val"])
    assert parts == again and parts["val"] != other_seed["val"]
    assert parts["test"] == other_seed["test"]


def test_split_csv_val_rows_are_used(tmp_path):
    make_generic(tmp_path, stems=("a", "b", "c", "d"))
    write_split(tmp_path, [("a", "train"), ("b", "val"), ("c", "test"), ("d", "train")])
    parts = data.split_pairs(data.find_pairs(tmp_path), data.read_split_csv(tmp_path))
    stems = {split: [p.stem for p in part] for split, part in parts.items()}
    assert stems == {"train": ["a", "d"], "val": ["b"], "test": ["c"]}


def test_split_csv_errors(tmp_path):
    make_generic(tmp_path, stems=("a", "b"))
    pairs = data.find_pairs(tmp_path)
    write_split(tmp_path, [("a", "train"), ("b", "holdout")])
    with pytest.raises(DatasetError, match=r"split\.csv: line 3: .*holdout"):
        data.read_split_csv(tmp_path)
    write_split(tmp_path, [("a", "train"), ("b", "test"), ("zzz", "test")])
    with pytest.raises(DatasetError, match=r"split\.csv: line 4: .*zzz"):
        data.read_split_csv(tmp_path, stems=["a", "b"])
    with pytest.raises(DatasetError, match=r"split\.csv.*zzz"):
        data.split_pairs(pairs, data.read_split_csv(tmp_path))
    write_split(tmp_path, [("a", "train")])
    with pytest.raises(DatasetError, match=r"split\.csv.*'b'"):
        data.split_pairs(pairs, data.read_split_csv(tmp_path))
    (tmp_path / "split.csv").write_text("name,set\na,train\n")
    with pytest.raises(DatasetError, match="header"):
        data.read_split_csv(tmp_path)
    (tmp_path / "split.csv").unlink()
    assert data.read_split_csv(tmp_path) is None


def test_random_split_is_deterministic_and_disjoint():
    pairs = [Pair(f"p{i:03d}", Path(f"p{i:03d}.png"), Path(f"m{i:03d}.png")) for i in range(100)]
    parts = data.split_pairs(pairs[::-1], seed=5)
    assert parts == data.split_pairs(pairs, seed=5)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [72, 8, 20]
    stems = [p.stem for k in ("train", "val", "test") for p in parts[k]]
    assert sorted(stems) == [p.stem for p in pairs]
    assert parts["test"] != data.split_pairs(pairs, seed=6)["test"]


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


# ---------------------------------------------------------------------------------------------------------
# 4. Downloads
# ---------------------------------------------------------------------------------------------------------


def test_download_verifies_extracts_and_caches(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", sha256(archive))
    root = tmp_path / "data"
    folder = data.download("toy", root=root, progress=False)
    assert folder == root / "toy" and (folder / ".complete").is_file()
    pairs = data.find_pairs(folder)
    assert [p.stem for p in pairs] == ["t0", "t1", "t2"]
    data.validate_pairs(pairs, folder)
    assert not (folder / "toy.zip").exists() and not list(root.glob(".toy-extract-*"))

    archive.unlink()  # a second call does not touch the network
    assert data.download("toy", root=root, progress=False) == folder


def test_download_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", "0" * 64)
    root = tmp_path / "data"
    with pytest.raises(DatasetError) as err:
        data.download("toy", root=root, progress=False)
    message = str(err.value)
    assert archive.as_uri() in message and "0" * 64 in message and sha256(archive) in message
    assert not root.exists() or files_under(root) == []


def test_download_trust_on_first_use(tmp_path, monkeypatch, capsys):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", None)
    root = tmp_path / "data"
    folder = data.download("toy", root=root, progress=False)
    record = folder / "toy.zip.sha256"
    assert record.read_text().split()[0] == sha256(archive)
    assert sha256(archive) in capsys.readouterr().out

    # Later downloads must match the recorded hash.
    (folder / ".complete").unlink()
    dataset_zip(archive, n=2)  # the server now sends different bytes
    with pytest.raises(DatasetError, match="SHA-256 mismatch"):
        data.download("toy", root=root, progress=False)
    assert not list(root.rglob("*.part")) and not (folder / "toy.zip").exists()
    # ... unless the caller passes the new hash explicitly.
    data.download("toy", root=root, progress=False, sha256_override=sha256(archive))
    assert len(data.find_pairs(folder)) == 2


def test_download_uses_a_file_put_there_by_hand(tmp_path, monkeypatch):
    register(monkeypatch, (tmp_path / "nowhere.zip").as_uri(), "toy.zip", None)
    root = tmp_path / "data"
    (root / "toy").mkdir(parents=True)
    dataset_zip(root / "toy" / "toy.zip")
    assert len(data.find_pairs(data.download("toy", root=root, progress=False))) == 3


@pytest.mark.parametrize("url", ["file:///nonexistent/banet/toy.zip", "http://127.0.0.1:9/toy.zip"])
def test_download_unreachable_url_gives_a_hint(tmp_path, monkeypatch, url):
    register(monkeypatch, url, "toy.zip", None)
    with pytest.raises(DatasetError, match="download it by hand") as err:
        data.download("toy", root=tmp_path / "data", progress=False)
    assert "cannot reach" in str(err.value) and "--data-dir" in str(err.value)
    assert files_under(tmp_path) == []


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `payload` at any path; honours `Range: bytes=N-` unless `ignore_range` (416 past the end)."""

    payload = b""
    ignore_range = False

    def do_GET(self):
        start = 0
        if self.headers.get("Range") and not self.ignore_range:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        if start and start >= len(self.payload):
            self.send_response(416)  # Range Not Satisfiable: the client has it all
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("ignore_range", [False, True])
def test_download_resumes_a_partial_file_over_http(tmp_path, monkeypatch, ignore_range):
    archive = dataset_zip(tmp_path / "toy.zip")
    payload = archive.read_bytes()
    handler = type("Handler", (RangeHandler,), {"payload": payload, "ignore_range": ignore_range})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        register(monkeypatch, f"http://127.0.0.1:{server.server_port}/toy.zip", "toy.zip", sha256(archive))
        root = tmp_path / "data"
        (root / "toy").mkdir(parents=True)
        (root / "toy" / "toy.zip.part").write_bytes(payload[: len(payload) // 2])
        monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read into memory whole"))
        folder = data.download("toy", root=root, progress=False)
        assert len(data.find_pairs(folder)) == 3
    finally:
        server.shutdown()
        server.server_close()


def test_safe_extract_refuses_zip_escape(tmp_path):
    evil = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", "../evil.txt": b"gotcha"})
    target = tmp_path / "out" / "target"
    with pytest.raises(DatasetError, match=r"evil\.txt"):
        data.safe_extract(evil, target)
    assert not (tmp_path / "out" / "evil.txt").exists() and not (target / "ok.txt").exists()


def test_download_refuses_zip_escape(tmp_path, monkeypatch):
    evil = make_zip(tmp_path / "evil.zip", {"Toy/images/a.png": png_bytes(rgb()), "../../evil.txt": b"x"})
    register(monkeypatch, evil.as_uri(), "evil.zip", sha256(evil))
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="outside"):
        data.download("toy", root=root, progress=False)
    assert not list(tmp_path.rglob("evil.txt")) and not (root / "toy" / ".complete").exists()
    assert not list(root.glob(".toy-extract-*"))


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            payload = b"payload" if info.isfile() else None
            if payload is not None:
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "member",
    [
        tar_member("/tmp/banet_absolute_evil.txt"),
        tar_member("../evil.txt"),
        tar_member("dir/link", tarfile.SYMTYPE, "../../evil"),
        tar_member("link", tarfile.SYMTYPE, "/etc/passwd"),
        tar_member("hard", tarfile.LNKTYPE, "../outside.txt"),
    ],
    ids=["absolute", "dotdot", "symlink-up", "symlink-absolute", "hardlink-up"],
)
def test_safe_extract_refuses_tar_escape(tmp_path, member):
    archive = make_tar(tmp_path / "evil.tar.gz", [tar_member("ok.txt"), member])
    target = tmp_path / "target"
    with pytest.raises(DatasetError, match="refused"):
        data.safe_extract(archive, target)
    assert files_under(target) == [] and not Path("/tmp/banet_absolute_evil.txt").exists()


def test_safe_extract_tar_with_inner_symlink(tmp_path):
    members = [tar_member("dir/file.txt"), tar_member("dir/alias", tarfile.SYMTYPE, "file.txt")]
    archive = make_tar(tmp_path / "ok.tar.gz", members)
    data.safe_extract(archive, tmp_path / "target")
    assert (tmp_path / "target" / "dir" / "alias").read_bytes() == b"payload"
    with pytest.raises(DatasetError, match="not a zip or tar"):
        data.safe_extract(tmp_path / "target" / "dir" / "file.txt", tmp_path / "t2")


def test_manual_and_unknown_datasets(tmp_path):
    with pytest.raises(DatasetError, match="by hand") as err:
        data.download("ph2", root=tmp_path)
    assert "--data-dir" in str(err.value) and ".rar" in str(err.value)
    with pytest.raises(DatasetError, match="kvasir-seg") as err:
        data.download("nope", root=tmp_path)
    assert "unknown dataset" in str(err.value)


def test_data_root_and_resolve_data(tmp_path, monkeypatch):
    monkeypatch.delenv("BANET_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.data_root() != tmp_path / "data"  # never relative to the current folder
    monkeypatch.setenv("BANET_DATA_DIR", str(tmp_path / "elsewhere"))
    assert data.data_root() == tmp_path / "elsewhere"

    assert data.resolve_data("kvasir-seg", str(tmp_path)) == tmp_path  # data_dir wins, nothing downloaded
    with pytest.raises(DatasetError, match="not a folder"):
        data.resolve_data(None, str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.resolve_data("imagenet", None)

    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", sha256(archive))
    folder = data.resolve_data("toy", None)
    assert folder == tmp_path / "elsewhere" / "toy" and len(data.find_pairs(folder)) == 3
    assert os.path.isfile(folder / ".complete")


REPO = Path(data.__file__).resolve().parents[1]


def test_data_root_from_a_notebooks_folder_is_outside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BANET_DATA_DIR", raising=False)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    root = data.data_root()
    assert root.is_absolute() and not root.is_relative_to(notebooks)
    assert root == REPO / "data"  # the tests run from a source checkout: its git-ignored data/

    # installed (no checkout around the package): a user cache folder, whatever the current folder
    monkeypatch.setattr(data, "_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "banet-lite" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_root() == tmp_path / "home" / ".cache" / "banet-lite" / "data"

    monkeypatch.setenv("BANET_DATA_DIR", "~/drive/banet-data")  # the variable wins, ~ expanded
    assert data.data_root() == tmp_path / "home" / "drive" / "banet-data"


def test_a_download_from_a_notebook_lands_outside_it_and_is_git_ignored(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    register(monkeypatch, archive.as_uri(), "toy.zip", sha256(archive))
    monkeypatch.delenv("BANET_DATA_DIR", raising=False)
    checkout = tmp_path / "checkout"  # a stand-in for the repository: pyproject.toml, data/, notebooks/
    (checkout / "data").mkdir(parents=True)
    (checkout / "notebooks").mkdir()
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(data, "_CHECKOUT", checkout)
    monkeypatch.chdir(checkout / "notebooks")
    folder = data.resolve_data("toy", None)
    assert folder == checkout / "data" / "toy" and len(data.find_pairs(folder)) == 3
    assert not any((checkout / "notebooks").iterdir())


@pytest.mark.parametrize(
    "path, ignored",
    [
        ("data/kvasir-seg/Kvasir-SEG/images/a.jpg", True),
        ("data/isic2018/ISIC2018_Task1-2_Training_Input.zip.part", True),
        ("data/kvasir-seg.zip", True),
        ("notebooks/data/kvasir-seg/Kvasir-SEG/images/a.jpg", True),
        ("notebooks/runs/05_train/best.pt", True),
        ("runs/banet/last.pt", True),
        ("benchmarks/runs/gpu_check/05_train.ipynb", True),
        ("data/README.md", False),
        ("data/synthetic/images/synth_0000.png", False),
        ("data/synthetic/split.csv", False),
        ("notebooks/05_train.ipynb", False),
    ],
)
def test_gitignore_covers_every_data_and_run_folder(path, ignored):
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO)
    assert proc.returncode == (0 if ignored else 1), path


def test_a_complete_part_file_is_hashed_in_chunks_not_read_whole(tmp_path, monkeypatch):
    archive = dataset_zip(tmp_path / "toy.zip")
    payload = archive.read_bytes()
    real_read_bytes = Path.read_bytes

    def guarded_read_bytes(self):
        assert not self.name.endswith((".part", ".zip")), f"{self.name} read into memory whole"
        return real_read_bytes(self)

    handler = type("Handler", (RangeHandler,), {"payload": payload, "ignore_range": False})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        register(monkeypatch, f"http://127.0.0.1:{server.server_port}/toy.zip", "toy.zip", sha256(archive))
        root = tmp_path / "data"
        (root / "toy").mkdir(parents=True)
        (root / "toy" / "toy.zip.part").write_bytes(payload)  # complete: the server answers 416
        monkeypatch.setattr(Path, "read_bytes", guarded_read_bytes)
        folder = data.download("toy", root=root, progress=False)
        assert len(data.find_pairs(folder)) == 3
    finally:
        server.shutdown()
        server.server_close()


def test_hash_while_streaming_equals_the_file_hash_over_several_chunks(tmp_path, monkeypatch):
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(0).integers(0, 256, 3 * (1 << 20) + 123, dtype=np.uint8).tobytes())
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    data._fetch(big.as_uri(), dest, expected, progress=False)  # raises on a mismatch
    assert data._sha256_file(dest) == expected and not dest.with_name("big.bin.part").exists()


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
