"""The browser test's harness: a JupyterLab server of its own, and the page as one look per poll.

    running_lab(tmp_path, notebook)       JupyterLab on 127.0.0.1, a free port and a random token, with its
                                          own config, settings and runtime folders, serving a copy of the
                                          notebook (outputs cleared); stopped, kernels too, however it ends
    PAGE_STATE_JS                         what the page shows now: picture, caption, kernel, cells, errors
    wait_for_kernel, run_all_cells,       what a student does and waits for; each fails the test with the
    wait_for_explorer, wait_for_run_end,  page's state (`describe`) when it does not come
    wait_for_new_picture

test_explorer_in_jupyterlab.py holds what is tested: the explorers, their controls and the steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_S = 90  # JupyterLab answering /api/status
KERNEL_READY_S = 120  # the notebook open with an idle kernel
RUN_ALL_S = float(os.environ.get("BANET_BROWSER_RUN_S", 900))  # Run All Cells until the whole run is over
CHANGE_S = 90  # one control change -> a new picture from the kernel
FINISHED_GRACE_S = 30  # the notebook finished without an explorer: wait this long for a late widget view

# ---------------------------------------------------------------------------------------------------------
# JupyterLab server: start on a free port with a random token, stop it and its kernels afterwards
# ---------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, method: str = "GET", timeout: float = 5.0):
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as r:
        body = r.read()
    return json.loads(body) if body else None


def _children(pid: int) -> list[tuple[int, str]]:
    """Direct and indirect children of `pid` as (pid, start time) from /proc (kernels start new sessions,
    so a process group would miss them). Empty where /proc is missing."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _alive(pid: int, start: str) -> bool:
    """Still the same process (a reused pid has another start time) and not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"


def _stop(proc: subprocess.Popen, base: str, token: str) -> None:
    """Shut the kernels down through the API, then terminate (later kill) the server and any leftovers."""
    if proc.poll() is None:
        try:
            for kernel in _get_json(f"{base}/api/kernels?token={token}") or []:
                _get_json(f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE", timeout=15)
        except (OSError, ValueError):
            pass  # the server is going anyway; leftovers are killed below
    leftovers = _children(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [(pid, start) for pid, start in leftovers if _alive(pid, start)]
        for pid, _ in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [(pid, start) for pid, start in alive if _alive(pid, start)]


def log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no server log)"


def _write_settings(folder: Path) -> None:
    """User settings for this lab only: no news or update checks, every cell kept in the DOM."""
    settings = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def _copy_notebook(source: Path, target: Path) -> None:
    """The notebook without outputs or saved widget state: everything on the page comes from this run."""
    nb = json.loads(source.read_text())
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.write_text(json.dumps(nb, indent=1))


@contextlib.contextmanager
def running_lab(tmp_path: Path, notebook: Path):
    """JupyterLab serving a copy of `notebook` from tmp_path/work; yields (base url, token, work dir, server
    log), and stops the server and its kernels however the block ends."""
    work = tmp_path / "work"
    work.mkdir()
    _copy_notebook(notebook, work / notebook.name)
    _write_settings(tmp_path / "lab-settings")

    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel picks its inline backend, as for a student
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "jupyter-config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "jupyter-runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "lab-workspaces")
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: kernel state and cell errors
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups
    ]
    if os.geteuid() == 0:  # containers and CI often run as root; JupyterLab refuses that without the flag
        cmd.append("--allow-root")
    log_path = tmp_path / "jupyterlab.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{log_tail(log_path)}")
            try:
                _get_json(f"{base}/api/status?token={token}", timeout=2)
                break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log_tail(log_path)}")
            time.sleep(0.5)
        yield base, token, work, log_path
    finally:
        _stop(proc, base, token)


# ---------------------------------------------------------------------------------------------------------
# The page: one look at notebook, kernel and explorer per poll
# ---------------------------------------------------------------------------------------------------------

# What the page shows now: the explorer's picture, the notebook's kernel and cells, errors, dialogs.
# Called with {name: the notebook's file name, box: the explorer's CSS class}.
PAGE_STATE_JS = """
({name, box: boxClass}) => {
  const s = {src: null, width: 0, caption: '', kernel: null, queued: 0, unrun: 0, errors: [], dialog: null,
             app: !!window.jupyterapp};
  const box = document.querySelector('.' + boxClass);
  const img = box && box.querySelector('img.banet-view, .banet-view img');
  if (img) { s.src = img.getAttribute('src'); s.width = img.complete ? img.naturalWidth : 0; }
  const caption = box && box.querySelector('.banet-caption');
  if (caption) s.caption = caption.innerText;
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) s.dialog = dialog.innerText;
  if (!window.jupyterapp) return s;
  let panel = null;
  for (const w of window.jupyterapp.shell.widgets('main'))
    if (w.context && w.context.path === name) panel = w;
  if (!panel) return s;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  s.kernel = kernel ? kernel.status : null;
  panel.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    if (prompt && prompt.textContent.includes('*')) s.queued += 1;
    if (cell.model.sharedModel.getSource().trim() && cell.model.executionCount === null) s.unrun += 1;
    for (const out of cell.model.outputs.toJSON())
      if (out.output_type === 'error')
        s.errors.push(`cell ${i}: ${out.ename}: ${out.evalue}\\n${(out.traceback || []).join('\\n')}`);
  });
  return s;
}
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def describe(state: dict) -> str:
    """A failure message's tail: kernel, cells, the last error's traceback, an open dialog."""
    lines = [f"kernel: {state.get('kernel')}, cells queued: {state.get('queued')}, "
             f"code cells not run: {state.get('unrun')}, explorer src: {(state.get('src') or '')[:40]!r}"]
    if state.get("errors"):
        lines.append("last notebook error:\n" + ANSI.sub("", state["errors"][-1])[-4000:])
    if state.get("dialog"):
        lines.append(f"dialog on the page: {state['dialog'][:500]}")
    return "\n".join(lines)


def wait_for_kernel(page, where: dict) -> None:
    deadline, state = time.monotonic() + KERNEL_READY_S, {}
    while time.monotonic() < deadline:
        state = page.evaluate(PAGE_STATE_JS, where)
        if not state["app"] and page.locator(".jp-LabShell").count():
            pytest.fail("JupyterLab does not expose window.jupyterapp (--LabApp.expose_app_in_browser)")
        if state["kernel"] == "idle":
            return
        if state["dialog"]:  # e.g. "Select Kernel": the notebook's kernelspec is not installed
            pytest.fail(f"a dialog blocks the notebook before it runs:\n{state['dialog'][:500]}")
        time.sleep(1)
    pytest.fail(f"the notebook's kernel was not ready within {KERNEL_READY_S} s\n{describe(state)}")


def run_all_cells(page) -> None:
    """The Run menu, as a student would."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def wait_for_explorer(page, where: dict, start: float) -> dict:
    """Poll until the explorer shows a decoded picture; fail early when the run stopped without one."""
    name, finished_since = where["name"], None
    while True:
        state = page.evaluate(PAGE_STATE_JS, where)
        if state["src"] and state["width"] > 0:
            return state
        if state["kernel"] in ("dead", "unknown"):
            pytest.fail(f"the kernel died while running the notebook\n{describe(state)}")
        if state["dialog"]:
            pytest.fail(f"a dialog interrupted the notebook run:\n{state['dialog'][:500]}")
        stopped = state["kernel"] == "idle" and state["queued"] == 0
        if stopped and state["errors"]:
            pytest.fail(f"a cell of {name} raised and Run All stopped before the explorer showed\n"
                        f"{describe(state)}")
        if stopped and state["unrun"] == 0:
            finished_since = finished_since or time.monotonic()
            if time.monotonic() - finished_since > FINISHED_GRACE_S:
                pytest.fail(f"{name} ran to the end but no .{where['box']} with a picture appeared\n"
                            f"{describe(state)}")
        else:
            finished_since = None
        if time.monotonic() - start > RUN_ALL_S:
            pytest.fail(f"no explorer picture within {RUN_ALL_S:.0f} s of Run All Cells "
                        f"(set BANET_BROWSER_RUN_S for slower machines)\n{describe(state)}")
        time.sleep(1)


def wait_for_run_end(page, where: dict, start: float) -> dict:
    """Wait until Run All is over (kernel idle, no cell queued): until then the widget's messages queue
    in the kernel behind the remaining cells, so a click would only be answered after all of them."""
    calm = 0
    while True:
        state = page.evaluate(PAGE_STATE_JS, where)
        if state["kernel"] in ("dead", "unknown"):
            pytest.fail(f"the kernel died while running the notebook\n{describe(state)}")
        if state["dialog"]:
            pytest.fail(f"a dialog interrupted the notebook run:\n{state['dialog'][:500]}")
        calm = calm + 1 if state["kernel"] == "idle" and state["queued"] == 0 else 0
        if calm >= 3:  # three looks a second apart: not just the gap between two cells
            return state
        if time.monotonic() - start > RUN_ALL_S:
            pytest.fail(f"Run All Cells did not finish within {RUN_ALL_S:.0f} s "
                        f"(set BANET_BROWSER_RUN_S for slower machines)\n{describe(state)}")
        time.sleep(1)


def wait_for_new_picture(page, where: dict, old_src: str, what: str, caption: str = "") -> dict:
    """Poll until the picture is a new one and its caption holds `caption`: the picture and the caption are
    two widgets, updated by two messages, so one may arrive a moment before the other."""
    deadline = time.monotonic() + CHANGE_S
    while True:
        state = page.evaluate(PAGE_STATE_JS, where)
        new = state["src"] and state["src"] != old_src and state["width"] > 0
        if new and caption in state["caption"].replace("\xa0", " "):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"no new picture captioned {caption!r} within {CHANGE_S} s after {what}\n"
                        f"{describe(state)}")
        time.sleep(0.5)
