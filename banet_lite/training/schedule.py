"""The learning-rate schedule: the paper's poly decay, over a number of epochs or over a time
budget.

    lr_t = lr * (1 - t / T) ^ power        t = optimiser step, T = the schedule's length in steps

`schedule="epochs"`: T = epochs x steps per epoch, fixed; a time budget only stops the run (after
the epoch in progress), which then ends at whatever learning rate it had reached.

`schedule="budget"` (the default): with a time budget, T spans the budget. After every epoch the run
counts the time it has spent (`clock`, from one epoch's end to the next, so the checkpoint writes
are in it) and re-estimates how many more epochs fit:

    n = floor((budget - spent) / d)       d = the median time of the last RECENT epochs
    the run ends after min(epochs, done + n) epochs, and T = that x steps per epoch

n = 0 stops the run. When the plan changes, the decay restarts from the factor it has reached and
spans the steps left (the learning rate stays continuous); while the plan holds, this is the poly
schedule itself, so the run ends at the schedule's floor (lr 0) as a fixed-length run does. The
first epoch runs on the plan `epochs` gives (nothing is measured yet); with `epochs` and a time
budget together, whichever ends first ends the run. Without a time budget the two schedules are
one: T = epochs x steps per epoch, bit for bit.

Exact resume: the plan (T, where the decay restarted, the measured epoch times) is `PolySchedule`'s
state. LambdaLR's state_dict saves a callable object's attributes, so `last.pt`'s "scheduler" entry
holds the plan, and a resumed run continues it: the budget is the whole run's, resumes included
(time between the last checkpoint and a crash is not counted). Given its epoch times the plan is
deterministic; tests replace `clock` to give those times.
"""

from __future__ import annotations

import math
import statistics
import time

SCHEDULES = ("budget", "epochs")
RECENT = 5  # epochs in the time estimate: the median follows a drift and ignores one slow epoch
# With a time budget and no `epochs` given (schedule="budget"), the budget alone sets the length;
# `epochs` becomes this cap, far beyond what a budget allows (a number still: the history and
# checkpoints keep one)
BUDGET_EPOCHS = 10_000
clock = time.perf_counter  # the run's clock (tests put a fake one here)


def steps_per_epoch(n_train: int, batch_size: int, world: int = 1) -> tuple[int, bool]:
    """(optimiser steps per epoch, whether the last incomplete batch is dropped) for `n_train`
    images over `world` processes: a last incomplete batch is dropped when a process has more than
    one batch, so that BatchNorm never sees a lone image; the poly schedule's T is epochs times
    these steps."""
    per_rank = math.ceil(n_train / world)  # DistributedSampler pads to equal shards
    drop_last = per_rank > batch_size
    return (per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)), drop_last


def poly_lr(step: int, total_steps: int, power: float = 0.9) -> float:
    """The poly schedule's factor lr_t / lr = (1 - t / T)^power; 0 from step T on."""
    return max(0.0, 1 - step / total_steps) ** power


def spans_budget(schedule: str, time_budget: float | None) -> bool:
    """Whether the schedule's length follows the time budget (module docstring)."""
    return schedule == "budget" and time_budget is not None


class PolySchedule:
    """LambdaLR's factor lr_t / lr, and the plan it follows. Plain attributes only (ints, floats,
    a list of floats): LambdaLR.state_dict() saves them, and torch.load(weights_only=True) reads
    them back."""

    def __init__(self, steps_per_epoch: int, epochs: int, power: float = 0.9):
        self.steps_per_epoch, self.power = steps_per_epoch, power
        self.planned_epochs = epochs
        self.total_steps = epochs * steps_per_epoch  # T
        # the decay (re)starts at this step, from this factor
        self.anchor_step, self.anchor_factor = 0, 1.0
        self.epoch_seconds: list[float] = []  # every epoch's time so far, resumes included

    def __call__(self, step: int) -> float:
        # anchor 0, factor 1 (no re-plan yet): exactly poly_lr(step, T), the fixed-length schedule
        return self.anchor_factor * poly_lr(step - self.anchor_step,
                                            self.total_steps - self.anchor_step, self.power)

    def epoch_done(self, done: int, seconds: float, cfg) -> str | None:
        """Record that `done` epochs are over, the last one having taken `seconds`; re-plan where
        the schedule spans the budget. Returns why the run stops here for its time budget, else
        None. `cfg`: the run's TrainConfig (time_budget, epochs, schedule)."""
        self.epoch_seconds.append(float(seconds))
        budget = cfg.time_budget
        if budget is None or done >= cfg.epochs:
            return None
        spent = sum(self.epoch_seconds)
        # schedule="epochs": stop when an epoch like this one
        if not spans_budget(cfg.schedule, budget):
            return (None if spent + seconds <= budget
                    else f"time budget of {budget:.0f}s reached after epoch {done}")
        if done >= self.planned_epochs:
            return (f"time budget of {budget:.0f}s: the schedule planned to it ended "
                    f"after epoch {done}")
        estimate = statistics.median(self.epoch_seconds[-RECENT:])
        fits = int((budget - spent) // estimate) if estimate > 0 else cfg.epochs
        if fits <= 0:
            return f"time budget of {budget:.0f}s reached after epoch {done}"
        self.replan(done, min(cfg.epochs, done + fits))
        return None

    def replan(self, done: int, planned_epochs: int) -> None:
        """End the schedule after `planned_epochs` epochs, decaying from the factor reached after
        `done`."""
        if planned_epochs == self.planned_epochs:
            return  # the plan holds: the schedule stays the one it is, bit for bit
        step = done * self.steps_per_epoch
        self.anchor_factor, self.anchor_step = self(step), step
        self.planned_epochs, self.total_steps = (planned_epochs,
                                                 planned_epochs * self.steps_per_epoch)
