"""Exercises: `check(name, yours)` compares a reader's function or module with the library's piece.

Every notebook has a few exercises. Each has a stub the reader fills in, a call

    bl.exercises.check("build_pee", MyPEE)

and a solution in a collapsed cell, written under other names (`SolutionPEE`), so that running the whole
notebook never overwrites the reader's work. Two kinds:

  function  `check` runs the reader's function and the library's answer on the same inputs (fixed seeds,
            several shapes, edge cases such as empty masks) and compares the results;
  module    the reader writes an nn.Module; `check` builds it and the library's module with the same
            constructor arguments, loads the library's weights into the reader's module (by name, or else
            in the order the module creates its tensors, when every shape agrees), gives BatchNorm random
            statistics so that a missing BatchNorm shows, and compares the two outputs in eval mode.

Either way it prints one plain verdict,

    ✅ build_pee: matches banet_lite on 2 inputs, same weights (largest difference 2.4e-07)
    ❌ build_pee: input 1 of 2 differs: largest difference 3.1e-01 at index (0, 3, 0, 0)
    ✏️ build_pee: not done yet (the stub raises NotImplementedError)

and returns True only when every input matches, so a solution cell can `assert` it. `EXERCISES` lists
them all (their tasks are the notebooks' text). `reveal(guess, truth)` closes a
"predict, then run" question: the reader writes a guess into a variable first, then sees the answer.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..data.transforms import normalize
from ..model.aspp import ASPP
from ..model.losses import edge_target, soft_dice_loss
from . import exercise_answers as answers


@dataclass(frozen=True)
class Exercise:
    reference: Callable  # the library's answer: a function, or a module class taking the same arguments
    cases: Callable[[], list[tuple]]  # function: argument tuples; module: (constructor args, forward args)
    kind: str = "function"  # or "module"


# name -> the library's answer and the inputs it is checked on. The tasks themselves are the notebooks' text.
A = answers  # short, for the table below
EXERCISES: dict[str, Exercise] = {
    "edge_target": Exercise(edge_target, A.edge_target_cases),  # 00
    "normalize": Exercise(normalize, A.normalize_cases),
    "pee_reference_form": Exercise(A.reference_edges, A.pee_reference_form_cases),  # 01
    "stage_sizes": Exercise(A.stage_sizes, A.stage_sizes_cases),
    "reference_to_ours": Exercise(A.ours_from_reference, A.reference_to_ours_cases),
    "build_pee": Exercise(A.PEEAnswer, A.build_pee_cases, "module"),
    "paper_ia": Exercise(A.paper_ia, A.paper_ia_cases),  # 02
    "separable_params": Exercise(A.separable_params, A.separable_params_cases),
    "ia_blocks_params": Exercise(A.ia_blocks_params, A.ia_blocks_params_cases),
    "build_mtl_stage": Exercise(A.MiniMTLStageAnswer, A.build_mtl_stage_cases, "module"),
    "paper_cff": Exercise(A.paper_cff, A.paper_cff_cases),  # 03
    "build_cff": Exercise(A.CFFAnswer, A.build_cff_cases, "module"),
    "build_aspp": Exercise(ASPP, A.build_aspp_cases, "module"),  # 04
    "soft_dice_loss": Exercise(soft_dice_loss, A.soft_dice_loss_cases),
    "joint_loss": Exercise(A.joint_loss, A.joint_loss_cases),
    "assemble_tiny": Exercise(A.TinyBANetAnswer, A.assemble_tiny_cases, "module"),
    "balanced_pos_weight": Exercise(A.balanced_pos_weight, A.balanced_pos_weight_cases),  # 05
    "poly_lr": Exercise(A.poly_lr, A.poly_lr_cases),
    "dice_jaccard": Exercise(A.dice_jaccard, A.dice_jaccard_cases),  # 06
    "boundary_f": Exercise(A.boundary_f, A.boundary_f_cases),
}


def _flatten(x) -> list:
    if isinstance(x, (list, tuple)):
        return [y for item in x for y in _flatten(item)]
    return [x]


def _compare(got, want) -> tuple[str | None, float]:
    """(what differs, or None; the largest difference): tensors and arrays within float tolerance, numbers
    within 1e-6 relative."""
    got_items, want_items = _flatten(got), _flatten(want)
    if len(got_items) != len(want_items):
        return f"returned {len(got_items)} value(s), expected {len(want_items)}", 0.0
    worst = 0.0
    for g, w in zip(got_items, want_items):
        if isinstance(w, (Tensor, np.ndarray)):
            g_t, w_t = torch.as_tensor(np.asarray(g) if not isinstance(g, Tensor) else g), torch.as_tensor(w)
            if tuple(g_t.shape) != tuple(w_t.shape):
                return f"shape {tuple(g_t.shape)}, expected {tuple(w_t.shape)}", 0.0
            diff = (g_t.double() - w_t.double()).abs()
            if diff.numel():
                d = diff.max().item()
                if not d <= 1e-5 + 1e-4 * w_t.double().abs().max().item():
                    where = np.unravel_index(int(diff.argmax()), tuple(diff.shape))
                    return f"largest difference {d:.1e} at index {tuple(int(i) for i in where)}", d
                worst = max(worst, d)
        else:
            try:
                g_f, w_f = float(g), float(w)
            except (TypeError, ValueError):
                return f"returned {g!r}, expected a number like {w!r}", 0.0
            if not (math.isclose(g_f, w_f, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(g_f) and math.isnan(w_f))):
                return f"returned {g_f:.6g}, expected {w_f:.6g}", abs(g_f - w_f)
            worst = max(worst, abs(g_f - w_f))
    return None, worst


def _report(name: str, n: int, total: int, err: Exception) -> bool:
    if isinstance(err, NotImplementedError):
        print(f"✏️ {name}: not done yet (the stub raises NotImplementedError)")
    else:
        print(f"❌ {name}: input {n} of {total} raised {type(err).__name__}: {err}")
    return False


def _randomize_batchnorm(module: nn.Module, seed: int) -> None:
    """Random BatchNorm statistics and affine terms: with the defaults (mean 0, var 1, weight 1, bias 0) an
    eval-mode BatchNorm is the identity, and a module that forgot one would pass."""
    g = answers.generator(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


def _load_weights(yours: nn.Module, library: nn.Module) -> str | None:
    """Load the library module's tensors into the reader's: by name when the names agree, else in creation
    order when every shape agrees. Returns what does not fit, or None."""
    want, have = library.state_dict(), yours.state_dict()
    if list(want) != list(have):
        shapes = [tuple(t.shape) for t in want.values()], [tuple(t.shape) for t in have.values()]
        if shapes[0] != shapes[1]:
            for k, (w, h) in enumerate(zip(shapes[0], shapes[1])):
                if w != h:
                    return (f"tensor {k + 1} in creation order is {list(have)[k]} {h}; the library's is "
                            f"{list(want)[k]} {w}")
            return (f"your module creates {len(have)} tensors (weights and BatchNorm buffers), the "
                    f"library's {len(want)}")
        want = OrderedDict(zip(have, want.values()))
    yours.load_state_dict(want)
    return None


class _Misfit(Exception):
    """The reader's module cannot even be compared: not a module, or the library's weights do not fit."""


def _run_function(ex: Exercise, function: Callable, args: tuple, n: int) -> tuple:
    """(the library's result, the reader's) on one input; the same seed before each, for any module built
    inside either function."""
    torch.manual_seed(0)
    want = ex.reference(*args)
    torch.manual_seed(0)
    return want, function(*args)


def _run_module(ex: Exercise, module_class: type, case: tuple, n: int) -> tuple:
    """(the library module's output, the reader's) on one input, the reader's module carrying the library's
    weights (BatchNorm statistics randomised), both in eval mode."""
    init_args, inputs = case
    torch.manual_seed(0)
    library = ex.reference(*init_args)
    _randomize_batchnorm(library, n)
    yours = module_class(*init_args)
    if not isinstance(yours, nn.Module):
        raise _Misfit(f"{module_class.__name__}(...) made a {type(yours).__name__}, not an nn.Module")
    problem = _load_weights(yours, library)
    if problem:
        raise _Misfit(f"the library's weights do not fit your module: {problem}")
    with torch.no_grad():
        return library.eval()(*inputs), yours.eval()(*inputs)


def check(name: str, yours: Callable) -> bool:
    """Run `yours` (a function, or a module class) and the library's answer to exercise `name` on the same
    inputs; print a verdict and return whether they agree."""
    if name not in EXERCISES:
        raise ValueError(f"exercises.check: unknown exercise {name!r}; choose one of {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    run = _run_module if ex.kind == "module" else _run_function
    cases, worst = ex.cases(), 0.0
    for n, case in enumerate(cases, 1):
        try:
            want, got = run(ex, yours, case, n)
        except _Misfit as err:
            print(f"❌ {name}: {err}")
            return False
        except Exception as err:  # the reader's code: report it, do not stop the notebook
            return _report(name, n, len(cases), err)
        problem, difference = _compare(got, want)
        if problem:
            print(f"❌ {name}: input {n} of {len(cases)} differs: {problem}")
            return False
        worst = max(worst, difference)
    weights = ", same weights" if ex.kind == "module" else ""
    print(f"✅ {name}: matches banet_lite on {len(cases)} inputs{weights} (largest difference {worst:.1e})")
    return True


def reveal(guess, truth, rel_tol: float = 0.1) -> None:
    """Close a "predict, then run" question: print the answer next to the reader's guess (None: no guess
    yet). Numbers count as right within `rel_tol` relative; anything else must be equal."""
    if guess is None:
        print(f"The answer: {truth}. (Write your guess first next time: the point is to be surprised.)")
        return
    try:
        right = math.isclose(float(guess), float(truth), rel_tol=rel_tol)
    except (TypeError, ValueError):
        right = guess == truth
    verdict = "✅ right" if right else "❌ not quite"
    print(f"{verdict}: you guessed {guess!r}; the answer is {truth!r}.")
