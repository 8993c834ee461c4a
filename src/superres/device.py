"""Device handling, in one place: which device to run on and what it supports."""

from __future__ import annotations

import contextlib
import os
import re
from functools import lru_cache
from typing import Iterator

import torch

from superres.errors import SuperresError

__all__ = [
    "MEMORY_LIMIT_VARIABLE", "available_memory", "bf16_is_fast", "cpu_capability", "cpu_threads", "format_bytes", "memory_budget", "share_of", "resolve_device",
    "set_cpu_threads", "supports_bf16",
]


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


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[int]:
    """PyTorch's intra-op CPU threads set to ``threads`` (as :func:`set_cpu_threads`) for the
    ``with`` block, and back to what they were after it; yields the number before."""
    previous = set_cpu_threads(threads)
    try:
        yield previous
    finally:
        set_cpu_threads(previous)


def supports_bf16(device: torch.device) -> bool:
    """Whether bfloat16 arithmetic is fast on ``device`` (CUDA with bf16 support, or a CPU
    with AVX-512 BF16 / AMX, which oneDNN uses)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        flags = _cpu_flags()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False


def cpu_capability() -> str:
    """What PyTorch's CPU kernels were dispatched for on this machine ("AVX512", "AVX2",
    "DEFAULT", ...; ``torch.backends.cpu.get_cpu_capability()``), with " +BF16" or " +AMX"
    when the CPU also reports bf16 instructions: the line benchmarks print beside a speed."""
    capability = torch.backends.cpu.get_cpu_capability()
    extras = [name for name, flag in (("BF16", "avx512_bf16"), ("AMX", "amx_bf16")) if flag in _cpu_flags()]
    return " +".join([capability, *extras])


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=None)
def bf16_is_fast(device_type: str = "cpu") -> bool:
    """Whether bf16 autocast is fast here: detected, not assumed. On CUDA, whether the GPU
    supports bf16. On the CPU, the CPU must report bf16 instructions (AVX-512 BF16 or AMX) and
    PyTorch must dispatch AVX-512 kernels: CPUs differ between machines of the same kind, and
    on one with AVX2 only bf16 made a SwiftRep training step 15x slower.

    Decided from what the machine reports, never from a timing: a timed probe would let two
    processes on one busy machine choose differently, and so write different output bytes
    (and train at different precisions) for the same command."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    return supports_bf16(torch.device("cpu")) and torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def available_memory(device: torch.device) -> int:
    """Bytes that a new allocation on ``device`` can use now: free CUDA memory, or the host's
    available RAM (psutil) for the CPU and for MPS, which shares it."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


#: The environment variable that sets :func:`memory_budget` outright (bytes, or with a unit:
#: ``4G``, ``512M``): for a server sharing its machine, or a test that needs a fixed bound.
MEMORY_LIMIT_VARIABLE = "SUPERRES_MEMORY_LIMIT"

# Half: the other half is left to the decoded input, the encoder, the model's own tiles and
# whatever else runs on the machine; a job planned to the last byte of "available" memory
# was OOM-killed when a neighbour grew.
_BUDGET_SHARE = 0.5
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def share_of(available: float) -> float:
    """What one piece of work may plan to hold of ``available`` bytes: half; the other half is
    left for its output buffer, the caller's copies and everything else running. The one rule
    behind tile sizes (:func:`superres.inference.tiling.choose_tiling`) and :func:`memory_budget`."""
    return available * _BUDGET_SHARE


def memory_budget(cap: int | None = None) -> int:
    """Bytes of host memory one upscale or explanation may plan to hold at its peak: the
    ``SUPERRES_MEMORY_LIMIT`` variable when set, else half the RAM available now (and at
    most ``cap``). Work planned above it is refused before it starts
    (:func:`superres.inference.sizing.check_output_memory`, :func:`superres.attribution.explain`)."""
    text = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if text:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, flags=re.IGNORECASE)
        if not match:
            raise SuperresError(f"{MEMORY_LIMIT_VARIABLE}={text!r} is not a size in bytes (e.g. 4G, 512M, 1000000)")
        return int(float(match[1]) * _UNITS[match[2].upper()])
    budget = int(share_of(available_memory(torch.device("cpu"))))
    return budget if cap is None else min(budget, cap)


def format_bytes(n: float) -> str:
    """``n`` bytes as a short decimal size: 512 B, 3.4 MB, 12 GB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
