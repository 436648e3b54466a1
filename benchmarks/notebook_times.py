"""How long each notebook takes to run top to bottom: the course's CPU minutes.

    python benchmarks/notebook_times.py                  # every notebook, in order
    python benchmarks/notebook_times.py 02 05            # some of them

Each notebook runs as a reader's Run All does, in a fresh kernel from notebooks/ (`jupyter nbconvert
--execute`, kernel start included, the stored copy left untouched; the output goes to a temp folder) with
no notebooks/runs/ folder, so nothing is resumed: the script refuses to start while one exists (it may hold a
reader's runs) and removes the one each notebook makes. Each time is a line in benchmarks/results/notebooks.jsonl
(`common.record`: command, date, torch, threads, CPU). Measure on a quiet machine: other work on the CPU
shows up in these times one for one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import record  # benchmarks/common.py: this folder is sys.path[0]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help="notebook numbers (default: all)")
    args = parser.parse_args(argv)
    paths = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not args.which or p.name[:2] in args.which)
    if not paths:
        parser.error(f"no notebook numbered {' '.join(args.which)} in {NOTEBOOKS}")
    if (NOTEBOOKS / "runs").exists():
        parser.error(f"{NOTEBOOKS / 'runs'} exists: move it away first (the notebooks would resume from it)")
    with tempfile.TemporaryDirectory() as out:
        for path in paths:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                            "--ExecutePreprocessor.timeout=1800", "--output-dir", out, path.name],
                           cwd=NOTEBOOKS, check=True, capture_output=True)
            seconds = time.perf_counter() - started
            shutil.rmtree(NOTEBOOKS / "runs", ignore_errors=True)  # what this notebook wrote
            record("notebooks", {"notebook": path.stem, "seconds": round(seconds, 1),
                                 "load_average_1min": round(os.getloadavg()[0], 2)})  # was anything else running?
            print(f"{path.stem}: {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
