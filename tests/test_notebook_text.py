"""The notebooks' house rules, read off the .ipynb files (no kernel): a word budget, lessons free of
test-harness notes and of paths outside the repository, exercises whose solutions are collapsed and never
rebind the student's names, and exempt cells that are few and check themselves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from banet_lite.teaching import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WORD_BUDGET = 20_000  # markdown words over 00-06
IGNORE_TAG = "nbval-ignore-output"


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def markdown_words(path: Path) -> int:
    return sum(len(text(c).split()) for c in cells(path) if c["cell_type"] == "markdown")


def test_the_course_text_fits_its_word_budget():
    words = {p.stem[:2]: markdown_words(p) for p in NOTEBOOKS}
    assert sum(words.values()) <= WORD_BUDGET, words


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_carry_no_test_harness_notes_nor_outside_paths(path):
    """The README's "How the notebooks are tested" holds the harness notes; the data outside the
    repository is not the reader's to load."""
    banned = re.compile(r"nbval|oneDNN|sanitize\.cfg|exempt|\.\./shared|banet-reference\.md|/work/", re.I)
    for n, cell in enumerate(cells(path)):
        found = banned.search(text(cell))
        assert not found, f"{path.name} cell {n}: mentions {found.group(0)!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_collapsed_and_never_rebind_the_students_names(path):
    nb = cells(path)
    checked = set()
    student_names = set()
    for cell in nb:
        if cell["cell_type"] != "code":
            continue
        src = text(cell)
        defined = set(re.findall(r"^(?:def|class) (\w+)", src, re.M))
        tagged = "solution" in cell["metadata"].get("tags", [])
        if tagged or src.startswith("# @title Solution"):  # a solution, or a cell that runs one
            assert tagged and cell["metadata"].get("jupyter", {}).get("source_hidden") is True, \
                f"{path.name}: a solution cell not tagged 'solution' and collapsed: {src[:60]!r}"
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
    assert checked == stubs and len(checked) <= 4, f"{path.name}: solutions {checked}, stubs {stubs}"


def test_every_exercise_is_taught_in_the_notebook_it_names():
    """`Exercise.notebook` says where each exercise is posed; every notebook poses exactly its own."""
    found = {p.stem[:2]: set(re.findall(r'assert bl\.exercises\.check\("(\w+)"', "".join(map(text, cells(p)))))
             for p in NOTEBOOKS}
    named = {nb: {n for n, e in exercises.EXERCISES.items() if e.notebook == nb}
             for nb in {e.notebook for e in exercises.EXERCISES.values()} | set(found)}
    assert found == named


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exempt_cells_are_few_and_check_themselves(path):
    """A cell whose printed figures come out of training is exempt from the output comparison; it must
    say so and end in asserts with tolerances, and at most a quarter of the code cells may be exempt."""
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    exempt = [c for c in code if IGNORE_TAG in c["metadata"].get("tags", [])]
    assert 4 * len(exempt) <= len(code), f"{path.name}: {len(exempt)} of {len(code)} code cells exempt"
    for cell in exempt:
        src = text(cell)
        assert src.startswith("# Trained figures"), src[:80]
        assert "assert " in src, f"{path.name}: an exempt cell without an assert: {src[:80]!r}"
    markers = [c for c in code if re.search(r"^\s*#\s*NBVAL_", text(c), re.M)]
    assert not markers  # the tag, not a comment, marks a cell
