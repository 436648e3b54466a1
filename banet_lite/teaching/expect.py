"""`bl.expect`: a figure that came out of training, and the range it lands in on any machine.

A loss, a Dice or a gate statistic from a training run differs in its last digits from one CPU to
the next (other kernels, another summation order) and again on a GPU. A lesson states such a figure
once, with its range, in one line that reads as a sentence:

    bl.expect(summary["dice"], low=0.80, high=0.97, what="the course model's test Dice")
    bl.expect(profile.kind(), equals="a soft lesion mask", what="PEE at stage 2")

and the line fails, naming the figure, when the run lands outside. `when=False` turns the statement
off where it does not apply (a notebook run on other data than the stored one).
"""

from __future__ import annotations

import math


class UnexpectedFigure(AssertionError):
    """A trained figure outside the range its lesson states."""


def expect(value, *, low: float | None = None, high: float | None = None, equals=None, what: str,
           when: bool = True) -> None:
    """Fail, naming `what`, unless `value` lies in [low, high] (either bound may be left out) or
    equals `equals`. Nothing happens when `when` is False."""
    if not when:
        return
    if equals is not None:
        if value != equals:
            raise UnexpectedFigure(f"{what}: expected {equals!r}, got {value!r}")
        return
    if low is None and high is None:
        raise ValueError("expect: give low, high or equals")
    number = float(value)
    inside = (not math.isnan(number) and (low is None or number >= low)
              and (high is None or number <= high))
    if not inside:
        span = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise UnexpectedFigure(f"{what}: {number:.4g} is outside {span}, "
                               "the range it takes on any machine")
