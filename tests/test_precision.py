"""Mixed precision: which autocast dtype and scaler `amp_settings` picks per device, GPU generation and
preset, and how `cpu_has_native_bf16` reads a CPU (flags, torch's probes, capped environments)."""

import pytest
import torch

from banet_lite.training import precision


@pytest.mark.parametrize(
    "device_type, enabled, capability, dtype, scaler",
    [
        ("cuda", True, (7, 5), torch.float16, True),  # T4: bf16 only emulated -> float16 + GradScaler
        ("cuda", True, (7, 0), torch.float16, True),  # V100
        ("cuda", True, (6, 1), torch.float16, True),  # Pascal
        ("cuda", True, (8, 0), torch.bfloat16, False),  # A100
        ("cuda", True, (8, 9), torch.bfloat16, False),  # L4
        ("cuda", True, (9, 0), torch.bfloat16, False),  # H100
        ("cuda", True, None, torch.float16, True),  # unknown: the safe choice
        ("cuda", False, (9, 0), None, False),  # amp=False: float32
        ("cpu", True, None, None, False),  # CPU without a preset: float32
        ("cpu", False, None, None, False),
    ],
)
def test_amp_settings_per_compute_capability(device_type, enabled, capability, dtype, scaler):
    assert precision.amp_settings(device_type, enabled, capability) == (dtype, scaler)


@pytest.mark.parametrize(
    "native, enabled, preset, dtype",
    [
        (True, True, "lite", torch.bfloat16),  # AVX-512 BF16 / AMX: bfloat16 where it measured faster
        (True, True, "paper", torch.bfloat16),
        (True, True, "tiny", None),  # tiny measured slower in bfloat16: float32
        (True, True, "unet", None),
        (True, False, "paper", None),  # amp=False: float32
        (False, True, "paper", None),  # AVX2 or a capped environment: float32
        (False, True, "lite", None),
    ],
)
def test_amp_settings_on_cpu(monkeypatch, native, enabled, preset, dtype):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.amp_settings("cpu", enabled, preset=preset) == (dtype, False)
    assert precision.amp_settings("cpu", enabled, preset=preset, cpu_native_bf16=native) == (dtype, False)


def _fake_cpu(monkeypatch, flags: str, capability: str = "AVX512", probes: bool | None = None, **env):
    """Pretend to be a CPU with these /proc/cpuinfo flags, torch capability and environment."""
    import builtins
    import io

    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        if probes is None:
            monkeypatch.delattr(torch._C._cpu, name, raising=False)
        else:
            monkeypatch.setattr(torch._C._cpu, name, lambda: probes, raising=False)
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(f"flags\t: fpu {flags}\n")
                        if str(path) == "/proc/cpuinfo" else real_open(path, *a, **k))


@pytest.mark.parametrize(
    "flags, capability, probes, env, expected",
    [
        ("avx2 avx512f avx512_bf16", "AVX512", None, {}, True),  # AVX-512 BF16 (this project's EPYC)
        ("avx2 avx512f amx_tile amx_bf16", "AVX512", None, {}, True),  # AMX (Sapphire Rapids)
        ("avx2 avx512f", "AVX512", None, {}, False),  # AVX-512 without bfloat16 (Skylake)
        ("avx2", "AVX2", None, {}, False),  # AVX2 only
        ("avx2 avx512f", "AVX512", True, {}, True),  # torch's own probe, where it has one
        ("avx2 avx512f avx512_bf16", "AVX512", False, {}, True),  # probes say no, cpuinfo yes
        # capped environments (CI emulates an older CPU): float32
        ("avx2 avx512f avx512_bf16", "DEFAULT", None, {"ATEN_CPU_CAPABILITY": "default"}, False),
        ("avx2 avx512f avx512_bf16", "AVX2", None, {"ATEN_CPU_CAPABILITY": "avx2"}, False),
        ("avx2 avx512f avx512_bf16", "AVX512", None, {"ONEDNN_MAX_CPU_ISA": "SSE41"}, False),
        ("avx2 avx512f avx512_bf16", "AVX512", None, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
        ("avx2 avx512f avx512_bf16", "AVX512", None, {"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, False),
        ("avx2 avx512f avx512_bf16", "AVX512", None, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True),
        ("avx2 avx512f avx512_bf16", "AVX512", None, {"ONEDNN_MAX_CPU_ISA": "all"}, True),
    ],
)
def test_cpu_has_native_bf16_from_flags_and_environment(monkeypatch, flags, capability, probes, env, expected):
    _fake_cpu(monkeypatch, flags, capability, probes, **env)
    assert precision.cpu_has_native_bf16() is expected
