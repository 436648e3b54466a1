"""Adam as `fit` builds it, chosen so that a GPU step never waits for the host.

On CUDA, Adam is fused (`torch.optim.Adam(fused=True)`: one kernel over every parameter). Two reads
of a device value back to the host, one per step each, disappear with it (torch 2.13's sources):

- The GradScaler (float16, e.g. a T4). For an optimizer without `_step_supports_amp_scaling`,
  `GradScaler.step` unscales the gradients, then `_maybe_opt_step` asks
  `sum(v.item() for v in found_inf_per_device.values())` (torch/amp/grad_scaler.py) whether to step:
  a sync every step. Fused Adam sets `_step_supports_amp_scaling`; the scaler then hands it
  `grad_scale` and `found_inf` as tensors, and the kernel unscales and skips a non-finite step on
  the device. `GradScaler.update` stays on the device either way (`torch._amp_update_scale_`).
- Adam's step counts. Non-fused Adam keeps each parameter's `step` as a CPU tensor on purpose
  ("special device hosting for step", torch/optim/adam.py) and reads it with `.item()` for the bias
  corrections: free while it is on the CPU, but a GPU sync per parameter, twice a step, if it ever
  lands on the GPU, which is what loading a checkpoint with `map_location=<the GPU>` did. Fused Adam
  keeps `step` as float32 on the parameter's device and never reads it. A checkpoint is therefore
  loaded onto the CPU (`checkpoint.resume`), and `Optimizer.load_state_dict` places the state as the
  optimizer keeps it (`_process_value_according_to_param_policy`: moments to the parameter's device
  and dtype; `step` to the parameter's device for fused Adam, left on the CPU otherwise).

On a CPU: fused Adam for the `paper` preset's fast path (train.py, `use_cpu_fast_path`), else the
default implementation, whose numerics the other presets keep bit for bit (its `.item()` calls read
CPU tensors: no device to wait for). tests/test_train_precision.py checks a step of the CUDA
configuration on the CPU with every tensor read counted, and on a GPU under
`torch.cuda.set_sync_debug_mode("error")`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, device_type: str,
         cpu_fast_path: bool = False) -> torch.optim.Adam:
    """Adam over `params` on `device_type` ("cuda", "cpu", ...): fused on CUDA and on the CPU fast
    path."""
    fused = device_type == "cuda" or (device_type == "cpu" and cpu_fast_path)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
