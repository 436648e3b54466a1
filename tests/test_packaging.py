"""Packaging: one declared repository address, used by every notebook; extras kept out of `import banet_lite`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCRIPT = ROOT / "notebooks" / "set_repository.py"


def pyproject(root: Path = ROOT) -> dict:
    with (root / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def addresses(path: Path) -> tuple[list[str], list[str]]:
    """The Colab badge links of the first cell and the pip install targets of the first code cell."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    install = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    badges = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)", first)
    targets = re.findall(r"git\+https://github\.com/[^\s\"'}]+", install)
    return badges, targets


def test_the_repository_address_is_declared_once_in_pyproject():
    urls = pyproject()["project"]["urls"]
    assert urls["Repository"] == urls["Homepage"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", urls["Repository"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_and_install_cell_use_the_declared_address(path):
    url = pyproject()["project"]["urls"]["Repository"]
    owner_name = url.removeprefix("https://github.com/")
    badges, targets = addresses(path)
    assert badges == [f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/{path.name}"]
    assert targets == [f"git+{url}"]
    nb = json.loads(path.read_text(encoding="utf-8"))
    install = "".join(nb["cells"][1]["source"])
    assert nb["cells"][1]["cell_type"] == "code" and 'if "google.colab" in sys.modules:' in install
    assert 'importlib.util.find_spec("banet_lite") is None' in install  # installs only when missing
    assert "output.enable_custom_widget_manager()" in install


def test_set_repository_rewrites_pyproject_badges_and_install_cells(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(SCRIPT, tmp_path / "notebooks")
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks")
    run = [sys.executable, str(tmp_path / "notebooks" / SCRIPT.name)]
    old_url = pyproject()["project"]["urls"]["Repository"]
    new_url = "https://github.com/someone/my-banet"

    done = subprocess.run([*run, new_url + ".git"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pyproject(tmp_path)["project"]["urls"] == {"Homepage": new_url, "Repository": new_url}
    for path in NOTEBOOKS:
        copy = tmp_path / "notebooks" / path.name
        badges, targets = addresses(copy)
        assert badges == [f"https://colab.research.google.com/github/someone/my-banet/blob/main/notebooks/{path.name}"]
        assert targets == [f"git+{new_url}"]
        # nothing else changed: swapping the address back gives the original bytes
        old, new = path.read_text(encoding="utf-8"), copy.read_text(encoding="utf-8")
        assert new.replace("someone/my-banet", old_url.removeprefix("https://github.com/")) == old
        assert new.endswith("\n")
    assert subprocess.run([*run, "--check"], capture_output=True, timeout=60).returncode == 0

    # a branch: badges open it, install cells install it; --check still agrees
    done = subprocess.run([*run, new_url, "--branch", "dev"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    badges, targets = addresses(tmp_path / "notebooks" / NOTEBOOKS[0].name)
    assert "/blob/dev/notebooks/" in badges[0] and targets == [f"git+{new_url}@dev"]

    # a notebook left behind is reported
    shutil.copy(NOTEBOOKS[0], tmp_path / "notebooks")
    done = subprocess.run([*run, "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and NOTEBOOKS[0].name in done.stderr
    done = subprocess.run([*run, "https://gitlab.com/x/y"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "https://github.com/OWNER/NAME" in done.stderr


def test_dependencies_are_split_into_core_and_extras():
    project = pyproject()["project"]
    names = {re.split(r"[<>=!\[; ]", r, maxsplit=1)[0].lower() for r in project["dependencies"]}
    for tool in ("jupyterlab", "papermill", "nbval", "pytest", "ruff", "playwright"):
        assert tool not in names, f"{tool} belongs in an extra"
    assert "ipywidgets>=7.7,<9" in project["dependencies"]  # Colab's 7.7 as well as 8
    extras = project["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in extras["notebooks"])
    assert any(r.startswith("papermill") for r in extras["notebooks"])
    assert "banet-lite[notebooks]" in extras["dev"] and any(r.startswith("nbval") for r in extras["dev"])


def test_import_banet_lite_does_not_import_the_notebook_tools():
    # (ipywidgets may be imported: it is a dependency, and seaborn imports it when it is there)
    code = (
        "import sys, banet_lite, banet_lite.data, banet_lite.training.train, banet_lite.evaluate\n"
        "import banet_lite.teaching.viz\n"
        "heavy = ('jupyterlab', 'jupyter_server', 'papermill', 'nbval', 'nbclient', 'notebook', 'nbconvert')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
