"""The test suite's one training config (issue 30): every training test starts from `tiny_run`."""

from __future__ import annotations


def tiny_run(out, **settings):
    """The test suite's one training config: the tiny preset on synthetic lesions, small enough for a
    unit test (8 images of 32 px, batch 4, 1 epoch, seed 3, no progress bars); `settings` change any field.
    Test files import it (`from train_configs import tiny_run`; a module of its own, since `conftest`
    names notebooks/conftest.py too when pytest collects both folders) and state only what their runs need otherwise."""
    from banet_lite.training.config import TrainConfig

    base = dict(preset="tiny", out=str(out), epochs=1, batch_size=4, img_size=32, synthetic_train=8,
                progress=False, seed=3)
    return TrainConfig(**{**base, **settings})
