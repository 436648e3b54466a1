"""The notebooks on Colab, proved in a Colab-like environment.

What it does, as Colab would:
  1. a virtual environment with Colab's own versions of its Jupyter stack and scientific packages
     (tests/colab/constraints.txt, from the runtime's published `pip freeze`), ipywidgets 7.7.1 among them,
     plus the CPU build torch==2.13.0; no jupyterlab, no papermill. Built once into a cache folder keyed by
     the constraints file and reused, but its pins are checked every time and it is reset to how it was built
  2. a kernel from that environment with a stand-in `google.colab` on its path, imported at kernel start
     (Colab imports it before any user code); the stand-in's output.enable_custom_widget_manager() records
     that it was called
  3. each notebook's install cell (its first code cell), each in a fresh kernel, the notebooks in order, with
     BANET_LITE_INSTALL pointing at a copy of this checkout (a normal install, not editable): the first
     installs banet-lite, the others find it and skip; every one enables the widget manager; `pip freeze`
     before and after each shows that no pinned package (nor torch) changed version
  4. notebook 05 with one epoch (a cell after its `parameters` cell sets epochs, as papermill would; Colab
     has no papermill), then notebooks 06 and 02, with nbclient and that kernel, copied into a folder far
     from the checkout and with the network cut off inside the kernel (as Colab opens a notebook from
     GitHub: only the package installed, no clone beside it): no cell fails, the kernel imported
     ipywidgets 7.7.1, the map explorer is shown as a widget and its controls redraw the picture.

Skips, saying so, only where PyPI cannot be reached (pip fails with a network error); any other failure fails.
BANET_COLAB_CACHE sets the cache folder (default: the system's temporary folder).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONSTRAINTS = HERE / "constraints.txt"
DRIVER = HERE / "run_notebooks.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TORCH = "torch==2.13.0"  # the CPU build on this machine's disk stands in for Colab's torch (which is left alone)
CELL_TIMEOUT_S = 1800  # one cell of 05 or 06; 06's ablation cell takes about a minute on a quiet 2-core machine
ABSENT_ON_COLAB = ("jedi",)  # ipython pulls it in; Colab's freeze has none, so the environment has none either
NOT_ON_COLAB = ("jupyterlab", "papermill", "nbval")  # must not arrive with banet-lite either
RECIPE = f"v1 {TORCH} absent={','.join(ABSENT_ON_COLAB)} python={sys.version_info[:3]}"  # part of the cache key
pytestmark = pytest.mark.colab  # part of the README's test command; `-m "not colab"` leaves it out
NETWORK_ERROR = re.compile(  # how pip (urllib3) says it could not reach an index; a 404 or a build error is none
    r"NewConnectionError|ConnectTimeoutError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|ProxyError|ReadTimeoutError"
)

STUB_INIT = '"""Stand-in for Colab\'s google.colab package (tests/colab/test_colab_environment.py)."""\n'
STUB_OUTPUT = '''"""Stand-in for google.colab.output: records what the notebooks call."""

calls = []


def enable_custom_widget_manager():
    calls.append("enable_custom_widget_manager")


def disable_custom_widget_manager():
    calls.append("disable_custom_widget_manager")
'''
OFFLINE = '''"""No network in this kernel (loopback only): a notebook that needs a checkout or a download fails here."""
import socket

_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or "/" in host):
        raise OSError(f"network cut off for this test: no connection to {host}")
    return _connect(self, address)


socket.socket.connect = _loopback_only
'''
PROBE_BEFORE = """import importlib.util, json, sys
print("PROBE", json.dumps({"colab_at_start": "google.colab" in sys.modules,
                           "installed_before": importlib.util.find_spec("banet_lite") is not None}))"""
PROBE_AFTER = """import json, sys
import banet_lite, ipywidgets
from google.colab import output as _colab_output
print("PROBE", json.dumps({"banet_lite": banet_lite.__file__, "ipywidgets": ipywidgets.__version__,
                           "widget_manager": _colab_output.calls, "python": sys.executable}))"""
PROBE_EXPLORER = """import json, sys
import ipywidgets
c = explorer.controls
first = c["view"].value
c["stage"].value = 3 if c["stage"].value != 3 else 2  # another stage than the static view's
after_stage = c["view"].value
c["map"].value = "CFF gate"
print("PROBE", json.dumps({"ipywidgets": ipywidgets.__version__, "python": sys.executable,
                           "stage_redraws": after_stage != first, "map_redraws": c["view"].value != after_stage,
                           "caption": c["caption"].value}))"""


# ---------------------------------------------------------------------------------------------------------
# pip, and what counts as "PyPI cannot be reached"
# ---------------------------------------------------------------------------------------------------------


def _run(cmd: list, what: str, env: dict | None = None, timeout: float = 900) -> str:
    """Run a command; a failed pip run skips the test if pip could not reach an index, and fails it otherwise."""
    cmd = [str(c) for c in cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    out = done.stdout + done.stderr
    if done.returncode != 0:
        network = NETWORK_ERROR.search(out)
        if network is None and cmd[1:4] == ["-m", "pip", "install"]:  # without retries, pip says why only in -vv
            again = subprocess.run([*cmd, "-vv"], capture_output=True, text=True, env=env, timeout=timeout)
            network = None if again.returncode == 0 else NETWORK_ERROR.search(again.stdout + again.stderr)
        if network is not None:
            pytest.skip(f"PyPI cannot be reached ({what} failed with a network error: {network.group(0)})")
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{out[-5000:]}")
    return out


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_name(name)] = version
    return pins


def _freeze(python: Path) -> dict[str, str]:
    """name -> version (or the `@ URL` of a direct install), from `pip freeze --all` (pip and setuptools too)."""
    out = _run([python, "-m", "pip", "freeze", "--all"], "pip freeze")
    frozen = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
        elif " @ " in line:
            name, version = line.split(" @ ", 1)
        else:
            continue
        frozen[_name(name.strip())] = version.strip()
    return frozen


# ---------------------------------------------------------------------------------------------------------
# The Colab-like environment: built once per constraints file, reset and checked on every run
# ---------------------------------------------------------------------------------------------------------


def _cache_root() -> Path:
    key = hashlib.sha256(CONSTRAINTS.read_bytes() + RECIPE.encode()).hexdigest()[:16]
    base = Path(os.environ.get("BANET_COLAB_CACHE", tempfile.gettempdir()))
    return base / f"banet-colab-env-{key}"


def _build(root: Path) -> None:
    venv = root / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    (root / "pristine.json").unlink(missing_ok=True)
    _run([sys.executable, "-m", "venv", venv], "python -m venv")
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", f"pip=={_pins()['pip']}"], "installing Colab's pip")
    _run([python, "-m", "pip", "install", TORCH], f"installing {TORCH}")
    _run([python, "-m", "pip", "install", "-c", CONSTRAINTS, "-r", CONSTRAINTS], "installing Colab's pins")
    _run([python, "-m", "pip", "uninstall", "-y", "-q", *ABSENT_ON_COLAB], "removing what Colab does not have")
    (root / "pristine.json").write_text(json.dumps(_freeze(python), indent=1, sort_keys=True))


def _check_pins(frozen: dict[str, str], when: str, as_built: bool = False) -> None:
    wrong = {name: (version, frozen.get(name)) for name, version in _pins().items() if frozen.get(name) != version}
    assert not wrong, f"{when}: packages not at Colab's pins (pin, installed): {wrong}"
    assert frozen.get("torch", "").startswith("2.13.0"), f"{when}: torch is {frozen.get('torch')}"
    present = [name for name in (*(ABSENT_ON_COLAB if as_built else ()), *NOT_ON_COLAB) if name in frozen]
    assert not present, f"{when}: installed, though Colab has none: {present}"


def _colab_env(root: Path) -> Path:
    """The environment's python, reset to how it was built (what an earlier run installed is removed)."""
    python = root / "venv" / "bin" / "python"
    pristine_file = root / "pristine.json"
    if python.is_file() and pristine_file.is_file():
        pristine, frozen = json.loads(pristine_file.read_text()), _freeze(python)
        extra = sorted(set(frozen) - set(pristine))
        if extra:
            _run([python, "-m", "pip", "uninstall", "-y", "-q", *extra], "removing an earlier run's installs")
            frozen = _freeze(python)
        if frozen == pristine:
            return python
    _build(root)
    return python


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """The Colab-like environment and a kernel for it: python, the driver's environment variables, folders."""
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    lock = (root / "lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one test run at a time uses (or builds) this environment
    try:
        start = time.time()
        python = _colab_env(root)
        frozen = _freeze(python)
        _check_pins(frozen, "the environment as built", as_built=True)
        work = tmp_path_factory.mktemp("colab")

        stub = work / "stub" / "google" / "colab"  # `google` stays a namespace package, as on Colab
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text(STUB_INIT)
        (stub / "output.py").write_text(STUB_OUTPUT)
        startup = work / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-colab.py").write_text("import google.colab  # Colab imports it before any user code\n")
        (startup / "01-offline.py").write_text(OFFLINE)
        kernels = work / "jupyter" / "kernels" / "colab"
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (Colab-like)", "language": "python",
        }))
        source = work / "src" / "banet-lite"  # what `pip install` gets: a copy of the checkout's package
        source.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, source)
        shutil.copytree(ROOT / "banet_lite", source / "banet_lite",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "JUPYTER", "IPYTHON", "VIRTUAL_ENV", "MPLBACKEND", "CONDA"))}
        env.update({
            "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}",  # `!pip` is the environment's pip
            "VIRTUAL_ENV": str(python.parent.parent),
            "PYTHONPATH": str(work / "stub"),
            "PYTHONHASHSEED": "0",
            "IPYTHONDIR": str(work / "ipython"),
            "JUPYTER_PATH": str(work / "jupyter"),
            "JUPYTER_DATA_DIR": str(work / "jupyter-data"),
            "JUPYTER_CONFIG_DIR": str(work / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
            "BANET_LITE_INSTALL": str(source),
        })
        print(f"Colab-like environment ready in {time.time() - start:.0f} s: {root}")
        yield {"python": python, "env": env, "work": work, "pins": _pins()}
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _execute(colab: dict, notebook: Path, cwd: Path, timeout: float) -> tuple[dict, dict]:
    """Run one notebook in a fresh kernel of the Colab-like environment; (result, executed notebook)."""
    output = notebook.with_name(notebook.stem + ".out.ipynb")
    job = colab["work"] / f"job-{notebook.stem}.json"
    job.write_text(json.dumps({"kernel_name": "colab", "runs": [
        {"notebook": str(notebook), "output": str(output), "cwd": str(cwd), "timeout": timeout}]}))
    out = _run([colab["python"], DRIVER, job], f"nbclient on {notebook.name}", env=colab["env"],
               timeout=timeout * 3 + 300)
    results = [json.loads(line[len("RESULT "):]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 1, out[-3000:]
    return results[0], json.loads(output.read_text(encoding="utf-8"))


def _text(cell: dict) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            parts.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
        elif o["output_type"] == "error":
            parts.append("\n".join(o.get("traceback", [])))
    return "".join(parts)


def _probe(cell: dict) -> dict:
    lines = [line for line in _text(cell).splitlines() if line.startswith("PROBE ")]
    assert len(lines) == 1, _text(cell)
    return json.loads(lines[0][len("PROBE "):])


def _code_cell(source: str, tags: tuple = ()) -> dict:
    cell_id = "colab-" + hashlib.sha1(source.encode()).hexdigest()[:8]
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {"tags": list(tags)},
            "outputs": [], "source": source}


def _write(nb: dict, path: Path) -> Path:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# The tests (in file order: the install cells first, then 05 and 06 in the environment they leave)
# ---------------------------------------------------------------------------------------------------------


def test_install_cells_install_once_keep_colabs_stack_and_enable_widgets(colab):
    python, pins = colab["python"], colab["pins"]
    folder = colab["work"] / "install-cells"
    folder.mkdir()
    began = time.time()
    for i, path in enumerate(NOTEBOOKS):
        nb = json.loads(path.read_text(encoding="utf-8"))
        install = nb["cells"][1]
        assert install["cell_type"] == "code" and "google.colab" in "".join(install["source"])
        small = dict(nb, cells=[_code_cell(PROBE_BEFORE), dict(install, outputs=[], execution_count=None),
                                _code_cell(PROBE_AFTER)])
        before = _freeze(python)
        result, ran = _execute(colab, _write(small, folder / path.name), folder, timeout=600)
        after = _freeze(python)
        log = _text(ran["cells"][1])
        if not result["ok"] and NETWORK_ERROR.search(result["error"] + log):
            pytest.skip(f"PyPI cannot be reached (the install cell of {path.name} failed with a network error)")
        assert result["ok"], f"{path.name}: install cell failed:\n{result['error']}"
        assert "ERROR" not in log, f"{path.name}: pip reported an error in the install cell:\n{log}"

        start, end = _probe(ran["cells"][0]), _probe(ran["cells"][2])
        assert start["colab_at_start"], "google.colab was not imported at kernel start"
        assert start["installed_before"] == (i > 0), f"{path.name}: banet-lite installed before its cell ran: " \
            f"{start['installed_before']} (only the first notebook's cell should install it)"
        assert end["widget_manager"] == ["enable_custom_widget_manager"], end
        assert end["ipywidgets"] == pins["ipywidgets"] == "7.7.1", end
        assert Path(end["python"]).parent == python.parent, end  # the kernel ran in the Colab-like environment
        assert "site-packages" in end["banet_lite"] and not end["banet_lite"].startswith(str(ROOT)), end

        changed = {name: (before.get(name), after.get(name)) for name in [*pins, "torch"]
                   if before.get(name) != after.get(name)}
        assert not changed, f"{path.name}: the install cell changed pinned packages (before, after): {changed}"
        _check_pins(after, f"after the install cell of {path.name}")
        added = sorted(set(after) - set(before))
        if i == 0:
            assert "banet-lite" in added and after["banet-lite"].startswith("file://"), added
            print(f"{path.name}: the install cell added {added}")
        else:
            assert not added and before == after, f"{path.name}: the install cell changed the environment: {added}"
    print(f"{len(NOTEBOOKS)} install cells, each in a fresh kernel: {time.time() - began:.0f} s")


def test_notebooks_05_06_and_02_run_offline_from_the_installed_package(colab):
    python = colab["python"]
    frozen = _freeze(python)
    if "banet-lite" not in frozen:  # run alone (-k): install it the way the notebooks' cell does
        _run([python, "-m", "pip", "install", colab["env"]["BANET_LITE_INSTALL"]], "installing banet-lite")
    folder = colab["work"] / "notebooks"  # a copy of the two notebooks, run one after the other as a user would:
    folder.mkdir()  # 05 trains into runs/05_train; 06, with its defaults, evaluates the shipped course model

    nb05 = json.loads((ROOT / "notebooks" / "05_train.ipynb").read_text(encoding="utf-8"))
    at = next(i for i, c in enumerate(nb05["cells"]) if "parameters" in c.get("metadata", {}).get("tags", []))
    one_epoch = "# Parameters\nepochs = 1\n"
    nb05["cells"].insert(at + 1, _code_cell(one_epoch, tags=("injected-parameters",)))
    result05, ran05 = _execute(colab, _write(nb05, folder / "05_train.ipynb"), folder, timeout=CELL_TIMEOUT_S)
    assert result05["ok"], f"notebook 05 (one epoch) failed in the Colab-like environment:\n{result05['error']}"
    history = (folder / "runs" / "05_train" / "history.csv").read_text().splitlines()
    assert len(history) == 2, history  # a header and one epoch

    # 06 reads the benchmark records shipped inside the package: no clone beside it, no network
    nb06 = json.loads((ROOT / "notebooks" / "06_evaluate_and_explore.ipynb").read_text(encoding="utf-8"))
    nb06["cells"].append(_code_cell(PROBE_EXPLORER))
    path06 = _write(nb06, folder / "06_evaluate_and_explore.ipynb")
    result, ran06 = _execute(colab, path06, folder, timeout=CELL_TIMEOUT_S)
    assert result["ok"], f"notebook 06 failed in the Colab-like environment:\n{result['error']}"
    shutil.copy(ROOT / "notebooks" / "02_mini_mtl_interactive_attention.ipynb", folder)
    result02, ran02 = _execute(colab, folder / "02_mini_mtl_interactive_attention.ipynb", folder,
                               timeout=CELL_TIMEOUT_S)
    assert result02["ok"], f"notebook 02 failed in the Colab-like environment:\n{result02['error']}"
    print(f"in the Colab-like environment: 05 (one epoch) {result05['seconds']:.0f} s, 06 {result['seconds']:.0f} s, "
          f"02 {result02['seconds']:.0f} s")

    for name, ran in (("05", ran05), ("06", ran06), ("02", ran02)):
        errors = [o for c in ran["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, f"notebook {name}: {errors[0]}"
    probe = _probe(ran06["cells"][-1])
    assert probe["ipywidgets"] == "7.7.1" and Path(probe["python"]).parent == python.parent, probe
    assert probe["stage_redraws"] and probe["map_redraws"] and "CFF gate" in probe["caption"], probe
    widget_views = [o for c in ran06["cells"] for o in c.get("outputs", [])
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                    and "".join(o["data"].get("text/plain", "")).startswith("MapExplorer widget:")]
    assert len(widget_views) == 1, "the map explorer was not displayed as a widget"
    _check_pins(_freeze(python), "after running notebooks 05 and 06")
