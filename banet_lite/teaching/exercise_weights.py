"""Putting one module's weights into another, for the exercises and the lessons that rebuild
a library module.

    randomize_batchnorm(module, seed=None)   every BatchNorm gets a random scale, shift, running
                                             mean and variance
    copy_weights(source, target)             the source's tensors into the target: by name, or in
                                             creation order

With its defaults (weight 1, bias 0, running mean 0, running variance 1) an eval-mode BatchNorm is
the identity, so a rebuilt module that forgot one would still match: randomise them first.
`copy_weights` raises `WeightMisfit` when the tensors do not fit, with a table of both modules'
tensors around the first difference and, for the usual structural slips (a missing or extra
BatchNorm, a convolution bias too many or too few), a hint that names it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .exercise_answers import generator


def randomize_batchnorm(module: nn.Module, seed: int | None = None) -> nn.Module:
    """Give every BatchNorm in `module` a random weight (0.5-1.5), bias, running mean
    (both about +-0.2) and running variance (0.5-1.5), from `seed` (None: torch's global generator).
    Returns the module, so that `randomize_batchnorm(bl.ASPP(...)).eval()` reads in one line."""
    g = None if seed is None else generator(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, _BatchNorm) and m.affine and m.track_running_stats:
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return module


class WeightMisfit(ValueError):
    """The source's tensors do not fit the target. `lines`: what differs, a table around the first
    difference; `hint`: the structural slip it looks like, or None."""

    def __init__(self, lines: list[str], hint: str | None = None):
        super().__init__("\n".join(lines + ([f"hint: {hint}"] if hint else [])))
        self.lines, self.hint = lines, hint


def copy_weights(source: nn.Module, target: nn.Module) -> int:
    """Load every tensor of `source` (parameters and buffers) into `target`: by name when both name
    the same tensors with the same shapes, else in the order the modules create them, when every
    shape agrees. Returns how many tensors it copied; raises WeightMisfit (a ValueError) naming what
    does not fit."""
    want, have = source.state_dict(), target.state_dict()
    shapes = {k: tuple(v.shape) for k, v in want.items()}
    if shapes == {k: tuple(v.shape) for k, v in have.items()}:
        target.load_state_dict(want)  # the same names: whatever order they were created in
        return len(want)
    if [tuple(t.shape) for t in want.values()] != [tuple(t.shape) for t in have.values()]:
        raise _misfit(source, target)
    target.load_state_dict(dict(zip(have, want.values())))
    return len(want)


def _owner(module: nn.Module, name: str) -> nn.Module:
    return module.get_submodule(name.rpartition(".")[0])


def _kind(module: nn.Module, names: list[str], k: int) -> str:
    """What tensor k of `module` is part of: "batchnorm", "bias" (a convolution's), "other", or
    "none"."""
    if k >= len(names):
        return "none"
    owner = _owner(module, names[k])
    if isinstance(owner, _BatchNorm):
        return "batchnorm"
    return ("bias" if isinstance(owner, nn.modules.conv._ConvNd) and names[k].endswith(".bias")
            else "other")


def _structural_hint(source: nn.Module, target: nn.Module, lib: list[str], yours: list[str],
                     k: int) -> str | None:
    """The slip that explains the first difference (at tensor k), if it is one of the usual ones."""
    theirs, mine = _kind(source, lib, k), _kind(target, yours, k)
    after = f", right after {lib[k - 1]}" if k else ", first of all"
    if theirs == "batchnorm" and mine != "batchnorm":
        bn = _owner(source, lib[k])
        return (f"a missing BatchNorm: the library has a {type(bn).__name__}({bn.num_features}), "
                f"{lib[k].rpartition('.')[0]}{after}, and your module has none there "
                "(a BatchNorm's tensors: weight, bias, running_mean, running_var, "
                "num_batches_tracked)")
    if mine == "batchnorm" and theirs != "batchnorm":
        return (f"a BatchNorm too many: your {yours[k].rpartition('.')[0]} is a BatchNorm where "
                f"the library has {lib[k] if k < len(lib) else 'nothing more'} "
                "(no BatchNorm there)")
    if mine == "bias" and theirs != "bias":
        return (f"a bias too many: your {yours[k].rpartition('.')[0]} has one, the library's "
                "convolution there has none "
                "(bias=False; a BatchNorm's shift, or none at all, follows it)")
    if theirs == "bias" and mine != "bias":
        return (f"a missing bias: the library's {lib[k].rpartition('.')[0]} has one (bias=True), "
                "your convolution there has none")
    return None


def _misfit(source: nn.Module, target: nn.Module, before: int = 3, after: int = 4) -> WeightMisfit:
    """Both modules' tensors in creation order, side by side, around the first one that differs."""
    want, have = source.state_dict(), target.state_dict()
    lib, yours = list(want), list(have)

    def cell(names: list[str], tensors: dict, i: int) -> str:
        return f"{names[i]} {tuple(tensors[names[i]].shape)}" if i < len(names) else "-"

    rows = [(cell(lib, want, i), cell(yours, have, i)) for i in range(max(len(lib), len(yours)))]
    k = next(i for i in range(len(rows)) if i >= min(len(lib), len(yours))
             or tuple(want[lib[i]].shape) != tuple(have[yours[i]].shape))
    lines = [f"your module creates {len(yours)} tensors (weights and BatchNorm buffers), "
             f"the library's {len(lib)}; they first differ at tensor {k + 1}:"]
    header = "the library's, in creation order"
    width = max(len(header), *(len(r[0]) for r in rows)) + 3
    lines.append(f"       {header:<{width}}yours")
    start, stop = max(0, k - before), min(len(rows), k + after + 1)
    if start:
        lines.append("       ...")
    for i in range(start, stop):
        lines.append(f"{'>' if i == k else ' '} {i + 1:>3}  {rows[i][0]:<{width}}{rows[i][1]}")
    if stop < len(rows):
        lines.append(f"       ... ({len(rows) - stop} more)")
    return WeightMisfit(lines, _structural_hint(source, target, lib, yours, k))
