"""The notebooks' house rules, read off the .ipynb files (no kernel): a word budget and short sentences,
lessons free of test-harness notes and of paths outside the repository, exercises whose solutions are
collapsed (JupyterLab and Colab) and never rebind the student's names, one open experiment per notebook
with a collapsed discussion, and trained figures that state their range with `bl.expect`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from banet_lite.teaching import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LESSONS = [p for p in NOTEBOOKS if p.name[:2] <= "06"]  # 00-06; 07 is the appendix
WORD_BUDGET, NOTEBOOK_BUDGET, SENTENCE_LIMIT = 12_000, 2_200, 45
IGNORE_TAG = "nbval-ignore-output"


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def tags(cell: dict) -> list[str]:
    return cell["metadata"].get("tags", [])


def markdown_words(path: Path) -> int:
    return sum(len(text(c).split()) for c in cells(path) if c["cell_type"] == "markdown")


def prose(markdown: str) -> str:
    """The sentences of a markdown cell: no code blocks, display maths, tables, or <details> tags."""
    markdown = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    markdown = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)
    lines = [line for line in markdown.splitlines() if not line.lstrip().startswith("|")]
    return re.sub(r"</?(details|summary)>", " ", "\n".join(lines))


def sentences(markdown: str) -> list[str]:
    """Sentence ends: . ! ? or : before a line break, or a bullet or heading starting a line."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z*`(\[$])|\n\s*[*-]\s|\n#+\s|\n\n", prose(markdown))
    return [p.strip() for p in parts if p.strip()]


def test_the_course_text_fits_its_word_budget():
    words = {p.stem[:2]: markdown_words(p) for p in LESSONS}
    assert sum(words.values()) <= WORD_BUDGET, words
    assert max(words.values()) <= NOTEBOOK_BUDGET, words


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_sentence_runs_over_the_limit(path):
    for n, cell in enumerate(cells(path)):
        if cell["cell_type"] == "markdown":
            for sentence in sentences(text(cell)):
                assert len(sentence.split()) <= SENTENCE_LIMIT, f"{path.name} cell {n}: {sentence!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_carry_no_test_harness_notes_nor_outside_paths(path):
    """The README's "How the notebooks are tested" holds the harness notes; the data outside the
    repository is not the reader's to load."""
    banned = re.compile(r"nbval|oneDNN|sanitize\.cfg|exempt|Trained figures|\.\./shared|banet-reference\.md|/work/",
                        re.I)
    for n, cell in enumerate(cells(path)):
        found = banned.search(text(cell))
        assert not found, f"{path.name} cell {n}: mentions {found.group(0)!r}"


def is_solution(cell: dict) -> bool:
    return "solution" in tags(cell) or text(cell).startswith("# @title Solution")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_collapsed_and_never_rebind_the_students_names(path):
    nb = cells(path)
    checked, student_names = set(), set()
    for cell in nb:
        if cell["cell_type"] != "code":
            continue
        src = text(cell)
        defined = set(re.findall(r"^(?:def|class) (\w+)", src, re.M))
        if is_solution(cell):
            meta = cell["metadata"]
            assert "solution" in tags(cell) and src.startswith("# @title Solution"), src[:60]
            assert meta.get("jupyter", {}).get("source_hidden") is True, f"{path.name}: not collapsed in JupyterLab"
            assert meta.get("cellView") == "form", f"{path.name}: not collapsed on Colab: {src[:60]!r}"
            assert not defined & student_names, f"{path.name}: a solution rebinds {defined & student_names}"
            assert not {d for d in defined if d.startswith(("my_", "My"))}, f"{path.name}: {defined}"
            checked |= set(re.findall(r'assert bl\.exercises\.check\("(\w+)"', src))
        else:
            student_names |= {d for d in defined if d.startswith(("my_", "My"))}
            uses = set(re.findall(r"\b(Solution[A-Z]\w*|solution_\w+)\b", src))
            assert not uses, f"{path.name}: a cell outside the collapsed solutions runs {sorted(uses)}"
            # a lesson cell that speaks of "the solution" reads as one (and the project's check takes it so)
            assert not re.search(r"\bsolutions?\b", src, re.I), f"{path.name}: {src[:60]!r} mentions a solution"
    stubs = set(re.findall(r'bl\.exercises\.check\("(\w+)"', "".join(text(c) for c in nb if c["cell_type"] == "code")))
    assert checked == stubs and 1 <= len(checked) <= 4, f"{path.name}: solutions {checked}, stubs {stubs}"


def test_every_exercise_is_taught_in_the_notebook_it_names():
    """`Exercise.notebook` says where each exercise is posed; every notebook poses exactly its own."""
    found = {p.stem[:2]: set(re.findall(r'assert bl\.exercises\.check\("(\w+)"', "".join(map(text, cells(p)))))
             for p in NOTEBOOKS}
    named = {nb: {n for n, e in exercises.EXERCISES.items() if e.notebook == nb}
             for nb in {e.notebook for e in exercises.EXERCISES.values()} | set(found)}
    assert found == named


def test_at_most_a_quarter_of_the_exercises_are_arithmetic():
    assert 4 * sum(ex.arithmetic for ex in exercises.EXERCISES.values()) <= len(exercises.EXERCISES)


@pytest.mark.parametrize("path", [p for p in LESSONS if p.name[:2] != "00"], ids=lambda p: p.stem)
def test_each_lesson_has_one_open_experiment_with_a_collapsed_discussion(path):
    nb = cells(path)
    runs = [n for n, c in enumerate(nb) if "experiment" in tags(c) and c["cell_type"] == "code"]
    assert runs, f"{path.name}: no code cell tagged 'experiment'"
    after = [c for c in nb[runs[-1] + 1:] if c["cell_type"] == "markdown"][:1]
    assert after and "<details>" in text(after[0]) and "experiment" in tags(after[0]), \
        f"{path.name}: the experiment's discussion must follow it, tagged 'experiment', inside <details>"


def test_notebook_00_opens_with_the_course_model_at_work():
    code = [c for c in cells(NOTEBOOKS[0]) if c["cell_type"] == "code"]
    first = "".join(text(c) for c in code[3:5])  # after set-up, imports, seed and device
    assert "bl.course_model(" in first and "show_segmentation" in first
    assert len([line for line in first.splitlines() if line.strip() and not line.startswith("#")]) <= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_trained_figures_state_their_range_and_compared_cells_never_touch_the_device(path):
    """A cell whose printed figures come out of training is exempt from the output comparison; it states
    each figure's range with bl.expect (no asserts, no branches kept for the tests), and at most a quarter
    of the code cells are exempt. A compared cell never uses `device`: a GPU (TF32, other kernels) would
    change its digits."""
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    exempt = [c for c in code if IGNORE_TAG in tags(c)]
    assert 4 * len(exempt) <= len(code), f"{path.name}: {len(exempt)} of {len(code)} code cells exempt"
    for cell in exempt:
        src = text(cell)
        assert "bl.expect(" in src, f"{path.name}: an exempt cell states no range with bl.expect: {src[:80]!r}"
        assert not re.search(r"^\s*assert\b", src, re.M), f"{path.name}: an exempt cell asserts: {src[:80]!r}"
    for cell in code:
        src = text(cell)
        if IGNORE_TAG in tags(cell) or "parameters" in tags(cell) or re.fullmatch(
                r"bl\.seed_everything\(0\)\ndevice = .*", src.strip()):
            continue  # the seed cell and the parameters cell only name the device
        used = re.search(r"(?<![.\w])device\b(?!\s*=[^=])", src)  # the variable (not torch.device, not a keyword)
        assert not used, f"{path.name}: a compared cell uses `device`: {src[:80]!r}"
    markers = [c for c in code if re.search(r"^\s*#\s*NBVAL_", text(c), re.M)]
    assert not markers  # the tag, not a comment, marks a cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_opens_the_same_way(path):
    nb = cells(path)
    assert nb[0]["cell_type"] == "markdown" and text(nb[0]).startswith(f"# {path.name[:2]} · ")
    assert "colab-badge.svg" in text(nb[0])
    assert 'if "google.colab" in sys.modules:' in text(nb[1])
    assert "import banet_lite as bl" in text(nb[2])
    assert text(nb[3]).strip().startswith("bl.seed_everything(0)") and "bl.default_device()" in text(nb[3])


def test_the_main_job_takes_the_library_defaults():
    """Notebook 05's parameters cell has every setting gpu_check.sh passes it, and each setting that is a
    TrainConfig field has TrainConfig's default (the command line's), except `pretrained` ("auto": ImageNet
    weights for the paper preset, as the paper trains it; None on the command line)."""
    import ast
    from dataclasses import fields

    from banet_lite.training.config import TrainConfig

    nb = cells(ROOT / "notebooks" / "05_train.ipynb")
    source = next(text(c) for c in nb if "parameters" in tags(c))
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(source).body}
    passed = set(re.findall(r"-p (\w+) ", (ROOT / "benchmarks" / "gpu_check.sh").read_text()))
    assert passed and passed <= set(values), passed - set(values)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    values = {k: None if v == "" else v for k, v in values.items()}  # "" is papermill's "none" for a path
    differ = {k: (v, defaults[k]) for k, v in values.items() if k in defaults and v != defaults[k]}
    assert differ == {"pretrained": ("auto", None)}, differ
    assert {"workers", "checkpoint_every", "time_budget", "copy_to", "schedule"} <= set(values)
