"""pytest configuration for the notebooks: `pytest --nbval notebooks/` needs no other flag.

nbval compares every stored output with a fresh run. sanitize.cfg (next to this file) replaces what
differs on every run without meaning anything (figure sizes, memory addresses, timings); it is used
unless `--nbval-sanitize-with` names another file.
"""

from pathlib import Path


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", None) is None and hasattr(config.option, "nbval_sanitize_with"):
        config.option.nbval_sanitize_with = str(Path(__file__).with_name("sanitize.cfg"))
