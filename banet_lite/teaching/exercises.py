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
them all, by notebook; `bl.exercises.show("name")` prints the task. `reveal(guess, truth)` closes a
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
from ..model.config import get_config
from ..model.losses import edge_target, soft_dice_loss
from . import exercise_answers as answers


@dataclass(frozen=True)
class Exercise:
    name: str
    notebook: str  # "01"
    task: str  # what to write, in one paragraph
    signature: str  # the stub's first line
    reference: Callable  # the library's answer: a function, or a module class taking the same arguments
    cases: Callable[[], list[tuple]]  # function: argument tuples; module: (constructor args, forward args)
    kind: str = "function"  # or "module"


_f, _m = answers.features, answers.masks

EXERCISES: dict[str, Exercise] = {e.name: e for e in [
    Exercise("edge_target", "00",
             "Write the boundary band of a (B, 1, H, W) mask: 1 where |y - AvgPool_3x3(y)| > 0 (stride 1, "
             "padding 1), under both border rules: 'exclude_padding' (count_include_pad=False) and "
             "'zero_padding' (the reference's count_include_pad=True).",
             "def my_edge_target(mask, border_rule):", edge_target,
             lambda: [(_m(s), rule) for s in (0, 1) for rule in ("exclude_padding", "zero_padding")]
             + [(torch.ones(1, 1, 8, 8), "zero_padding"), (torch.zeros(1, 1, 8, 8), "exclude_padding")]),
    Exercise("normalize", "00",
             "Turn a uint8 (H, W, 3) image into the float (3, H, W) tensor the network reads: scale to 0..1, "
             "then subtract the ImageNet mean and divide by its std, per channel "
             "(bl.viz.IMAGENET_MEAN, bl.viz.IMAGENET_STD).",
             "def my_normalize(image):", normalize,
             lambda: [(np.asarray(torch.randint(0, 256, (h, w, 3), generator=answers.generator(h)).numpy(),
                                  dtype=np.uint8),) for h, w in ((4, 5), (16, 16))]),
    Exercise("pee_reference_form", "01",
             "Write PEE's edge maps the way the authors' code pools: nn.AvgPool2d(k, stride=1, padding=k // 2) "
             "left at its defaults (the zero padding counts). Return the list [E_a, E_b]. Then look at E_k of "
             "a constant map: where is it not zero?",
             "def my_reference_edges(f, kernels):", answers.reference_edges,
             lambda: [(x, k) for x, k in zip(_f(0, [(1, 3, 9, 9), (2, 4, 12, 7), (1, 2, 16, 16)]),
                                             [(5, 7), (3, 5), (5, 7)])] + [(torch.full((1, 2, 10, 10), 3.0), (3, 5))]),
    Exercise("stage_sizes", "01",
             "Without running a network: for a square input of img_size pixels and an output stride of 8, 16 "
             "or 32, return the spatial sizes of the four backbone stages [layer1, layer2, layer3, layer4].",
             "def my_stage_sizes(img_size, output_stride):", answers.stage_sizes,
             lambda: [(s, o) for s in (64, 96, 100) for o in (8, 16, 32)]),
    Exercise("reference_to_ours", "01",
             "The authors' PEE squeezes [F, A_a F, A_b F] with a 1x1 weight W (R, 3R, 1, 1); we squeeze "
             "[F, F - A_a F, F - A_b F]. Return our weight V (R, 3R, 1, 1) that computes the same function: "
             "then the authors' trained weights load into banet_lite unchanged in meaning.",
             "def my_ours_from_reference(w):", answers.ours_from_reference,
             lambda: [(x,) for x in _f(1, [(4, 12, 1, 1), (8, 24, 1, 1)])]),
    Exercise("build_pee", "01",
             "Build PEE as an nn.Module: __init__(dim, kernels, border_rule) creates the 1x1 squeeze "
             "(3R -> R) and the fusion unit; forward(f) takes F' (B, R, h, w) and returns (F_pee, edges): "
             "F_pee (B, R, h, w) and the edge maps [E_a, E_b] concatenated, (B, 2R, h, w).",
             "class MyPEE(nn.Module):", answers.PEEAnswer,
             lambda: [((4, (5, 7), "exclude_padding"), (_f(2, [(2, 4, 12, 12)])[0],)),
                      ((3, (3, 5), "zero_padding"), (_f(3, [(1, 3, 9, 7)])[0],))],
             kind="module"),
    Exercise("paper_ia", "02",
             "Write the paper's parameter-free interactive attention (the form without the blocks A_e, A_s). "
             "Return (E, S).",
             "def my_paper_ia(e, s):", answers.paper_ia,
             lambda: [tuple(_f(s, [(2, 4, 6, 6)] * 2)) for s in (0, 1)]),
    Exercise("separable_params", "02",
             "How many parameters has one depthwise-separable unit with R channels in and out (depthwise "
             "3x3 without bias, BatchNorm, pointwise 1x1 without bias)? Return the count as a formula in R.",
             "def my_separable_params(R):", answers.separable_params, lambda: [(r,) for r in (1, 16, 32, 128)]),
    Exercise("ia_blocks_params", "02",
             "How many parameters do the reference's two attention blocks A_e, A_s add to one IA (each a "
             "depthwise-separable unit)? The paper's form has none: this is what it saves per stage.",
             "def my_ia_blocks_params(R):", answers.ia_blocks_params, lambda: [(r,) for r in (16, 32, 128)]),
    Exercise("build_mtl_stage", "02",
             "Build one mini-MTL stage with the reference's IA as an nn.Module: __init__(dim, num_classes) "
             "creates, in this order, the edge branch e, the segmentation branch s, the attention blocks A_e "
             "and A_s, the edge head and the segmentation head; forward(x) takes the PEE features "
             "(B, R, h, w) and returns (S, side_mask, side_edge): S (B, R, h, w), the two heads' logits "
             "(B, K, h, w).",
             "class MyMiniMTLStage(nn.Module):", answers.MiniMTLStageAnswer,
             lambda: [((4, 2), (_f(4, [(2, 4, 10, 10)])[0],)), ((3, 1), (_f(5, [(1, 3, 7, 9)])[0],))],
             kind="module"),
    Exercise("paper_cff", "03",
             "Write the paper's parameter-free CFF for receiving stage i (counted from 0), every other S_j "
             "bilinearly resized to S_i's size with align_corners=True. Return out_i.",
             "def my_paper_cff(feats, stage):", answers.paper_cff,
             lambda: [(_f(s, [(1, 3, 16, 16), (1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8)]), i)
                      for s, i in ((0, 0), (1, 2), (2, 3))]),
    Exercise("build_cff", "03",
             "Build the reference's CFF for receiving stage i as an nn.Module: __init__(dim, stage) creates "
             "the four 3x3 convs W_1..W_4 (R -> R, no bias), in stage order; forward(feats) takes S_1..S_4 "
             "(each (B, R, h_j, w_j)) and returns out_i (B, R, h_i, w_i).",
             "class MyCFF(nn.Module):", answers.CFFAnswer,
             lambda: [((3, i), (_f(6 + i, [(1, 3, 16, 16), (1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8)]),))
                      for i in (0, 2)],
             kind="module"),
    Exercise("build_aspp", "04",
             "Build ASPP as an nn.Module: __init__(c_in, dim, rates) creates, in this order, the 1x1 branch, "
             "one dilated 3x3 branch per rate, the image-pooling branch and the 1x1 projection, each conv "
             "without bias and followed by BatchNorm and ReLU; forward(x) (B, C, h, w) -> (B, D, h, w).",
             "class MyASPP(nn.Module):", ASPP,
             lambda: [((8, 4, (2, 4, 6)), (_f(8, [(2, 8, 12, 12)])[0],)),
                      ((5, 3, (1, 2, 3)), (_f(9, [(1, 5, 9, 7)])[0],))],
             kind="module"),
    Exercise("soft_dice_loss", "04",
             "Write the soft Dice loss of 2-class logits (B, 2, H, W) against a (B, 1, H, W) mask: p = softmax "
             "foreground probability, per image 1 - (2 sum p y + 1) / (sum p + sum y + 1), then the mean.",
             "def my_soft_dice_loss(logits, mask):", soft_dice_loss,
             lambda: [(_f(s, [(2, 2, 12, 12)])[0], _m(s, 2, 12)) for s in (0, 1)]
             + [(torch.zeros(1, 2, 6, 6), torch.zeros(1, 1, 6, 6))]),
    Exercise("joint_loss", "04",
             "Write the joint loss of 2-class logits: the final output's cross-entropy plus its soft Dice loss, "
             "plus, over the four stages, each side mask's cross-entropy against the mask and each side "
             "edge's cross-entropy against the boundary band (bl.edge_target), the boundary class weighted "
             "edge_pos_weight (None: unweighted). Every map is (B, 2, H, W), the mask (B, 1, H, W).",
             "def my_joint_loss(logits, side_masks, side_edges, mask, edge_pos_weight):", answers.joint_loss,
             lambda: [(*_f(s, [(2, 2, 16, 16)] * 1), _f(s + 1, [(2, 2, 16, 16)] * 4),
                       _f(s + 2, [(2, 2, 16, 16)] * 4), _m(s, 2, 16), w) for s, w in ((0, None), (1, 10.0))]),
    Exercise("assemble_tiny", "04",
             "Assemble your modules into the whole network: __init__(config) creates, in this order, the "
             "backbone (bl.DilatedResNet), the four 1x1 reductions C_i -> R, four of your PEEs, four mini-MTL "
             "stages, four CFFs, your ASPP and the decoder (bl.Decoder); forward(x) returns (logits, "
             "side_masks, side_edges), every map resized to the input's size. It must match "
             "bl.build_model('tiny').",
             "class MyTinyBANet(nn.Module):", answers.TinyBANetAnswer,
             lambda: [((get_config("tiny"),), (_f(10, [(1, 3, 64, 64)])[0],))], kind="module"),
    Exercise("balanced_pos_weight", "05",
             "From a batch of masks, return the edge_pos_weight that balances the boundary class: (1 - p) / p, "
             "p the fraction of boundary pixels (bl.edge_target).",
             "def my_balanced_pos_weight(masks):", answers.balanced_pos_weight,
             lambda: [(_m(s, 4, 48),) for s in (0, 1, 2)]),
    Exercise("poly_lr", "05",
             "Write the poly learning-rate schedule: lr(step) = base_lr * (1 - step / total_steps) ** 0.9.",
             "def my_poly_lr(base_lr, step, total_steps):", answers.poly_lr,
             lambda: [(1e-4, s, 100) for s in (0, 1, 50, 99, 100)] + [(3e-3, 7, 64)]),
    Exercise("dice_jaccard", "06",
             "From a predicted and a true boolean mask, return (Dice, Jaccard) with the paper's empty rule: "
             "both empty -> 1, 1; only one empty -> 0, 0.",
             "def my_dice_jaccard(pred, target):", answers.dice_jaccard, lambda: answers.np_mask_pairs(0)),
    Exercise("boundary_f", "06",
             "Boundary F-score with a 2-pixel tolerance: precision = share of predicted boundary pixels within "
             "2 px of the true boundary, recall likewise the other way, F = 2PR / (P + R); both empty -> 1, "
             "one empty -> 0. (Boundary pixels: the mask minus its 4-neighbour erosion.)",
             "def my_boundary_f(pred, target):", answers.boundary_f, lambda: answers.np_mask_pairs(1)),
]}


def _flatten(x) -> list:
    if isinstance(x, (list, tuple)):
        return [y for item in x for y in _flatten(item)]
    return [x]


def _compare(got, want) -> tuple[bool, str]:
    """(same, detail): tensors and arrays within float tolerance, numbers within 1e-6 relative."""
    got_items, want_items = _flatten(got), _flatten(want)
    if len(got_items) != len(want_items):
        return False, f"returned {len(got_items)} value(s), expected {len(want_items)}"
    worst = 0.0
    for g, w in zip(got_items, want_items):
        if isinstance(w, (Tensor, np.ndarray)):
            g_t, w_t = torch.as_tensor(np.asarray(g) if not isinstance(g, Tensor) else g), torch.as_tensor(w)
            if tuple(g_t.shape) != tuple(w_t.shape):
                return False, f"shape {tuple(g_t.shape)}, expected {tuple(w_t.shape)}"
            diff = (g_t.double() - w_t.double()).abs()
            if diff.numel():
                d = diff.max().item()
                if not d <= 1e-5 + 1e-4 * w_t.double().abs().max().item():
                    where = np.unravel_index(int(diff.argmax()), tuple(diff.shape))
                    return False, f"largest difference {d:.1e} at index {tuple(int(i) for i in where)}"
                worst = max(worst, d)
        else:
            try:
                g_f, w_f = float(g), float(w)
            except (TypeError, ValueError):
                return False, f"returned {g!r}, expected a number like {w!r}"
            if not (math.isclose(g_f, w_f, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(g_f) and math.isnan(w_f))):
                return False, f"returned {g_f:.6g}, expected {w_f:.6g}"
            worst = max(worst, abs(g_f - w_f))
    return True, f"{worst:.1e}"


def _report(name: str, n: int, total: int, err: Exception) -> bool:
    if isinstance(err, NotImplementedError):
        print(f"✏️ {name}: not done yet (the stub raises NotImplementedError)")
    else:  # the reader's code: report it, do not stop the notebook
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


def _check_module(ex: Exercise, module_class: type) -> bool:
    cases, worst = ex.cases(), 0.0
    for n, (init_args, inputs) in enumerate(cases, 1):
        torch.manual_seed(0)
        library = ex.reference(*init_args)
        _randomize_batchnorm(library, n)
        try:
            yours = module_class(*init_args)
            if not isinstance(yours, nn.Module):
                print(f"❌ {ex.name}: {ex.signature.split('(')[0][6:]}(...) made a {type(yours).__name__}, "
                      "not an nn.Module")
                return False
            problem = _load_weights(yours, library)
            if problem:
                print(f"❌ {ex.name}: the library's weights do not fit your module: {problem}")
                return False
            with torch.no_grad():
                want, got = library.eval()(*inputs), yours.eval()(*inputs)
        except Exception as err:
            return _report(ex.name, n, len(cases), err)
        same, detail = _compare(got, want)
        if not same:
            print(f"❌ {ex.name}: input {n} of {len(cases)} differs: {detail}")
            return False
        worst = max(worst, float(detail))
    print(f"✅ {ex.name}: matches banet_lite on {len(cases)} inputs, same weights (largest difference {worst:.1e})")
    return True


def check(name: str, yours: Callable) -> bool:
    """Run `yours` (a function, or a module class) and the library's answer to exercise `name` on the same
    inputs; print a verdict and return whether they agree."""
    if name not in EXERCISES:
        raise ValueError(f"exercises.check: unknown exercise {name!r}; choose one of {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    if ex.kind == "module":
        return _check_module(ex, yours)
    cases, worst = ex.cases(), 0.0
    for n, args in enumerate(cases, 1):
        torch.manual_seed(0)  # the same weights for any module built inside either function
        want = ex.reference(*args)
        torch.manual_seed(0)
        try:
            got = yours(*args)
        except Exception as err:
            return _report(name, n, len(cases), err)
        same, detail = _compare(got, want)
        if not same:
            print(f"❌ {name}: input {n} of {len(cases)} differs: {detail}")
            return False
        worst = max(worst, float(detail))
    print(f"✅ {name}: matches banet_lite on {len(cases)} inputs (largest difference {worst:.1e})")
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


def show(name: str) -> None:
    """Print an exercise's task and the stub's signature."""
    if name not in EXERCISES:
        raise ValueError(f"exercises.show: unknown exercise {name!r}; choose one of {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    print(f"Exercise {ex.name} (notebook {ex.notebook}): {ex.task}\n    {ex.signature}")
