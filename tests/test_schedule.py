"""The learning-rate schedule (training/schedule.py): the poly decay over epochs, or over a time budget
re-estimated from epoch times; exact when resumed. Epoch times come from a fake clock: deterministic."""

import itertools
from pathlib import Path

import pytest
import torch
from train_configs import tiny_run

from banet_lite.errors import ConfigError
from banet_lite.training import schedule
from banet_lite.training import train as btrain
from banet_lite.training.checkpoint import load_checkpoint


def small_config(tmp_path: Path, **kw) -> btrain.TrainConfig:
    """8 synthetic images of 32 px, batch 4: 2 steps per epoch."""
    return tiny_run(**{"out": tmp_path / "run", "epochs": None, "device": "cpu", **kw})


def every_epoch_takes(monkeypatch, seconds: float) -> None:
    """The run's clock: each reading `seconds` after the one before (fit reads it once before its first
    epoch and once at the end of each)."""
    ticks = itertools.count()
    monkeypatch.setattr(schedule, "clock", lambda: seconds * next(ticks))


class Budget:
    def __init__(self, time_budget, epochs, schedule="budget"):
        self.time_budget, self.epochs, self.schedule = time_budget, epochs, schedule


# ------------------------------------------------------------------- the plan
def test_without_a_budget_it_is_the_poly_schedule_bit_for_bit():
    plan = schedule.PolySchedule(steps_per_epoch=7, epochs=5, power=0.9)
    for done in range(1, 5):
        assert plan.epoch_done(done, 12.5, Budget(None, 5)) is None
    assert [plan(t) for t in range(40)] == [schedule.poly_lr(t, 35, 0.9) for t in range(40)]
    assert plan.epoch_seconds == [12.5] * 4 and plan.planned_epochs == 5


def test_a_budget_plans_the_epochs_that_fit_and_keeps_the_rate_continuous():
    plan = schedule.PolySchedule(steps_per_epoch=10, epochs=1000)
    budget = Budget(100.0, 1000)
    before = plan(10)
    assert plan.epoch_done(1, 20.0, budget) is None  # 80 s left, 20 s an epoch: 4 more
    assert (plan.planned_epochs, plan.total_steps) == (5, 50)
    assert plan(10) == before and plan(50) == 0.0  # continuous at the re-plan; the floor at the plan's end
    before = plan(20)
    assert plan.epoch_done(2, 10.0, budget) is None  # median(20, 10) = 15 s: 70 s left, 4 more
    assert plan.planned_epochs == 6 and plan(20) == before and plan(60) == 0.0
    assert plan.epoch_done(3, 10.0, budget) is None  # median 10 s: 60 s left, 6 more -> 9
    assert plan.planned_epochs == 9
    for done in range(4, 9):
        assert plan.epoch_done(done, 10.0, budget) is None
    assert "ended after epoch 9" in plan.epoch_done(9, 10.0, budget)  # at lr 0: the schedule is over
    assert plan(90) == 0.0


def test_a_slow_epoch_stops_the_run_before_it_passes_the_budget():
    plan = schedule.PolySchedule(steps_per_epoch=4, epochs=10)
    assert plan.epoch_done(1, 30.0, Budget(50.0, 10)) == "time budget of 50s reached after epoch 1"
    old = schedule.PolySchedule(steps_per_epoch=4, epochs=10)  # schedule="epochs": the same stop, no plan
    assert old.epoch_done(1, 20.0, Budget(50.0, 10, "epochs")) is None
    assert old.epoch_done(2, 20.0, Budget(50.0, 10, "epochs")) == "time budget of 50s reached after epoch 2"
    assert old.total_steps == 40  # T never follows the budget


def test_with_epochs_and_a_budget_whichever_ends_first():
    short = schedule.PolySchedule(steps_per_epoch=4, epochs=3)
    assert short.epoch_done(1, 1.0, Budget(1e6, 3)) is None and short.planned_epochs == 3  # epochs first
    assert short.total_steps == 12 and short.anchor_step == 0  # the plan held: no re-plan
    tight = schedule.PolySchedule(steps_per_epoch=4, epochs=30)
    assert tight.epoch_done(1, 10.0, Budget(45.0, 30)) is None and tight.planned_epochs == 4  # the budget first


# ------------------------------------------------------------------- through fit
def test_a_budgeted_run_ends_at_its_schedules_floor_and_todays_schedule_does_not(tmp_path, monkeypatch):
    """No epochs given, a 45 s budget, epochs of 10 s (the fake clock): the schedule spans the 4 epochs
    that fit and the history's last learning rate is the floor, 0. schedule="epochs" (the old behaviour,
    here with epochs=30) stops at the same point with the rate still near its start."""
    every_epoch_takes(monkeypatch, 10.0)
    budgeted = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), time_budget=45))
    lrs = [row["lr"] for row in budgeted.history]
    assert len(lrs) == 4 and lrs[-1] == 0.0 and lrs == sorted(lrs, reverse=True)
    assert "time budget of 45s" in budgeted.stopped_early
    ckpt = load_checkpoint(budgeted.last_path)
    assert ckpt["train_config"]["epochs"] == schedule.BUDGET_EPOCHS and ckpt["epoch"] == 4
    (plan,) = ckpt["scheduler"]["lr_lambdas"]
    assert plan["planned_epochs"] == 4 and plan["epoch_seconds"] == [10.0] * 4

    every_epoch_takes(monkeypatch, 10.0)
    today = btrain.fit(small_config(tmp_path, out=str(tmp_path / "e"), time_budget=45, epochs=30, schedule="epochs"))
    assert len(today.history) == 4 and today.history[-1]["lr"] > 0.8 * today.history[0]["lr"]


def test_a_budget_that_outlasts_the_epochs_changes_nothing(tmp_path, monkeypatch):
    """epochs=3 and a budget that 3 epochs do not reach: bit for bit the run without a budget."""
    every_epoch_takes(monkeypatch, 1.0)
    budgeted = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), epochs=3, time_budget=1000))
    plain = btrain.fit(small_config(tmp_path, out=str(tmp_path / "p"), epochs=3))
    assert [r["lr"] for r in budgeted.history] == [r["lr"] for r in plain.history]
    assert budgeted.history[-1]["lr"] == 0.0 and budgeted.stopped_early is None
    for name, value in plain.model.state_dict().items():
        assert torch.equal(budgeted.model.state_dict()[name], value), name


def test_a_budgeted_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    """Stopped after 2 of its 4 planned epochs and resumed, a budgeted run continues its plan (re-planned
    after epoch 1, saved in last.pt's scheduler state): the same learning rates, the same weights. The
    budget counts the whole run: the resumed part gets what is left of it."""
    every_epoch_takes(monkeypatch, 10.0)
    straight = btrain.fit(small_config(tmp_path, out=str(tmp_path / "a"), time_budget=45))
    every_epoch_takes(monkeypatch, 10.0)
    first = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), time_budget=45, stop_after=2))
    assert len(first.history) == 2 and "resume" in first.stopped_early
    every_epoch_takes(monkeypatch, 10.0)
    resumed = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), time_budget=45, resume=str(first.last_path)))
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in straight.history]
    assert len(resumed.history) == 4 and resumed.history[-1]["lr"] == 0.0
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    # a finished schedule resumed: nothing left to train
    again = btrain.fit(small_config(tmp_path, out=str(tmp_path / "b"), time_budget=45, resume=str(resumed.last_path)))
    assert len(again.history) == 4


# ------------------------------------------------------------------- settings
def test_schedule_settings_resolve_and_refuse_what_no_run_can_follow(tmp_path):
    assert btrain.TrainConfig(preset="lite", time_budget=60).resolved().epochs == schedule.BUDGET_EPOCHS
    assert btrain.TrainConfig(preset="lite", time_budget=60, schedule="epochs").resolved().epochs == 30  # lite's
    assert btrain.TrainConfig(preset="lite", time_budget=60, epochs=7).resolved().epochs == 7
    assert btrain.TrainConfig(preset="lite").resolved().epochs == 30
    for bad, match in ((dict(schedule="cosine"), "schedule='cosine'"), (dict(time_budget=0), "time_budget=0"),
                       (dict(ddp_timeout_min=0), "ddp_timeout_min=0"),
                       (dict(out=str(tmp_path), copy_to=str(tmp_path)), "copy_to=.*own folder")):
        with pytest.raises(ConfigError, match=match):
            btrain.TrainConfig(**bad).resolved()
