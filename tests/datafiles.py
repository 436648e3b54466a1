"""Tiny image files, archives and a toy dataset registry entry for the data tests (made in tmp_path)."""

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from banet_lite import data


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
