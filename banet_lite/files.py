"""Writing files so that no reader ever sees half of one, and the package's one CSV format.

    atomic_write(path, data)   write to `.<name>.<pid>.tmp` next to `path`, then `os.replace`
                               (atomic on one file system: the old file or the new one, never a mix)
    check_writable(folder)     before any work: can `folder` be created and written? (a probe file)
    make_folder(folder)        mkdir -p, with a one-line error naming the path
    json_text(obj)             JSON with null, never NaN or Infinity (not JSON)
    write_csv(path, rows)      list of dicts -> CSV (floats as %.6g), atomically
    read_csv(path)             CSV -> list of dicts, numbers parsed back (int, else float, else
                               text)

history.csv (one row per epoch) and per_image.csv (one row per image) are both written and read
here. A file or folder that cannot be written (read-only, disk full, a file where a folder should
be) is an `OutputError`: one line naming the path, the first error (a failed clean-up never hides
it).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import OutputError

# errno -> what to tell the user; anything else: the system's own words (strerror)
REASONS = {
    getattr(errno, name): why for name, why in (
        ("ENOSPC", "no space left on the device"), ("EDQUOT", "disk quota exceeded"),
        ("EROFS", "read-only file system"), ("EACCES", "permission denied"),
        ("EPERM", "permission denied"), ("ENOTDIR", "a file stands where a folder should be"),
        ("EEXIST", "a file stands where a folder should be"),
        ("EISDIR", "a folder stands where a file should be"),
        ("ENOENT", "its folder does not exist"),
    ) if hasattr(errno, name)
}


def reason(exc: OSError) -> str:
    """An OSError in a few words: "no space left on the device", "permission denied", ..."""
    return REASONS.get(exc.errno, exc.strerror or str(exc))


def _remove_quietly(path: Path) -> None:
    """Clean-up after a failure: it must never raise over the error that made it necessary."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[Path], object],
                 fsync: bool = False) -> Path:
    """Write `data` (bytes, text, or a function that writes the file it is given) to `path`
    atomically.

    With `fsync`, the bytes reach the disk before the rename (checkpoints: a power cut leaves
    the old one). A file-system error (read-only, disk full, no such folder) becomes one
    `OutputError` naming `path`; the temporary file is removed and `path` keeps its old content.
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
    except OSError as exc:
        _remove_quietly(tmp)
        # not the file system's (e.g. Pillow's own)
        if exc.errno is None or isinstance(exc, OutputError):
            raise
        raise OutputError(f"{path}: cannot write ({reason(exc)})") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    return path


def check_writable(folder: str | os.PathLike) -> Path:
    """Raise `OutputError` now, before any work, unless `folder` can be created and written: every
    path above it that exists must be a folder, and a probe file is written (and removed) in
    `folder`, or, while it does not exist yet, in the nearest folder above it. Creates nothing that
    stays."""
    folder = Path(folder)
    try:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent  # "runs/banet" -> "runs" -> "."
        if not existing.is_dir():
            where = "" if existing == folder else f" ({existing} is a file)"
            raise OutputError(f"{folder}: a file stands where a folder should be{where}")
        probe = existing / f".banet-probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            _remove_quietly(probe)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write there ({reason(exc)})") from exc
    return folder


def make_folder(folder: str | os.PathLike) -> Path:
    """`mkdir -p folder`, or one `OutputError` naming it (a file in the way, read-only, disk
    full)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the folder ({reason(exc)})") from exc
    return folder


def json_safe(obj):
    """`obj` with every NaN or infinite float replaced by None (JSON's null): NaN is not JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_text(obj, indent: int | None = 2) -> str:
    """Strict JSON text of `obj`: NaN and infinities as null (`json_safe`), never the non-JSON
    `NaN`."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False)


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


def read_csv(path: str | os.PathLike,
             text_columns: Iterable[str] = ("stem", "split")) -> list[dict]:
    """A CSV written by `write_csv`: numbers parsed (int, else float), `text_columns` kept as text
    (a stem such as "0001" stays a name), empty cells left out of their row."""
    keep = set(text_columns)
    with open(path, newline="") as f:
        return [{k: v if k in keep else _parse(v) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]


def save_png(image, path: str | os.PathLike) -> Path:
    """A Pillow image (or a uint8 array: (H, W) gray, (H, W, 3) RGB) as a PNG file, atomically."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
