"""pytest configuration for the notebooks: `pytest --nbval notebooks/` needs no other flag.

nbval compares every stored output with a fresh run. sanitize.cfg (next to this file) replaces what
differs on every run without meaning anything (figure sizes, memory addresses, timings); it is used
unless `--nbval-sanitize-with` names another file. Under pytest-xdist (`-n auto --dist loadfile`: each
notebook stays on one worker, its cells in order) every notebook's kernel gets one thread, so that the
workers do not fight over the cores.
"""

import os
from pathlib import Path


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", None) is None and hasattr(config.option, "nbval_sanitize_with"):
        config.option.nbval_sanitize_with = str(Path(__file__).with_name("sanitize.cfg"))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the kernels nbval starts inherit this environment
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
