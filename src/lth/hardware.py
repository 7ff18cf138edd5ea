"""The hardware a run's numbers come from. The same config and seeds give the same bits only on the
same hardware: CPU kernels differ by CPU model and by the instruction set torch picks for it (its
"CPU capability"), sums differ by BLAS library; GPUs differ by model and CUDA version. Each level's
execution record names it (execution.execution), `lth ls` and the report show it."""
from __future__ import annotations

import functools
import platform
import re
from pathlib import Path

import torch


@functools.cache
def cpu_model() -> str:
    """The CPU's model name, e.g. "AMD EPYC" or "Intel(R) Xeon(R) Platinum 8480+"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def blas() -> str:
    """The BLAS torch was built with (e.g. "mkl", "openblas")."""
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return found.group(1) if found else "unknown BLAS"


def cpu_capability() -> str:
    """The instruction set of torch's CPU kernels on this machine (e.g. AVX2, AVX512); ATEN_CPU_CAPABILITY
    can lower it."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return "unknown capability"


def hardware(device: torch.device | str = "cpu") -> str:
    """One line naming the hardware `device` computes on, e.g. "AMD EPYC (AVX512, mkl)" or
    "NVIDIA H100 80GB HBM3 (sm_90, CUDA 12.8)"."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor}, CUDA {torch.version.cuda})"
    return f"{cpu_model()} ({cpu_capability()}, {blas()})"


def hardware_of(records: list[dict | None]) -> list[str]:
    """The distinct hardware named by execution records, in order (older records name none)."""
    return list(dict.fromkeys(r["hardware"] for r in records if r and r.get("hardware")))


def mixed_hardware_warning(what: str, names: list[str]) -> str | None:
    """The one-line warning when runs compared together were computed on different hardware."""
    if len(names) < 2:
        return None
    return (f"{what} mixes runs computed on different hardware ({'; '.join(names)}): their bits differ even for "
            "equal configs, so differences between them include the hardware's (docs/store.md: What changes the numbers)")
