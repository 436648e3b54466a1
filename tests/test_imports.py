"""The package's shape: `import banet_lite` stays light, and no two modules import each other."""

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "banet_lite"


def test_import_build_model_evaluate_and_train_leave_plotting_and_widgets_out():
    code = ("import sys, banet_lite as bl; bl.build_model('tiny'); bl.JointLoss(); bl.evaluate.segment; "
            "bl.train.fit; "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'seaborn', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_pipeline_modules_load_on_first_use():
    code = ("import banet_lite as bl; import banet_lite.data; from banet_lite import viz; "
            "print(bl.data.find_pairs.__module__, bl.train.fit.__name__, bl.evaluate.segment.__name__, "
            "bl.metrics.dice.__name__, bl.viz is viz)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["banet_lite.data.folders", "fit", "segment", "dice", "True"]


def module_imports() -> dict[str, set[str]]:
    """{module: package modules it imports anywhere in its source, at the top or inside a function (not
    under `if TYPE_CHECKING:`, which never runs)}."""
    names = {str(p.relative_to(PACKAGE.parent).with_suffix("")).replace("/", ".").removesuffix(".__init__"): p
             for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets, tree = set(), ast.parse(path.read_text())
        # imports under `if TYPE_CHECKING:` serve annotations only and never run: no arrow of the graph
        typing_only = {id(n) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                       and getattr(branch.test, "id", getattr(branch.test, "attr", None)) == "TYPE_CHECKING"
                       for stmt in branch.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
                candidates = [module] + [f"{module}.{a.name}" for a in node.names]
                targets |= {c for c in candidates if c in names}
        graph[name] = targets - {name}
    return graph


def test_no_import_cycle():
    graph = module_imports()
    # a package's __init__ re-exporting its own modules is not a cycle between two concepts
    graph = {m: {t for t in ts if not (m.startswith(t + ".") and t in graph)} for m, ts in graph.items()}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [m, t]))
            if t not in state:
                visit(t, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_a_required_test_that_skips_fails(tmp_path):
    """tests/conftest.py: with BANET_REQUIRE=browser, a browser test that skips is a failure; without, a skip."""
    (tmp_path / "test_needs_browser.py").write_text(
        "import pytest\n\n@pytest.mark.browser\ndef test_needs_browser():\n    pytest.skip('no Chromium here')\n")
    tests_dir = Path(__file__).resolve().parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(tests_dir)}
    required = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**env, "BANET_REQUIRE": "browser"})
    assert required.returncode == 1 and "BANET_REQUIRE names browser" in required.stdout, required.stdout
    optional = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={k: v for k, v in env.items() if k != "BANET_REQUIRE"})
    assert optional.returncode == 0 and "1 skipped" in optional.stdout, optional.stdout


def test_every_library_file_reads_top_to_bottom():
    """No file in banet_lite over 400 lines and no function over 80: a file is one component, read in one go."""
    import ast

    root = Path(__file__).resolve().parents[1] / "banet_lite"
    too_long = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > 400:
            too_long.append(f"{path.relative_to(root)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                too_long.append(f"{path.relative_to(root)}: {node.name} is {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long
