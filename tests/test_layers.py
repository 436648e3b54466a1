"""The library's rooms import only downward (issue 30), read off the source with `ast` (no import runs).

    errors, files, utils, renames the ground floor: import no other banet_lite module but each other
    data                          the ground floor
    model                         the ground floor and data
    metrics, stats, overlay       the ground floor, data and model
    training                      all of the above, never teaching or evaluate
    evaluate                      all of the above but training and teaching: a checkpoint is read back
                                  through model/weights.py, predictions drawn by overlay.py
    teaching                      anything it teaches, but no training internals (checkpoints, precision,
                                  processes, the run folder): only training's config, schedule, step and fit
    commands, __main__, __init__  the front door: anything

Benchmarks use the library, and benchmarks/common.py, never another script nor an exercise answer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "banet_lite"
GROUND = {"errors", "files", "utils", "renames"}
ALLOWED = {
    "ground": GROUND,
    "data": GROUND | {"data"},
    "model": GROUND | {"data", "model"},
    "metrics": GROUND | {"data", "model", "metrics"},
    "stats": GROUND | {"stats"},
    "overlay": GROUND | {"data", "model", "metrics"},
    "training": GROUND | {"data", "model", "metrics", "stats", "training"},
    "evaluate": GROUND | {"data", "model", "metrics", "overlay"},
}
TEACHING_MAY_USE = {"training.config", "training.schedule", "training.step", "training.train"}


def room(module: str) -> str:
    """'banet_lite.model.pee' -> 'model'; 'banet_lite.errors' -> 'errors'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """Every banet_lite module `path` imports, at the top or inside a function, as dotted names."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from ..model import x
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("banet_lite"):
                names = [f"{target}.{a.name}" for a in node.names] if not node.module or node.level and \
                    target.count(".") == 1 else [target]
                found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("banet_lite"))
    return found


def _allowed(source_room: str, target: str) -> bool:
    target_room = room(target)
    if target == "banet_lite.__version__":
        return True  # the version string: metadata, not a room
    if source_room in ("commands", "__main__", "__init__"):
        return True
    if source_room == "teaching":
        sub = ".".join(target.split(".")[1:3])
        return target_room != "training" or sub in TEACHING_MAY_USE or target.count(".") == 1
    key = "ground" if source_room in GROUND else source_room
    rooms = ALLOWED[key]  # every room includes the ground floor
    return target_room in rooms or (target_room in GROUND and key == "ground")


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_room_imports_only_downward(path):
    source_room = room(".".join(path.relative_to(ROOT).with_suffix("").parts))
    if path.name == "__init__.py" and path.parent == PACKAGE:
        source_room = "__init__"
    wrong = sorted(t for t in imports_of(path) if not _allowed(source_room, t))
    assert not wrong, f"banet_lite/{path.relative_to(PACKAGE)} ({source_room}) imports {wrong}"


def test_the_rule_itself_catches_a_crossing():
    assert not _allowed("evaluate", "banet_lite.training.checkpoint")
    assert not _allowed("evaluate", "banet_lite.teaching.overlay")
    assert not _allowed("model", "banet_lite.training.config")
    assert not _allowed("teaching", "banet_lite.training.checkpoint")
    assert _allowed("teaching", "banet_lite.training.schedule")
    assert _allowed("evaluate", "banet_lite.model.weights")


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_use_the_library_not_each_other(path):
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"common"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                 [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            assert name.split(".")[0] not in scripts, f"{path.name} imports the script {name}"
            assert "exercise" not in name, f"{path.name} uses an exercise answer: {name}"
