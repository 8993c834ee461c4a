"""Device handling, in one place: which device to run on and what it supports."""

from __future__ import annotations

import torch

from superres.errors import SuperresError

__all__ = ["available_memory", "resolve_device", "set_cpu_threads", "supports_bf16"]


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit name must be usable."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SuperresError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SuperresError(f"device {name!r} requested but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SuperresError("device 'mps' requested but it is not available")
    return device


def set_cpu_threads(threads: int | None) -> int:
    """Set PyTorch's intra-op CPU threads to ``threads`` (None or 0: leave them as they are)
    and return the number before. The setting is the whole process's, as PyTorch's is."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    return previous


def supports_bf16(device: torch.device) -> bool:
    """Whether bfloat16 arithmetic is fast on ``device`` (CUDA with bf16 support, or a CPU
    with AVX-512 BF16 / AMX, which oneDNN uses)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo") as fh:
                flags = fh.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False


def available_memory(device: torch.device) -> int:
    """Bytes that a new allocation on ``device`` can use now: free CUDA memory, or the host's
    available RAM (psutil) for the CPU and for MPS, which shares it."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)
