"""What `exercises.check` says: an input case in words, and where two results differ, with enough
digits.

    describe(value)                 a float32 tensor (2, 4, 6, 6), a bool array (32, 32) all
                                    False, 0.0001, ...
    describe_call(label, names, args)   separable_params(R=16)
    compare(got, want, names)       None when they agree (within tolerance), else lines saying which
                                    output differs (by position, and by name), by how much and where

Tolerances: numbers within 1e-6 relative (1e-9 absolute), tensors and arrays within 1e-5 + 1e-4 x
the largest expected magnitude. Two numbers are printed with as many digits as it takes for them to
read differently.
"""

from __future__ import annotations

import math
from numbers import Number

import numpy as np
import torch
from torch import Tensor

from ..model.config import PRESETS, BANetConfig

INDENT = "   "


def _constant(values: np.ndarray) -> str:
    """' all False', ' all zeros', ' all 3.0' for a constant array of more than one value,
    else ''."""
    if values.size < 2 or not (values == values.flat[0]).all():
        return ""
    v = values.flat[0]
    if values.dtype == bool:
        return f" all {bool(v)}"
    return {0: " all zeros", 1: " all ones"}.get(float(v),  # type: ignore[call-overload]
                                                 f" all {float(v):g}")


def describe(value) -> str:
    """A short, readable account of one argument: tensors and arrays by dtype and shape, numbers and
    strings as themselves, lists of tensors by their members."""
    if isinstance(value, Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"{dtype} tensor {tuple(value.shape)}{_constant(value.detach().cpu().numpy())}"
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array {value.shape}{_constant(value)}"
    if isinstance(value, BANetConfig):
        if value == PRESETS.get(value.preset):
            return f"make_config({value.preset!r})"
        return f"BANetConfig(preset={value.preset!r}, ...)"
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Tensor, np.ndarray)) for v in value):
        runs: list[list] = []  # [description, count], consecutive equal descriptions as one
        for v in value:
            d = describe(v)
            if runs and runs[-1][0] == d:
                runs[-1][1] += 1
            else:
                runs.append([d, 1])
        return "[" + ", ".join(d if n == 1 else f"{n} x {d}" for d, n in runs) + "]"
    if value is None or isinstance(value, (bool, Number, str, tuple, list)):
        return repr(value)
    return type(value).__name__


def describe_call(label: str, names: list[str], args: tuple) -> str:
    named = ([f"{n}={describe(a)}" for n, a in zip(names, args)]
             + [describe(a) for a in args[len(names):]])
    return f"{label}({', '.join(named)})"


def _pair(got: float, want: float) -> tuple[str, str]:
    """Both numbers with the fewest significant digits (at least 6) that tell them apart."""
    if float(got).is_integer() and float(want).is_integer() and max(abs(got), abs(want)) < 1e15:
        return str(int(got)), str(int(want))
    for digits in range(6, 18):
        a, b = f"{got:.{digits}g}", f"{want:.{digits}g}"
        if a != b:
            return a, b
    return repr(got), repr(want)


def _numbers(got, want) -> tuple[list[str] | None, float]:
    try:
        g, w = float(got), float(want)
    except (TypeError, ValueError, RuntimeError):
        return [f"returned {describe(got)}, expected a number like {float(want):.6g}"], math.inf
    if math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(g) and math.isnan(w)):
        return None, abs(g - w)
    a, b = _pair(g, w)
    error = [f"difference {g - w:+.3g}"] if math.isfinite(g) and math.isfinite(w) else []
    if w != 0 and math.isfinite(g):
        error.append(f"relative error {abs(g - w) / abs(w):.1e}")
    return [f"returned {a}, expected {b}" + (f" ({', '.join(error)})" if error else "")], abs(g - w)


def _as_tensor(x) -> Tensor | None:
    if isinstance(x, Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError):
        return None


def _where(flat_index: int, shape: tuple) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


def _tensors(got, want) -> tuple[list[str] | None, float]:
    w = _as_tensor(want).double()
    if isinstance(got, (list, tuple, dict)):
        return [f"returned {type(got).__name__} {describe(got)}, expected one "
                f"{describe(want)}"], math.inf
    g = _as_tensor(got)
    if g is None or g.dtype in (torch.complex64, torch.complex128) or not g.numel() and w.numel():
        return [f"returned {describe(got)}, expected {describe(want)}"], math.inf
    g = g.double()
    if tuple(g.shape) != tuple(w.shape):
        return [f"returned shape {tuple(g.shape)}, expected {tuple(w.shape)}"], math.inf
    if not w.numel():
        return None, 0.0
    diff = (g - w).abs()
    diff[g.isnan() & w.isnan()] = 0.0
    diff[diff.isnan()] = math.inf  # a NaN where a number was expected
    tolerance = 1e-5 + 1e-4 * w[w.isfinite()].abs().max().item() if w.isfinite().any() else 1e-5
    largest = diff.max().item()
    if largest <= tolerance:
        return None, largest
    rel = torch.where(w != 0, diff / w.abs(), torch.zeros_like(diff)).flatten()
    lines = [f"{int((diff > tolerance).sum())} of {diff.numel()} values differ by "
             f"more than {tolerance:.1e}"]
    k_abs, k_rel = int(diff.flatten().argmax()), int(rel.argmax())
    for what, k in (("absolute", k_abs), ("relative", k_rel)):
        if what == "relative" and (k == k_abs or not rel[k] > 0):
            continue
        a, b = _pair(g.flatten()[k].item(), w.flatten()[k].item())
        size = diff.flatten()[k].item() if what == "absolute" else rel[k].item()
        also = f" (relative {rel[k].item():.1e})" if k == k_abs and rel[k] > 0 else ""
        lines.append(f"largest {what} difference {size:.1e}{also if what == 'absolute' else ''} at "
                     f"index {_where(k, tuple(w.shape))}: returned {a}, expected {b}")
    return lines, largest


def _flatten(x, name: str) -> list[tuple[str, object]]:
    """[(name, leaf)] in order: lists and tuples unpacked (their members named name[i]), dicts by
    key."""
    if isinstance(x, dict):
        return [item for k, v in x.items() for item in _flatten(v, str(k))]
    if isinstance(x, (list, tuple)):
        return [item for i, v in enumerate(x)
                for item in _flatten(v, f"{name}[{i}]" if name else "")]
    return [(name, x)]


def _named(want, names: tuple[str, ...]) -> list[tuple[str, object]]:
    if isinstance(want, (list, tuple)) and len(names) == len(want):
        return [item for n, v in zip(names, want) for item in _flatten(v, n)]
    if not isinstance(want, (list, tuple, dict)):
        return [(names[0] if names else "", want)]
    return _flatten(want, "")


def compare(got, want, names: tuple[str, ...] = ()) -> tuple[list[str] | None, float]:
    """(None, the largest difference) when `got` agrees with `want`, else (lines that say where not,
    the difference). `names`: the outputs' names, in order (a dict `want` names its own)."""
    expected = _named(want, names)
    returned = [v for _, v in _flatten(got, "")] if isinstance(want, (list, tuple, dict)) else [got]
    if len(returned) != len(expected):
        listed = ", ".join(n for n, _ in expected if n)
        return [f"returned {len(returned)} value(s), expected {len(expected)}"
                + (f": {listed}" if listed else "")], math.inf
    worst = 0.0
    for i, ((name, w), g) in enumerate(zip(expected, returned), 1):
        # a 0-d tensor reads as a number
        array = isinstance(w, (Tensor, np.ndarray)) and np.ndim(w) > 0
        problem, difference = (_tensors if array else _numbers)(g, w)
        if problem:
            if len(expected) == 1:
                return problem, difference
            label = name if isinstance(want, dict) else f"output {i} of {len(expected)}" + (
                f" ({name})" if name else "")
            if len(problem) == 1:
                return [f"{label}: {problem[0]}"], difference
            return [f"{label} differs: {problem[0]}"] + problem[1:], difference
        worst = max(worst, difference)
    return None, worst
