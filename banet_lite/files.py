"""Writing files so that no reader ever sees half of one, and the package's one CSV format.

    atomic_write(path, data)   write to `.<name>.<pid>.tmp` next to `path`, then `os.replace`
                               (atomic on one file system: the old file or the new one, never a mix)
    write_csv(path, rows)      list of dicts -> CSV (floats as %.6g), atomically
    read_csv(path)             CSV -> list of dicts, numbers parsed back (int, else float, else text)

history.csv (one row per epoch) and per_image.csv (one row per image) are both written and read here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[Path], object], fsync: bool = False) -> Path:
    """Write `data` (bytes, text, or a function that writes the file it is given) to `path` atomically.

    With `fsync`, the bytes reach the disk before the rename (checkpoints: a power cut leaves the old one).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if callable(data):
            data(tmp)  # e.g. lambda tmp: image.save(tmp, format="PNG")
        else:
            with open(tmp, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left behind when writing failed
    return path


def write_csv(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Rows of a table as CSV, the union of their keys as columns, floats as %.6g; atomically."""
    rows = list(rows)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return atomic_write(path, text.getvalue())


def _parse(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def read_csv(path: str | os.PathLike, text_columns: Iterable[str] = ("stem", "split")) -> list[dict]:
    """A CSV written by `write_csv`: numbers parsed (int, else float), `text_columns` kept as text
    (a stem such as "0001" stays a name), empty cells left out of their row."""
    keep = set(text_columns)
    with open(path, newline="") as f:
        return [{k: v if k in keep else _parse(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def save_png(image, path: str | os.PathLike) -> Path:
    """A Pillow image (or a uint8 array: (H, W) gray, (H, W, 3) RGB) as a PNG file, atomically."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
