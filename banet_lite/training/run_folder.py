"""A run's output folder: one run per folder, and run.log, the record of what the run printed.

    RUN_FILES                    what a run writes there: best.pt, last.pt, history.csv
                                 (and run.log)
    check_run_folder(out, ...)   `train` refuses a folder holding another run, unless it resumes
                                 that run or is told `--overwrite` (then the old run's files are
                                 removed first, so the folder never mixes two runs)
    run_log(cfg)                 what the run prints (stdout) also goes to <out>/run.log, appended,
                                 with a header, from its first epoch on; an error or an interruption
                                 is noted there
    resume_command(last)         the exact command that continues an interrupted run
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ..errors import BANetError, ConfigError, OutputError, TrainingError
from ..files import check_writable, reason
from .progress import EPOCH_LINE_START, settings_line

RUN_FILES = ("best.pt", "last.pt", "history.csv")  # their presence makes a folder hold a run
LOG_NAME = "run.log"


def held_run(out: str | Path) -> list[str]:
    """The files of a run that `out` holds already ([] for a new or empty folder)."""
    out = Path(out)
    return [name for name in RUN_FILES if (out / name).exists()] if out.is_dir() else []


def check_run_folder(out: str | Path, resume: str | None = None,
                     overwrite: bool = False) -> list[Path]:
    """Refuse (ConfigError) an `out` that holds another run, unless `resume` is that run's
    checkpoint or `overwrite` is set. Returns the files `clear_run_folder` must remove first
    (with `overwrite`), else []."""
    out, held = Path(out), held_run(out)
    if not held:
        return []
    if resume and Path(resume).resolve().parent == out.resolve():
        return []  # continuing the run this folder holds
    if not overwrite:
        raise ConfigError(f"{out}: holds another run ({', '.join(held)}); choose another --out, "
                          f"continue that run with --resume {out / 'last.pt'}, "
                          "or replace it with --overwrite")
    return [out / name for name in (*RUN_FILES, LOG_NAME) if (out / name).exists()]


def clear_run_folder(files: list[Path]) -> None:
    """Remove an old run's files (`check_run_folder` with overwrite), saying so."""
    for path in files:
        try:
            path.unlink()
        except OSError as exc:
            raise OutputError(f"{path}: cannot remove the old run's file ({reason(exc)})") from exc
    if files:
        print("--overwrite: removed the earlier run's "
              f"{', '.join(p.name for p in files)} from {files[0].parent}")


def resume_command(last: str | Path, extra: list[str] = ()) -> str:
    """`python -m banet_lite train --resume <last>` plus `extra` flags, quoted for a shell."""
    return " ".join(["python -m banet_lite train --resume", shlex.quote(str(last)),
                     *map(shlex.quote, extra)])


def interrupted_note(out: str | Path, extra: list[str] = ()) -> str:
    """What to do after Ctrl-C: the exact command that continues the run from its last.pt, if it has
    one."""
    last = Path(out) / "last.pt"
    if not last.is_file():
        return ("interrupted before the first checkpoint (no last.pt yet): nothing to resume; "
                "run the command again")
    return f"interrupted; continue the run with: {resume_command(last, extra)}"


class _Tee:
    """A text stream that writes to `stream` and to the log file at `path`. The file is opened
    (appended to) at the first epoch line, with everything printed before it: a run refused by
    a check before its first epoch (bad data, a checkpoint that does not fit) leaves its folder, and
    an earlier run.log, as they were."""

    def __init__(self, stream, path: Path, header: str):
        self.stream, self.path, self.pending, self.log = stream, path, [header], None

    def write(self, text: str) -> int:
        self.stream.write(text)
        if self.log is None:
            self.pending.append(text)
            if text.startswith(EPOCH_LINE_START):
                self._append("".join(self.pending), opening=True)
        else:
            self._append(text)
        return len(text)

    def _append(self, text: str, opening: bool = False) -> None:
        try:
            if opening:
                self.log = open(self.path, "a", encoding="utf-8")
            self.log.write(text)
            self.log.flush()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({reason(exc)})") from exc

    def note(self, line: str, begin: bool = False) -> None:
        """A last line (an error, an interruption) if the log was begun, or with `begin` in any case
        (an error of a run under way: disk full, a non-finite loss); never raises over the error it
        reports."""
        try:
            if self.log is None and begin:
                self._append("".join(self.pending), opening=True)
            if self.log is not None:
                self.log.write(line + "\n")
                self.log.close()
        except (OSError, OutputError):
            pass

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):  # isatty, encoding, fileno, ... of the real stream
        return getattr(self.stream, name)


def _header(cfg) -> str:
    cli = bool(sys.argv) and Path(sys.argv[0]).parts[-2:] == ("banet_lite", "__main__.py")
    command = (" ".join(["python -m banet_lite", *map(shlex.quote, sys.argv[1:])]) if cli
               else "fit() from Python")
    from .. import __version__

    return (f"# {time.strftime('%Y-%m-%d %H:%M:%S')}, banet-lite {__version__}: {command}\n"
            f"# settings: {json.dumps(asdict(cfg), default=str)}\n")


@contextmanager
def run_log(cfg):
    """The output folder of `cfg` (resolved) checked (`check_writable`); then, on rank 0, what is
    printed (stdout) within the block also goes to `<out>/run.log`, appended, after a header (date,
    version, command, every setting), from the settings line on (`_Tee`: the file begins at
    the first epoch). An error or Ctrl-C that ends the block is written there as the command line
    prints it. Yields whether this is rank 0."""
    check_writable(cfg.out)
    if int(os.environ.get("RANK", "0")) != 0:  # several processes: rank 0 prints and logs
        yield False
        return
    stdout = sys.stdout
    tee = sys.stdout = _Tee(stdout, Path(cfg.out) / LOG_NAME, _header(cfg))
    try:
        print(settings_line(cfg))
        yield True
    except KeyboardInterrupt:
        tee.note(interrupted_note(cfg.out))
        raise
    except BANetError as exc:
        # a check's refusal leaves no log; a failure of the run under way is logged
        tee.note(f"error: {exc}", begin=isinstance(exc, (OutputError, TrainingError)))
        raise
    finally:
        sys.stdout = stdout
        if tee.log is not None and not tee.log.closed:
            try:
                tee.log.close()
            except OSError:
                pass  # never over the error that ends the run
