"""Exercises: `check(name, your_function)` compares a reader's function with the library's piece.

Every notebook ends its sections with a few exercises. Each has a stub the reader fills in, a call

    bl.exercises.check("pee_reference_form", my_pee_reference_form)

and a solution in a collapsed cell. `check` runs the reader's function and the library's reference on
the same inputs (fixed seeds, several shapes, edge cases such as empty masks), compares the results
and prints one plain verdict:

    ✅ pee_reference_form: matches banet_lite on 4 inputs (largest difference 0.0e+00)
    ❌ pee_reference_form: input 2 of 4 differs: largest difference 3.1e-01 at index (0, 3, 0, 0)
    ✏️ pee_reference_form: not done yet (the stub raises NotImplementedError)

It returns True only when every input matches, so a solution cell can `assert` it. `EXERCISES`
lists them all, by notebook; `bl.exercises.show("name")` prints the task.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .cff import CrossFeatureFusion
from .data.transforms import normalize
from .layers import SeparableConv
from .losses import edge_target, soft_dice_loss
from .mtl import InteractiveAttention
from .pee import pyramid_edges


@dataclass(frozen=True)
class Exercise:
    name: str
    notebook: str  # "01"
    task: str  # what to write, in one paragraph
    signature: str  # the stub's def line
    reference: Callable  # the library's answer, same signature
    cases: Callable[[], list[tuple]]  # argument tuples, each built from a fixed seed


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _masks(seed: int, n: int = 2, size: int = 24) -> Tensor:
    """(n, 1, size, size) blob masks, one touching the frame; plus the empty and full corner cases."""
    g = _generator(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for _ in range(n):
        cy, cx = torch.randint(0, size, (2,), generator=g)
        r = torch.randint(3, size // 2, (1,), generator=g)
        out.append((((yy - cy) ** 2 + (xx - cx) ** 2) <= r**2).float())
    return torch.stack(out)[:, None]


# --- the reference answers that are not a library function already -------------------------------------


def _reference_edges(f: Tensor, kernels: tuple[int, ...]) -> list[Tensor]:
    return pyramid_edges(f, kernels, "zero_padding")


def _stage_sizes(img_size: int, output_stride: int) -> list[int]:
    from .backbone import DilatedResNet

    net = DilatedResNet(18, 8, output_stride)
    with torch.no_grad():
        return [f.shape[-1] for f in net(torch.zeros(1, 3, img_size, img_size))]


def _ours_from_reference(w: Tensor) -> Tensor:
    """Reference PEE squeeze weight on [F, A_a F, A_b F] -> ours on [F, F - A_a F, F - A_b F]."""
    w_f, w_a, w_b = w.chunk(3, dim=1)  # each (R, R, 1, 1)
    return torch.cat([w_f + w_a + w_b, -w_a, -w_b], dim=1)


def _paper_ia(e: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    E, S, _, _ = InteractiveAttention(e.shape[1], attention_blocks=False)(e, s)
    return E, S


def _separable_params(r: int) -> int:
    return sum(p.numel() for p in SeparableConv(r, r).parameters())


def _ia_blocks_params(r: int) -> int:
    return sum(p.numel() for p in InteractiveAttention(r, attention_blocks=True).parameters())


def _paper_cff(feats: list[Tensor], stage: int) -> Tensor:
    return CrossFeatureFusion(feats[0].shape[1], stage, gate_convs=False)(feats)[0]


def _cff_params(r: int) -> int:
    return 4 * sum(p.numel() for p in CrossFeatureFusion(r, 0).parameters())


def _aspp_params(c: int, d: int) -> int:
    from .aspp import ASPP

    return sum(p.numel() for p in ASPP(c, d, (6, 12, 18)).parameters())


def _poly_lr(base_lr: float, step: int, total_steps: int) -> float:
    from .train import poly_lr

    return base_lr * poly_lr(step, total_steps)


def _dice_jaccard(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    from .metrics import confusion, dice, jaccard

    c = confusion(pred, target)
    return dice(*c), jaccard(*c)


def _boundary_f(pred: np.ndarray, target: np.ndarray) -> float:
    from .metrics import boundary_f_score

    return boundary_f_score(pred, target, tolerance=2)


def _balanced_pos_weight(masks: Tensor) -> float:
    p = edge_target(masks).mean().item()
    return (1 - p) / p


def _features(seed: int, shapes) -> list[Tensor]:
    g = _generator(seed)
    return [torch.randn(*s, generator=g) for s in shapes]


def _np_masks(seed: int) -> list[tuple]:
    m = _masks(seed, 4, 32)[:, 0].bool().numpy()
    empty = np.zeros_like(m[0])
    return [(m[0], m[1]), (m[2], m[2]), (m[3], m[0]), (empty, m[1]), (m[1], empty), (empty, empty)]


EXERCISES: dict[str, Exercise] = {e.name: e for e in [
    Exercise("edge_target", "00",
             "Write the boundary band of a (B, 1, H, W) mask: 1 where |y - AvgPool_3x3(y)| > 0 (stride 1, "
             "padding 1), under both border rules: 'exclude_padding' (count_include_pad=False) and "
             "'zero_padding' (the reference's count_include_pad=True).",
             "def my_edge_target(mask, border_rule):", edge_target,
             lambda: [(_masks(s), rule) for s in (0, 1) for rule in ("exclude_padding", "zero_padding")]
             + [(torch.ones(1, 1, 8, 8), "zero_padding"), (torch.zeros(1, 1, 8, 8), "exclude_padding")]),
    Exercise("normalize", "00",
             "Turn a uint8 (H, W, 3) image into the float (3, H, W) tensor the network reads: scale to 0..1, "
             "then subtract the ImageNet mean and divide by its std, per channel "
             "(bl.viz.IMAGENET_MEAN, bl.viz.IMAGENET_STD).",
             "def my_normalize(image):", normalize,
             lambda: [(np.asarray(torch.randint(0, 256, (h, w, 3), generator=_generator(h)).numpy(), dtype=np.uint8),)
                      for h, w in ((4, 5), (16, 16))]),
    Exercise("balanced_pos_weight", "05",
             "From a batch of masks, return the edge_pos_weight that balances the boundary class: (1 - p) / p, "
             "p the fraction of boundary pixels (bl.edge_target).",
             "def my_balanced_pos_weight(masks):", _balanced_pos_weight,
             lambda: [(_masks(s, 4, 48),) for s in (0, 1, 2)]),
    Exercise("pee_reference_form", "01",
             "Write PEE's edge maps the way the authors' code pools: E_k = F - AvgPool_k(F) with "
             "nn.AvgPool2d(k, stride=1, padding=k // 2) left at its defaults (the zero padding counts). "
             "Return the list [E_a, E_b]. Then look at E_k of a constant map: where is it not zero?",
             "def my_reference_edges(f, kernels):", _reference_edges,
             lambda: [(x, k) for x, k in zip(_features(0, [(1, 3, 9, 9), (2, 4, 12, 7), (1, 2, 16, 16)]),
                                             [(5, 7), (3, 5), (5, 7)])] + [(torch.full((1, 2, 10, 10), 3.0), (3, 5))]),
    Exercise("stage_sizes", "01",
             "Without running a network: for a square input of img_size pixels and an output stride of 8, 16 "
             "or 32, return the spatial sizes of the four backbone stages [layer1, layer2, layer3, layer4]. "
             "(The stem halves twice; layer2..4 each halve unless dilated; sizes round up: conv padding.)",
             "def my_stage_sizes(img_size, output_stride):", _stage_sizes,
             lambda: [(s, o) for s in (64, 96, 100) for o in (8, 16, 32)]),
    Exercise("reference_to_ours", "01",
             "The authors' PEE squeezes [F, A_a F, A_b F] with a 1x1 weight W (R, 3R, 1, 1); we squeeze "
             "[F, F - A_a F, F - A_b F]. Return our weight V (R, 3R, 1, 1) that computes the same function: "
             "then the authors' trained weights load into banet_lite unchanged in meaning.",
             "def my_ours_from_reference(w):", _ours_from_reference,
             lambda: [(x,) for x in _features(1, [(4, 12, 1, 1), (8, 24, 1, 1)])]),
    Exercise("paper_ia", "02",
             "Write the paper's parameter-free interactive attention: E = e + (1 - sig(e)) * s and "
             "S = s + (1 - sig(s)) * e. Return (E, S).",
             "def my_paper_ia(e, s):", _paper_ia,
             lambda: [tuple(_features(s, [(2, 4, 6, 6)] * 2)) for s in (0, 1)]),
    Exercise("separable_params", "02",
             "How many parameters has one depthwise-separable unit with R channels in and out (depthwise "
             "3x3 without bias, BatchNorm, pointwise 1x1 without bias)? Return the count as a formula in R.",
             "def my_separable_params(R):", _separable_params, lambda: [(r,) for r in (1, 16, 32, 128)]),
    Exercise("ia_blocks_params", "02",
             "How many parameters do the reference's two attention blocks A_e, A_s add to one IA (each a "
             "depthwise-separable unit)? The paper's form has none: this is what it saves per stage.",
             "def my_ia_blocks_params(R):", _ia_blocks_params, lambda: [(r,) for r in (16, 32, 128)]),
    Exercise("paper_cff", "03",
             "Write the paper's parameter-free CFF for receiving stage i (counted from 0): "
             "out_i = S_i + (1 - sig(S_i)) * sum_{j != i} sig(S_j') * S_j', S_j' bilinearly resized to S_i's "
             "size with align_corners=True.",
             "def my_paper_cff(feats, stage):", _paper_cff,
             lambda: [(_features(s, [(1, 3, 16, 16), (1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8)]), i)
                      for s, i in ((0, 0), (1, 2), (2, 3))]),
    Exercise("cff_params", "03",
             "How many parameters has the reference's CFF over all four stages (4 modules, each with four "
             "3x3 convs R -> R without bias)? The paper's parameter-free form saves all of them.",
             "def my_cff_params(R):", _cff_params, lambda: [(r,) for r in (16, 32, 128)]),
    Exercise("aspp_params", "04",
             "How many parameters has ASPP from C input channels to D (the 1x1 branch, three dilated 3x3 "
             "branches and the image-pooling branch, each conv without bias + BatchNorm, then the 1x1 "
             "projection of the 5D concatenation + BatchNorm)? The paper's C = 2048, D = 256.",
             "def my_aspp_params(C, D):", _aspp_params, lambda: [(c, d) for c, d in ((8, 4), (64, 16), (2048, 256))]),
    Exercise("poly_lr", "05",
             "Write the poly learning-rate schedule: lr(step) = base_lr * (1 - step / total_steps) ** 0.9.",
             "def my_poly_lr(base_lr, step, total_steps):", _poly_lr,
             lambda: [(1e-4, s, 100) for s in (0, 1, 50, 99, 100)] + [(3e-3, 7, 64)]),
    Exercise("soft_dice_loss", "04",
             "Write the soft Dice loss of 2-class logits (B, 2, H, W) against a (B, 1, H, W) mask: p = softmax "
             "foreground probability, per image 1 - (2 sum p y + 1) / (sum p + sum y + 1), then the mean.",
             "def my_soft_dice_loss(logits, mask):", soft_dice_loss,
             lambda: [(_features(s, [(2, 2, 12, 12)])[0], _masks(s, 2, 12)) for s in (0, 1)]
             + [(torch.zeros(1, 2, 6, 6), torch.zeros(1, 1, 6, 6))]),
    Exercise("dice_jaccard", "06",
             "From a predicted and a true boolean mask, return (Dice, Jaccard) with the paper's empty rule: "
             "both empty -> 1, 1; only one empty -> 0, 0.",
             "def my_dice_jaccard(pred, target):", _dice_jaccard, lambda: _np_masks(0)),
    Exercise("boundary_f", "06",
             "Boundary F-score with a 2-pixel tolerance: precision = share of predicted boundary pixels within "
             "2 px of the true boundary, recall likewise the other way, F = 2PR / (P + R); both empty -> 1, "
             "one empty -> 0. (Boundary pixels: the mask minus its 4-neighbour erosion.)",
             "def my_boundary_f(pred, target):", _boundary_f, lambda: _np_masks(1)),
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


def check(name: str, function: Callable) -> bool:
    """Run `function` and the library's answer to exercise `name` on the same inputs; print a verdict."""
    if name not in EXERCISES:
        raise ValueError(f"exercises.check: unknown exercise {name!r}; choose one of {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    cases = ex.cases()
    worst = 0.0
    for n, args in enumerate(cases, 1):
        torch.manual_seed(0)  # the same weights for any module built inside either function
        want = ex.reference(*args)
        torch.manual_seed(0)
        try:
            got = function(*args)
        except NotImplementedError:
            print(f"✏️ {name}: not done yet (the stub raises NotImplementedError)")
            return False
        except Exception as err:  # the reader's code: report it, do not stop the notebook
            print(f"❌ {name}: input {n} of {len(cases)} raised {type(err).__name__}: {err}")
            return False
        same, detail = _compare(got, want)
        if not same:
            print(f"❌ {name}: input {n} of {len(cases)} differs: {detail}")
            return False
        worst = max(worst, float(detail))
    print(f"✅ {name}: matches banet_lite on {len(cases)} inputs (largest difference {worst:.1e})")
    return True


def show(name: str) -> None:
    """Print an exercise's task and the stub's signature."""
    if name not in EXERCISES:
        raise ValueError(f"exercises.show: unknown exercise {name!r}; choose one of {sorted(EXERCISES)}")
    ex = EXERCISES[name]
    print(f"Exercise {ex.name} (notebook {ex.notebook}): {ex.task}\n    {ex.signature}")
