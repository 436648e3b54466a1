"""Test-suite rules shared by every test file.

Markers say what a test needs: `slow` (an end-to-end run), `browser` (Chromium and Playwright), `colab` (builds
a Colab-like environment from PyPI), `cuda` (a GPU). A test skips, saying why, when what it needs is missing.
Where that is not acceptable, `BANET_REQUIRE` lists the markers whose tests must run: `.ci/run` sets
`BANET_REQUIRE=browser,colab`, so CI fails, instead of passing green, when Chromium or PyPI is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Under pytest-xdist (`-n auto`, the README's test command) one worker per core: one thread each, here and
# in what they start (the CLI's subprocesses, torchrun), so that the workers do not fight over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
WATCHED = (ROOT, ROOT / "data", ROOT / "benchmarks")  # where a stray default path would land (the notebooks
# write their runs under notebooks/runs/, git-ignored, by design)


def _entries() -> set[Path]:
    return {p for folder in WATCHED if folder.is_dir() for p in folder.iterdir() if p.name != "__pycache__"}


@pytest.fixture(scope="session", autouse=True)
def tests_write_only_to_temporary_folders():
    """Every test writes under its tmp_path: a run that falls back to a default output folder (runs/banet)
    would otherwise leave it in the checkout. Fails the session, naming what appeared."""
    before = _entries()
    yield
    new = sorted(str(p.relative_to(ROOT)) for p in _entries() - before)
    assert not new, f"the tests left {new} in the checkout; write under tmp_path"


LONG = ("colab", "browser", "slow")  # a file of minutes: it builds a virtual environment, drives a browser, trains


def pytest_collection_modifyitems(config, items):
    """The long files first. Under xdist (`--dist loadfile`) files go to the workers in this order; the Colab
    test (4 minutes) started last would leave the other worker idle for most of that time."""
    items.sort(key=lambda item: not any(item.get_closest_marker(m) for m in LONG))  # stable: order kept within


REQUIRED = {m.strip() for m in os.environ.get("BANET_REQUIRE", "").split(",") if m.strip()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    required = sorted(REQUIRED & {m.name for m in item.iter_markers()})
    if report.skipped and required:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} skipped, but BANET_REQUIRE names {', '.join(required)}: "
                           f"this test must run here ({reason})")
