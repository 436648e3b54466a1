"""Training: `train.fit` and its config, checkpoints, mixed precision, several processes (DDP), and
the CPU fast path for the paper preset's weight gradients."""
