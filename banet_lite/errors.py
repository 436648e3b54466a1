"""The package's error base class: what the command line turns into one line on stderr.

Everything raised on purpose because of the user's input (a bad file, a missing folder, an
impossible option) derives from `BANetError`; `python -m banet_lite` prints `error: <message>` and
exits with 2, and a notebook (IPython, papermill) shows the same one line instead of a traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BANetError(Exception):
    """A user error with a one-line message, e.g. `"{path}: {what is wrong}"`."""

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: a notebook shows the message, not the library's insides
        (it is no bug)."""
        return [f"{type(self).__name__}: {self}"]


class ConfigError(BANetError, ValueError):
    """An option or a combination of options that cannot work (a ValueError too, so
    `except ValueError` catches it)."""


class DatasetError(BANetError, ValueError):
    """Bad or missing data. The message is one line: `"{path}: {what is wrong}"`."""


class CheckpointError(BANetError, ValueError):
    """A file that is not a readable banet-lite checkpoint."""


class MissingFileError(BANetError, FileNotFoundError):
    """A file the user named (a checkpoint, a weights file) does not exist."""


class DownloadError(BANetError, RuntimeError):
    """A download that could not be made (offline, HTTP error); the message says what to do
    instead."""


class WeightsError(BANetError, ValueError):
    """Backbone weights that cannot be read or do not fit the network."""


class OutputError(BANetError, OSError):
    """A file or folder that cannot be written (read-only, disk full, a file where a folder should
    be); the message names the path. Still an OSError, so code that catches OSError keeps
    working."""


class TrainingError(BANetError, FloatingPointError):
    """Training that cannot go on (a non-finite loss); the message names the last good
    checkpoint."""


class CopyError(BANetError, OSError):
    """A run's file that could not be copied into `copy_to` (training.copies); the run's own files
    are whole."""
