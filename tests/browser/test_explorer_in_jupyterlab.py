"""The explorers in a real browser: notebooks in JupyterLab, driven by Chromium through Playwright.

Two explorers, one test each (the same steps, parametrized by EXPLORERS below):
  - notebook 06's map explorer (.banet-map-explorer): another stage, then another map
  - notebook 01's PEE explorer (.banet-pee-explorer): another stage, another window size, the other
    border rule

What it checks, the way a student would use it:
  1. JupyterLab opens a copy of the notebook (outputs cleared) with a fresh kernel
  2. Run > Run All Cells runs the notebook until the explorer's box shows a picture
  3. each change of a control (.banet-<control>: a button of a ToggleButtons, an option of a Dropdown)
     makes the kernel draw a new picture (the <img> src changes) whose caption names the new value
  4. a screenshot of the page is saved next to the test's temporary files (explorer.png)

Skips (and says why) only when Playwright's Python package or Debian's Chromium (/usr/bin/chromium) is
missing; browsers are never downloaded. The server and the page-watching helpers are jupyterlab_harness.py's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jupyterlab_harness as harness  # tests/browser/, on sys.path as the test's own folder
import pytest

try:
    from playwright import sync_api
except ImportError:  # the test skips, saying so (and fails where BANET_REQUIRE names "browser")
    sync_api = None

ROOT = harness.ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(sync_api is None, reason="the playwright package is not installed (pip install playwright)"),
    pytest.mark.skipif(not harness.CHROMIUM.is_file(),
                       reason=f"Chromium not found at {harness.CHROMIUM} (apt-get install chromium)"),
]


@dataclass(frozen=True)
class Step:
    """One control to change: `control` names its CSS class (banet-<control>); `kind` is "buttons" (click
    the first other button of a ToggleButtons) or "select" (choose the first other option of a Dropdown);
    the caption must then contain `caption.format(value=<the new value's label>)`."""

    control: str
    kind: str
    caption: str = "{value}"


@dataclass(frozen=True)
class ExplorerCase:
    notebook: str  # under notebooks/
    box: str  # the explorer's own CSS class: banet-<Explorer.name>-explorer
    steps: tuple[Step, ...]

    @property
    def path(self) -> Path:
        return ROOT / "notebooks" / self.notebook


EXPLORERS = {
    "map-06": ExplorerCase("06_evaluate_and_explore.ipynb", "banet-map-explorer",
                           (Step("stage", "buttons", "stage {value}"), Step("map", "select"))),
    "pee-01": ExplorerCase("01_backbone_and_pee.ipynb", "banet-pee-explorer",
                           (Step("stage", "buttons", "stage {value}"), Step("window", "buttons", "window {value}"),
                            Step("border_rule", "buttons"))),
}


@pytest.fixture(params=list(EXPLORERS), ids=list(EXPLORERS))
def case(request) -> ExplorerCase:
    """The notebook and explorer under test; a missing notebook fails the test, it never skips."""
    case = EXPLORERS[request.param]
    if not case.path.is_file():
        pytest.fail(f"{case.path.relative_to(ROOT)} does not exist; the browser test needs it")
    return case


@pytest.fixture
def lab(tmp_path, case):
    """JupyterLab serving a copy of the case's notebook: (base url, token, work dir, server log)."""
    with harness.running_lab(tmp_path, case.path) as served:
        yield served


def _where(case: ExplorerCase) -> dict:
    """PAGE_STATE_JS's argument for a case."""
    return {"name": case.path.name, "box": case.box}


def _change(page, explorer, where: dict, step: Step, old_src: str) -> dict:
    """Change one control to its first other value; wait for the new picture; check its caption."""
    control = explorer.locator(f".banet-{step.control}")
    assert control.count() == 1, f"the explorer has {control.count()} .banet-{step.control} controls, not one"
    if step.kind == "buttons":
        buttons = control.locator("button:not(.mod-active):not([disabled])")
        assert buttons.count() > 0, f"the {step.control} control (.banet-{step.control}) has no other button"
        value = buttons.first.inner_text().strip()
        buttons.first.click()
    elif step.kind == "select":
        select = control.locator("select")
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        options = [o for o in select.evaluate("s => [...s.options].map(o => o.text)") if o != current]
        assert options, f"the {step.control} control (.banet-{step.control}) offers nothing besides {current!r}"
        value = options[0]
        select.select_option(label=value)
    else:
        raise ValueError(f"unknown step kind {step.kind!r}")
    expected = step.caption.format(value=value).replace("\xa0", " ")  # ipywidgets shows spaces as no-break
    state = harness.wait_for_new_picture(page, where, old_src, f"choosing {step.control} {value!r}", expected)
    caption = state["caption"].replace("\xa0", " ")
    assert expected in caption, f"caption after choosing {step.control} {value!r}: {caption!r}"
    print(f"{step.control} -> {value!r}: new picture, caption {caption!r}")
    return state


def test_explorer_reacts_in_jupyterlab(case, lab, tmp_path):
    base, token, work, log_path = lab
    name, where = case.path.name, _where(case)
    screenshot = tmp_path / "explorer.png"
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(harness.CHROMIUM), headless=True,
            args=harness.CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{base}/lab/tree/{name}?token={token}", wait_until="domcontentloaded", timeout=120_000)
            page.locator(".jp-Notebook").first.wait_for(state="visible", timeout=harness.KERNEL_READY_S * 1000)
            harness.wait_for_kernel(page, where)
            start = time.monotonic()
            harness.run_all_cells(page)
            harness.wait_for_explorer(page, where, start)
            print(f"{case.box} shown {time.monotonic() - start:.0f} s after Run All Cells")
            state = harness.wait_for_run_end(page, where, start)
            print(f"{name} finished {time.monotonic() - start:.0f} s after Run All Cells")
            for error in state["errors"]:  # nbval reports these; this test is about the explorer
                print("notebook error after the explorer:", harness.ANSI.sub("", error)[:2000])

            explorer = page.locator(f".{case.box}").first
            explorer.scroll_into_view_if_needed()
            for step in case.steps:
                state = _change(page, explorer, where, step, state["src"])

            explorer.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot))
            print(f"screenshot: {screenshot}")
        except (Exception, pytest.fail.Exception):  # pytest.fail is no Exception: catch it too
            try:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"failure screenshot: {tmp_path / 'failure.png'}\nserver log:\n{harness.log_tail(log_path)}")
            except Exception:  # the original failure matters, not the screenshot
                pass
            raise
        finally:
            context.close()
    assert screenshot.stat().st_size > 0
