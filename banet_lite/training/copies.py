"""Copies of a run's files in a second folder (`copy_to`): write locally, keep a copy on Google
Drive.

On Colab the runtime's disk is fast and lost with the runtime; a mounted Drive folder survives it
but is slow to write. The recipe: `out` on the local disk, `copy_to` on Drive. Each time `fit`
writes last.pt (every `checkpoint_every` epochs and when the run stops) it hands the run's files to
`RunCopies`, which copies those that changed since their last copy (last.pt, best.pt, history.csv)
into `copy_to`, each atomically (`.<name>.<pid>.tmp` next to it, fsynced, then renamed: a reader, or
a runtime that dies mid-copy, finds the old copy or the new one). The copying runs in a thread
beside the training, one batch of copies at a time: the next batch waits for the one before, and
the run's end waits for the last. To continue after a disconnect, resume from the copy:
`resume=".../copy_to/last.pt"` (with `out` on the local disk again).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

from ..errors import ConfigError, CopyError
from ..files import atomic_write

RUN_FILES = ("last.pt", "best.pt", "history.csv")


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy `src` to `dst` atomically, its bytes on the disk before the rename."""

    def write(tmp: Path) -> None:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())

    return atomic_write(dst, write)


class RunCopies:
    """A context manager that mirrors a run folder's files into `copy_to` (None: does nothing).

        with RunCopies(out, copy_to) as copies:
            ...; copies.submit()      # after each write of last.pt

    Leaving the block waits for the copy in flight; its error, if any, is raised there (a CopyError
    naming the file), unless the block is already leaving on an error of its own."""

    def __init__(self, out: str | os.PathLike, copy_to: str | os.PathLike | None, names=RUN_FILES):
        self.out, self.names = Path(out), tuple(names)
        self.copy_to = Path(copy_to) if copy_to else None
        # name -> (size, mtime_ns) of the source last copied
        self._copied: dict[str, tuple[int, int]] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> RunCopies:
        if self.copy_to is not None:
            try:
                self.copy_to.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"copy_to={str(self.copy_to)!r}: "
                                  f"cannot create the folder ({exc})") from exc
        return self

    def submit(self) -> None:
        """Copy, in the background, every run file that changed since its last copy
        (after the copy before)."""
        if self.copy_to is None:
            return
        self.wait()
        self._thread = threading.Thread(target=self._copy_changed, name="banet-copy-to",
                                        daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the copy in flight; raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _copy_changed(self) -> None:
        try:
            for name in self.names:
                src, dst = self.out / name, self.copy_to / name
                if not src.is_file():
                    continue
                stat = src.stat()
                if self._copied.get(name) == (stat.st_size, stat.st_mtime_ns):
                    continue  # unchanged since its last copy (best.pt between improvements)
                try:
                    copy_file(src, dst)
                except OSError as exc:
                    raise CopyError(f"{dst}: could not copy {name} there ({exc}); the run's own "
                                    f"files in {self.out} are whole") from exc
                self._copied[name] = (stat.st_size, stat.st_mtime_ns)
        except BaseException as exc:  # raised by wait(), in the training's thread
            self._error = exc

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.wait()
        else:  # the run is failing already: finish the copy in flight, keep the run's own error
            with contextlib.suppress(Exception):
                self.wait()
