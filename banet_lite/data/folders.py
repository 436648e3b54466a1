"""Folder datasets: find image/mask pairs, read them, split them.

    find_pairs(root)       -> [Pair(stem, image, mask)]   generic, Kvasir-SEG, ISIC 2018 or PH2
                           layout
    load_image(path)       uint8 (H, W, 3)
    mask_values(path)      a mask file's raw values, (H, W), before binarisation
                           (checks.py reads them)
    load_mask(path)        uint8 (H, W) in {0, 1}
    read_split_csv(root)   split.csv as {stem: "train" | "val" | "test"}, or None
    split_pairs(pairs)     {"train", "val", "test"}: split.csv's, else a seeded draw

checks.py checks a whole folder with these (`validate_pairs`, `load_splits`, `check_data`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DatasetError

#
# Supported layouts (`find_pairs` tries them in this order):
#
#   generic      root/images/<stem>.<ext> + root/masks/<stem>.<ext>  (a mask may also be
#                <stem>_mask, <stem>_segmentation or <stem>_lesion); also one level down,
#                e.g. root/Kvasir-SEG/images
#   ISIC 2018    root/*Task1*Input*/ISIC_0000000.jpg +
#                root/*Task1*GroundTruth*/ISIC_0000000_segmentation.png
#   PH2          root/**/PH2 Dataset images/IMD002/IMD002_Dermoscopic_Image/IMD002.bmp
#                                         .../IMD002/IMD002_lesion/IMD002_lesion.bmp
#
# Hidden files and files without an image extension (.DS_Store, Thumbs.db, LICENSE.txt) are ignored.
# A file *with* an image extension that does not decode is an error, found by `validate_pairs`.

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# a mask's stem may be the image stem plus one
MASK_SUFFIXES = ("_mask", "_segmentation", "_lesion")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Pair:
    """One image and its mask (None when no mask was found; `validate_pairs` reports it)."""

    stem: str
    image: Path
    mask: Path | None


def _image_files(folder: Path) -> list[Path]:
    """Visible files with an image extension directly in `folder`, sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def _by_stem(files: Iterable[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise DatasetError(f"{p}: another file has the same stem "
                               f"{p.stem!r} ({out[p.stem].name})")
        out[p.stem] = p
    return out


def _match(images: dict[str, Path], masks: dict[str, Path]) -> list[Pair]:
    """Pair each image with the mask of the same stem (or the stem plus a MASK_SUFFIXES entry)."""
    pairs = []
    for stem, image in sorted(images.items()):
        candidates = [stem] + [stem + suffix for suffix in MASK_SUFFIXES]
        mask = next((masks[c] for c in candidates if c in masks), None)
        pairs.append(Pair(stem, image, mask))
    return pairs


def _visible_dirs(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.glob(pattern)
                  if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _has_images_and_masks(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def find_pairs(root: str | Path) -> list[Pair]:
    """All image/mask pairs under `root`, sorted by stem; [] when no known layout matches."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")

    # Generic images/ + masks/, in root itself or in exactly one subfolder
    # (Kvasir-SEG/ from the zip).
    folders = [root] if _has_images_and_masks(root) else [
        d for d in _visible_dirs(root) if _has_images_and_masks(d)
    ]
    if len(folders) > 1:
        names = ", ".join(d.name for d in folders)
        raise DatasetError(f"{root}: several subfolders hold images/ + masks/ "
                           f"({names}); pass one of them")
    if folders:
        images = _by_stem(_image_files(folders[0] / "images"))
        return _match(images, _by_stem(_image_files(folders[0] / "masks")))

    # ISIC 2018 Task 1: input and ground-truth folders side by side (training, validation and test).
    inputs, truths = (_visible_dirs(root, "*Task1*Input*"),
                      _visible_dirs(root, "*Task1*GroundTruth*"))
    if inputs:
        images = _by_stem(p for d in inputs for p in _image_files(d))
        return _match(images, _by_stem(p for d in truths for p in _image_files(d)))

    # PH2: one folder per case, somewhere at most three levels down.
    name = "PH2 Dataset images"
    found = [root] if root.name == name else []
    found += [d for depth in ("", "*/", "*/*/") for d in sorted(root.glob(depth + name))
              if d.is_dir()]
    pairs = []
    for case in _visible_dirs(found[0]) if found else []:
        stem = case.name
        image = _find_file(case / f"{stem}_Dermoscopic_Image", stem)
        if image is not None:
            pairs.append(Pair(stem, image, _find_file(case / f"{stem}_lesion", f"{stem}_lesion")))
    return pairs


def _find_file(folder: Path, stem: str) -> Path | None:
    """The image file named `stem` (any image extension) in `folder`, if there is one."""
    if not folder.is_dir():
        return None
    return next((p for p in _image_files(folder) if p.stem == stem), None)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow image -> uint8 (H, W, 3): 16-bit scaled to 8-bit, alpha dropped, palette
    expanded."""
    # 16-bit ("I;16", "I;16B") or 32-bit int ("I"): full range -> 0..255
    if im.mode.startswith("I"):
        gray = (np.asarray(im, dtype=np.float32) / 257.0).clip(0, 255).round().astype(np.uint8)
    elif im.mode == "F":  # float: [0, 1] or [0, 255]
        a = np.asarray(im, dtype=np.float32)
        gray = (a * (255.0 if a.max() <= 1.0 else 1.0)).clip(0, 255).round().astype(np.uint8)
    else:
        if im.mode in ("P", "PA"):
            # expands the palette, keeps palette transparency out of the way
            im = im.convert("RGBA")
        # RGBA/LA: alpha dropped; L/1: replicated
        return np.array(im.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _open(path: Path, draft_size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Open and fully decode an image, or raise a one-line DatasetError; also return its
    (width, height).

    Truncated files fail here, in `load()`. With `draft_size`, a JPEG is decoded at
    the smallest 1/2, 1/4 or 1/8 DCT scale that keeps both sides >= draft_size: several times
    faster, and still every byte is read. The size returned is the file's own size, before any such
    scaling.
    """
    try:
        im = Image.open(path)
        size = im.size
        try:
            if draft_size and im.format == "JPEG":
                im.draft(None, (draft_size, draft_size))
            im.load()
        except BaseException:
            im.close()
            raise
        return im, size
    except UnidentifiedImageError as e:
        raise DatasetError(f"{path}: not an image file (Pillow cannot identify it)") from e
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: file not found") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: cannot decode image, truncated or corrupt ({e})") from e


def load_image(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """Read an image as uint8 (H, W, 3): RGB, grayscale, RGBA, palette and 16-bit files all work."""
    im, _ = _open(Path(path), draft_size)
    with im:
        return _to_rgb(im)


def _mask_array(im: Image.Image) -> np.ndarray:
    """A decoded mask as one 2-D array of its values: palette indices when they are 0/1 labels, else
    gray levels (colour masks converted to grayscale); 16-bit and float masks keep their own
    values."""
    if im.mode == "P":
        a = np.asarray(im)  # palette indices
        return a if a.max() <= 1 else np.asarray(im.convert("L"))
    if im.mode in ("L", "F") or im.mode.startswith("I"):
        return np.asarray(im)
    return np.asarray(im.convert("L"))  # "1", RGB, RGBA, LA, CMYK, ...


def mask_values(path: str | Path, draft_size: int | None = None) -> np.ndarray:
    """A mask file's values before binarisation, (H, W): what `checks.mask_problem` judges."""
    im, _ = _open(Path(path), draft_size)
    with im:
        return _mask_array(im)


def binarize(values: np.ndarray, foreground: int | None = None) -> np.ndarray:
    """Mask values -> uint8 (H, W) in {0, 1}. With `foreground`, the lesion is exactly that value
    (label masks, e.g. 2 in {0, 1, 2}); without, labels if the largest value is <= 1, else > 127
    (0/255 masks, JPEG noise)."""
    if foreground is not None:
        return (values == foreground).astype(np.uint8)
    return (values > (0.5 if values.max() <= 1 else 127)).astype(np.uint8)


def load_mask(path: str | Path, draft_size: int | None = None,
              foreground: int | None = None) -> np.ndarray:
    """Read a mask as uint8 (H, W) in {0, 1} (`binarize`: the value `foreground` when given,
    else 0/1 labels or > 127). Whether the values were binary to begin with is
    `checks.mask_problem`'s question, asked before training and evaluation."""
    return binarize(mask_values(path, draft_size), foreground)


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding."""
    with Image.open(path) as im:
        return im.size


def _decoded_size(path: Path) -> tuple[int, int]:
    """(width, height) of a file that fully decodes (JPEGs at 1/8 scale: same bytes, less work)."""
    im, size = _open(path, draft_size=1)
    im.close()
    return size


def read_split_csv(root: str | Path, stems: Iterable[str] | None = None) -> dict[str, str] | None:
    """`root/split.csv` as {stem: "train" | "val" | "test"}, or None if there is no such file.

    The file has the header `stem,split`. Bad values, duplicate stems and (when `stems` is given)
    stems that are not in the dataset raise DatasetError naming split.csv and the line.
    """
    path = Path(root) / "split.csv"
    if not path.is_file():
        return None
    known = set(stems) if stems is not None else None
    split_map: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["stem", "split"]:
            raise DatasetError(f"{path}: line 1: header must be 'stem,split', "
                               f"got {','.join(header)!r}")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise DatasetError(f"{path}: line {line}: expected "
                                   f"'stem,split', got {','.join(row)!r}")
            stem, split = row[0].strip(), row[1].strip()
            if split not in SPLITS:
                raise DatasetError(f"{path}: line {line}: split must be train, "
                                   f"val or test, got {split!r}")
            if stem in split_map:
                raise DatasetError(f"{path}: line {line}: stem {stem!r} is listed twice")
            if known is not None and stem not in known:
                raise DatasetError(f"{path}: line {line}: stem {stem!r} has no image/mask pair")
            split_map[stem] = split
    return split_map


def _take(pairs: list[Pair], fraction: float,
          rng: np.random.Generator) -> tuple[list[Pair], list[Pair]]:
    """Split off a random `fraction` of `pairs`: (rest, taken), both kept in stem order."""
    chosen = set(rng.permutation(len(pairs))[: round(fraction * len(pairs))].tolist())
    rest = [p for i, p in enumerate(pairs) if i not in chosen]
    return rest, [p for i, p in enumerate(pairs) if i in chosen]


def split_pairs(
    pairs: Sequence[Pair],
    split_map: dict[str, str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> dict[str, list[Pair]]:
    """Split pairs into {"train", "val", "test"}, deterministically.

    With `split_map` (from split.csv) its train/val/test assignment is used; every pair needs a row.
    If it has no "val" rows, val is a seeded `val_fraction` of train (never taken from test).
    Without a split map, a seeded `test_fraction` of all pairs is test, then `val_fraction`
    of the rest is val.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ConfigError("val_fraction/test_fraction: must be in [0, 1), got "
                          f"{val_fraction}/{test_fraction}")
    pairs = sorted(pairs, key=lambda p: p.stem)
    rng = np.random.default_rng(seed)
    if split_map is None:
        train, test = _take(pairs, test_fraction, rng)
        train, val = _take(train, val_fraction, rng)
        return {"train": train, "val": val, "test": test}

    missing = [p.stem for p in pairs if p.stem not in split_map]
    if missing:
        raise DatasetError(f"split.csv: {len(missing)} pairs have no row, e.g. {missing[0]!r}")
    unknown = sorted(set(split_map) - {p.stem for p in pairs})
    if unknown:
        raise DatasetError(f"split.csv: {len(unknown)} rows have no image/mask "
                           f"pair, e.g. {unknown[0]!r}")
    parts = {split: [p for p in pairs if split_map[p.stem] == split] for split in SPLITS}
    if not parts["val"]:
        parts["train"], parts["val"] = _take(parts["train"], val_fraction, rng)
    return parts
