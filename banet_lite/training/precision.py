"""Mixed precision: which autocast dtype (if any) and whether a GradScaler, per device.

    CUDA, compute capability >= 8.0   bfloat16, no scaler (native; float32's range)
    CUDA, below (T4, V100, P100)      float16 with a GradScaler (loss scaling)
    CPU with native bfloat16          bfloat16 for the presets that measured faster that way
    anything else                     float32
"""

from __future__ import annotations

import os

import torch

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) at or above AVX-512 with bfloat16:
# native bfloat16 kernels stay on
_NATIVE_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                     "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "ALL"}
# presets whose CPU training step measured faster under bfloat16 autocast
# (benchmarks/RESULTS.md, 2026-12-01)
CPU_BF16_PRESETS = ("lite", "paper")


def cpu_has_native_bf16() -> bool:
    """True where this CPU computes bfloat16 natively (AVX-512 BF16 or AMX) and the environment lets
    torch use it: False when ATEN_CPU_CAPABILITY caps torch's kernels below AVX-512
    (`default`, `avx2`) or ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA caps oneDNN's below
    AVX512_CORE_BF16 (how CI emulates an older CPU). Elsewhere bfloat16 is emulated in float32 and
    is slower: never worth it."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        if not str(torch.backends.cpu.get_cpu_capability()).upper().startswith("AVX512"):
            return False  # also what ATEN_CPU_CAPABILITY=default/avx2 reports
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
        if isa and isa.strip().upper() not in _NATIVE_BF16_ISAS:
            return False
        probes = [getattr(torch._C._cpu, name, None) for name in
                  ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        if any(probe is not None and probe() for probe in probes):
            return True
        with open("/proc/cpuinfo") as f:  # older torch without the probes (Linux)
            flags = set(f.read().split())
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    except Exception:  # unknown platform: the safe answer
        return False


def amp_settings(device_type: str, enabled: bool = True, capability: tuple[int, int] | None = None,
                 preset: str | None = None,
                 cpu_native_bf16: bool | None = None) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for full precision, whether to use a GradScaler).

    CUDA: bfloat16 only where the GPU computes it natively, compute capability 8.0 and up (A100, L4,
    H100, RTX 30xx+). Below (T4 7.5, V100 7.0, P100 6.0) `torch.cuda.is_bf16_supported()` can still
    be true through emulation, which is slow, so those get float16 with loss scaling (a GradScaler),
    which their tensor cores run natively.

    CPU: bfloat16 autocast only where both hold: the CPU computes bfloat16 natively
    (`cpu_has_native_bf16()`, or `cpu_native_bf16` when given) and the preset is one whose step
    measured faster that way (`CPU_BF16_PRESETS`: lite about 1.45x, paper about 2x on an AVX-512
    BF16 CPU; benchmarks/RESULTS.md, "Decision records", and speed.py). The `tiny` preset
    (16-32 channels) gains nothing there (equal step times), so it keeps float32's numerics and,
    like every CPU without native bfloat16 (AVX2, or an environment capping the ISA), trains in
    float32. No GradScaler: bfloat16 has float32's range.
    """
    if not enabled:
        return None, False
    if device_type == "cpu":
        native = cpu_has_native_bf16() if cpu_native_bf16 is None else cpu_native_bf16
        return (torch.bfloat16 if native and preset in CPU_BF16_PRESETS else None), False
    if device_type != "cuda":
        return None, False
    if capability is not None and tuple(capability) >= (8, 0):
        return torch.bfloat16, False
    return torch.float16, True


# ------------------------------------------------------------ float16: the steps a GradScaler skips
# Under float16 a GradScaler skips the optimizer step whose gradients are not finite and halves its
# scale: a few such steps early on are how it finds its scale, not a fault. Training stops only when
# this many steps in a row were skipped (the scale has been halved 100 times: the gradients are not
# finite at any scale).
MAX_SKIPPED_IN_A_ROW = 100


class SkippedSteps:
    """The steps a float16 GradScaler skipped, counted on the device (no host sync per step):
    `epoch` (reset by `new_epoch`) and `in_a_row` (carried across epochs). Read them with the loss,
    once per log interval (`check_skipped`)."""

    def __init__(self, device: torch.device):
        self.epoch = torch.zeros((), dtype=torch.int64, device=device)
        self.in_a_row = torch.zeros((), dtype=torch.int64, device=device)

    def new_epoch(self) -> None:
        self.epoch = torch.zeros_like(self.epoch)

    def add(self, skipped: torch.Tensor) -> None:
        """Count one step: `skipped` a bool tensor (the scale went down)."""
        self.epoch = self.epoch + skipped
        self.in_a_row = torch.where(skipped, self.in_a_row + 1, torch.zeros_like(self.in_a_row))


def scaler_step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer,
                skips: SkippedSteps | None) -> None:
    """`scaler.step` and `scaler.update`, counting a skipped step in `skips`: the GradScaler lowers
    its scale exactly when it skipped the step (found non-finite gradients). The scale is compared
    on the device (`_scale`, the tensor `get_scale()` would copy to the host, waiting for the GPU
    every step)."""
    scaler.step(optimizer)
    if skips is None or not scaler.is_enabled():
        scaler.update()
        return
    before = scaler._scale.clone()
    scaler.update()
    skips.add(scaler._scale < before)


def check_skipped(in_a_row: int, limit: int = MAX_SKIPPED_IN_A_ROW) -> str | None:
    """Why float16 training cannot go on (the last `limit` or more steps were all skipped), else
    None."""
    if in_a_row < limit:
        return None
    return (f"the float16 GradScaler skipped the last {in_a_row} steps in a row "
            "(non-finite gradients at every loss scale)")
