"""Exercises: `check(name, yours)` compares a reader's function or module with the library's piece.

Every notebook has a few exercises. Each has a stub the reader fills in, a call

    bl.exercises.check("build_pee", MyPEE)

and a solution in a collapsed cell, written under other names (`SolutionPEE`), so that running
the whole notebook never overwrites the reader's work. Three kinds:

  function    `check` runs the reader's function and the library's answer on the same inputs (fixed
              seeds, several shapes, corner cases such as empty masks) and compares the results;
  module      the reader writes an nn.Module; `check` builds it and the library's module with
              the same constructor arguments, loads the library's weights into the reader's module
              (by name, or else in the order the module creates its tensors, when every shape
              agrees), gives BatchNorm random statistics so that a missing BatchNorm shows, and
              compares the two outputs in eval mode;
  train_step  the reader writes one training step; `check` runs two steps of it and two
              of the library's on a tiny BA-Net from the same start and batch, and compares
              the returned losses and how far every parameter moved (two steps, so that gradients
              left over from the first step show).

It prints one verdict; on a mismatch, the input case with its arguments, the output that differs (by
position and name) with its absolute and relative error, and a hint for each known mistake
the answer matches:

    ✅ build_pee: matches banet_lite on 2 inputs, same weights (largest difference 2.4e-07)
    ❌ poly_lr: input 2 of 6: poly_lr(base_lr=0.0001, step=1, total_steps=100)
       returned 9.9e-05, expected 9.90995e-05 (difference -9.95e-08, relative error 1.0e-03)
    hint: a straight line (power 1): the poly schedule raises (1 - step / total_steps) to the
          power 0.9
    ✏️ build_pee: not done yet (the stub raises NotImplementedError)

and returns True only when every input matches, so a solution cell can `assert` it. `EXERCISES`
lists them all, with the notebook that poses each (their tasks are the notebooks' text).
`reveal(guess, truth)` closes a "predict, then run" question. `randomize_batchnorm` and
`copy_weights` serve the lessons that rebuild a library module by hand.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..data.transforms import normalize
from ..model.aspp import ASPP
from ..model.losses import boundary_target
from . import exercise_answers as A
from .exercise_mistake_modules import MODULE_MISTAKES
from .exercise_mistakes import FUNCTION_MISTAKES, Mistake
from .exercise_report import INDENT, compare, describe_call
from .exercise_weights import WeightMisfit, copy_weights, randomize_batchnorm

__all__ = ["EXERCISES", "Exercise", "Mistake", "WeightMisfit", "check", "copy_weights",
           "randomize_batchnorm", "reveal"]


@dataclass(frozen=True)
class Exercise:
    # the library's answer: a function, or a module class taking the same arguments
    reference: Callable
    # function: argument tuples; module: (constructor args, forward args)
    cases: Callable[[], list[tuple]]
    notebook: str  # "00" .. "07": the notebook that poses it
    kind: str = "function"  # or "module", "train_step"
    arithmetic: bool = False  # the answer is arithmetic on sizes, counts or a schedule
    outputs: tuple[str, ...] = ()  # the names of the returned values, in order
    # known mistakes: each one's hint is printed when an answer matches it
    mistakes: tuple[Mistake, ...] = ()


_MISTAKES = {**FUNCTION_MISTAKES, **MODULE_MISTAKES}


def _exercise(name: str, reference: Callable, notebook: str, kind: str = "function",
              arithmetic: bool = False, outputs: tuple[str, ...] = ()) -> Exercise:
    return Exercise(reference, getattr(A, f"{name}_cases"), notebook, kind, arithmetic, outputs,
                    _MISTAKES.get(name, ()))


# name -> the library's answer, its inputs and its known mistakes. The tasks themselves are
# the notebooks' text.
EXERCISES: dict[str, Exercise] = {
    "normalize": _exercise("normalize", normalize, "00", outputs=("x",)),
    "boundary_target": _exercise("boundary_target", boundary_target, "00", outputs=("b",)),
    "stage_sizes": _exercise("stage_sizes", A.stage_sizes, "01", arithmetic=True,
                             outputs=("layer1", "layer2", "layer3", "layer4")),
    "build_pee": _exercise("build_pee", A.PEEAnswer, "01", "module", outputs=("F_pee", "edges")),
    "separable_params": _exercise("separable_params", A.separable_params, "02", arithmetic=True),
    "paper_ia": _exercise("paper_ia", A.paper_ia, "02", outputs=("E", "S")),
    "build_mtl_stage": _exercise("build_mtl_stage", A.MiniMTLStageAnswer, "02", "module",
                                 outputs=("S", "side_mask", "side_boundary")),
    "build_cff": _exercise("build_cff", A.CFFAnswer, "03", "module", outputs=("out_i",)),
    "build_aspp": _exercise("build_aspp", ASPP, "04", "module"),
    "soft_dice_loss": _exercise("soft_dice_loss", A.soft_dice_loss, "04"),
    "joint_loss": _exercise("joint_loss", A.joint_loss, "04"),
    "assemble_tiny": _exercise("assemble_tiny", A.TinyBANetAnswer, "04", "module",
                               outputs=("logits", "side_masks", "side_boundaries")),
    "poly_lr": _exercise("poly_lr", A.poly_lr, "05", arithmetic=True),
    "train_step": _exercise("train_step", A.train_step, "05", "train_step"),
    "dice_jaccard": _exercise("dice_jaccard", A.dice_jaccard, "06", outputs=("dice", "jaccard")),
    "boundary_f": _exercise("boundary_f", A.boundary_f, "06"),
    "pee_reference_form": _exercise("pee_reference_form", A.reference_edges, "07",
                                    outputs=("E_a", "E_b")),
    "reference_to_ours": _exercise("reference_to_ours", A.ours_from_reference, "07",
                                   outputs=("V",)),
}


# --- running an answer (or the library's, or a known mistake) on input n --------------------------


class _NotAModule(Exception):
    pass


def _run_function(ex: Exercise, function: Callable, args: tuple, n: int):
    torch.manual_seed(0)  # the same seed before each run, for any module built inside the function
    return function(*args)


def _run_module(ex: Exercise, module_class: type, case: tuple, n: int):
    """The module built with the case's arguments, carrying the library module's weights (BatchNorm
    randomised, from seed n), in eval mode, on the case's inputs."""
    init_args, inputs = case
    torch.manual_seed(0)
    library = randomize_batchnorm(ex.reference(*init_args), seed=n)
    module = module_class(*init_args)
    if not isinstance(module, nn.Module):
        raise _NotAModule(f"{getattr(module_class, '__name__', module_class)}(...) made "
                          f"a {type(module).__name__}, not an nn.Module")
    copy_weights(library, module)
    with torch.no_grad():
        return module.eval()(*inputs)


def _run_train_step(ex: Exercise, step: Callable, case: tuple, n: int) -> dict:
    """The losses two calls of `step` return and how far each parameter moved, from the case's
    start."""
    model, images, masks, optimizer, loss_fn = case[0].build()
    start = {k: p.detach().clone() for k, p in model.named_parameters()}
    losses = [step(model, images, masks, optimizer, loss_fn) for _ in range(2)]
    losses = [x.item() if isinstance(x, Tensor) and x.numel() == 1 else x for x in losses]
    moved = {f"change in {k}": p.detach() - start[k] for k, p in model.named_parameters()}
    return {"loss returned by step 1": losses[0], "loss returned by step 2": losses[1], **moved}


_RUN = {"function": _run_function, "module": _run_module, "train_step": _run_train_step}


def _argument_names(f: Callable, skip: int = 0) -> list[str]:
    return list(inspect.signature(f).parameters)[skip:]


def _describe_case(name: str, ex: Exercise, yours: Callable, case: tuple) -> str:
    if ex.kind == "train_step":
        return case[0].describe(getattr(yours, "__name__", name))
    if ex.kind == "function":
        return describe_call(name, _argument_names(ex.reference), case)
    init_args, inputs = case
    label = getattr(yours, "__name__", name)
    return (describe_call(label, _argument_names(ex.reference), init_args)
            + describe_call("", _argument_names(ex.reference.forward, skip=1), inputs))


def _hints(ex: Exercise, got, n: int) -> list[str]:
    """The hints of the known mistakes whose result on input n matches the answer's (each once)."""
    hints: list[str] = []
    for mistake in ex.mistakes:
        try:
            wrong = _RUN[ex.kind](ex, mistake.wrong, ex.cases()[n - 1], n)  # fresh inputs
            if compare(got, wrong, ex.outputs)[0] is None and mistake.hint not in hints:
                hints.append(mistake.hint)
        except Exception:  # a mistake that cannot run on this input explains nothing
            continue
    return hints


def check(name: str, yours: Callable) -> bool:
    """Run `yours` (a function, or a module class) and the library's answer to exercise `name` on
    the same inputs; print a verdict (and, on a mismatch, what differs and any hint) and return
    whether they agree."""
    if name not in EXERCISES:
        raise ValueError(f"exercises.check: unknown exercise {name!r}; "
                         f"choose one of {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    cases, worst = ex.cases(), 0.0
    for n, case in enumerate(cases, 1):
        where = f"input {n} of {len(cases)}: {_describe_case(name, ex, yours, case)}"
        want = _RUN[ex.kind](ex, ex.reference, case, n)
        try:
            # fresh inputs: the answer may change them
            got = _RUN[ex.kind](ex, yours, ex.cases()[n - 1], n)
        except NotImplementedError:
            print(f"✏️ {name}: not done yet (the stub raises NotImplementedError)")
            return False
        except _NotAModule as err:
            print(f"❌ {name}: {err}")
            return False
        except WeightMisfit as err:
            # the reader's module: its tensors do not take the library's weights
            print(f"❌ {name}: the library's weights do not fit your module, on {where}")
            print("\n".join(INDENT + line for line in err.lines)
                  + (f"\nhint: {err.hint}" if err.hint else ""))
            return False
        except Exception as err:  # the reader's code: report it, do not stop the notebook
            print(f"❌ {name}: {where}\n{INDENT}raised {type(err).__name__}: {err}")
            return False
        problem, difference = compare(got, want, ex.outputs)
        if problem:
            print(f"❌ {name}: {where}")
            print("\n".join([INDENT + line for line in problem]
                            + [f"hint: {h}" for h in _hints(ex, got, n)]))
            return False
        worst = max(worst, difference)
    same = {"module": ", same weights", "train_step": ", same start"}.get(ex.kind, "")
    print(f"✅ {name}: matches banet_lite on {len(cases)} inputs{same} "
          f"(largest difference {worst:.1e})")
    return True


def reveal(guess, truth, rel_tol: float = 0.1) -> None:
    """Close a "predict, then run" question: print the answer next to the reader's guess (None: no
    guess yet). Numbers count as right within `rel_tol` relative; anything else must be equal."""
    if guess is None:
        print(f"The answer: {truth}.")
        return
    try:
        right = math.isclose(float(guess), float(truth), rel_tol=rel_tol)
    except (TypeError, ValueError):
        right = guess == truth
    verdict = "✅ right" if right else "❌ not quite"
    print(f"{verdict}: you guessed {guess!r}; the answer is {truth!r}.")
