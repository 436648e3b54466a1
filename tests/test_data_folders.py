"""Tests for banet_lite.data.folders: layouts, image and mask reading, validation, split.csv, seeded splits."""

from pathlib import Path

import numpy as np
import pytest
from datafiles import blob_mask, make_generic, rgb, save
from PIL import Image

from banet_lite import data
from banet_lite.data import DatasetError, Pair

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
