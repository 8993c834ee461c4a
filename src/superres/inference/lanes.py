"""Small images through one model in parallel lanes, on a CPU.

A model call on a small image (a thumbnail, a video frame, a BSD100 photo of 120x80 at x4)
does not keep several PyTorch threads busy: they wait for each other at every layer, and
the work around the network (the colour split and join, the bicubic chroma, the 8-bit
cast) runs on one of them. Several such calls side by side, each on fewer threads, do keep
the cores busy. Measured on this project's 2-core CPU by ``python
benchmarks/inference_speed.py --pipeline-only`` (100 inputs of 120x80, x4; docs/SPEED.md,
"Lanes"): ESPCN's network 28.5 output MP/s one call at a time on two threads, 56.9 in two
lanes of one; SwiftRep's (bf16) 14.4 against 20.3.

So a folder (:func:`~.batch.run_jobs`) and a sequence of images
(:meth:`~.upscaler.Upscaler.upscale_many`) send each small image to one of several lanes
that share PyTorch's threads (as many lanes as threads, one thread each, up to
:data:`MAX_LANES`); anything larger (tiles, output sizes, videos, DICOM, GeoTIFF) runs by
itself with all the threads, once the lanes in flight have finished. Each image still goes
through the model alone, so its bytes depend neither on its neighbours nor on timing; they
are what :meth:`~.upscaler.Upscaler.upscale` gives with a lane's threads (for ESPCN and
SwiftRep, fp32 and bf16, the same bytes on one thread as on two; a model whose convolutions
round differently with the thread count, FSRCNN's transposed one, can differ by 1 in a few
pixels, as ``--threads`` already could make it).

Only PyTorch on a CPU takes lanes: a GPU runs one call at a time, and ONNX Runtime keeps its
two threads busy on its own (ESPCN x4's network at 73 MP/s one call at a time on two
threads, 63 in two lanes of one-thread sessions; docs/SPEED.md).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Callable, TypeVar

import torch

from superres.device import set_cpu_threads

__all__ = ["Lanes", "MAX_LANES", "SMALL_INPUT"]

#: The largest input, in pixels, that goes to a lane (256x256). Past it one call keeps two
#: threads busy (SwiftRep x4 on 256x256 ran at 0.93-1.0 of its network through the API,
#: docs/SPEED.md), and lanes would hold several large activations at once.
SMALL_INPUT = 256 * 256

#: The most lanes: past it the threads are shared out among them (64 threads: 8 lanes of 8),
#: so that the images decoded ahead for them stay few.
MAX_LANES = 8

T = TypeVar("T")


class Lanes:
    """A context in which small images run in ``count`` lanes (:meth:`submit`) and the rest
    by themselves (:meth:`solo`); which image is which, and how many lanes a model takes, the
    :class:`~.upscaler.Upscaler` answers (:meth:`~.upscaler.Upscaler.takes_lane`,
    :attr:`~.upscaler.Upscaler.lane_count`). PyTorch's thread count, a setting of the whole process, is
    its share per lane while lanes run (1 with up to :data:`MAX_LANES` threads) and what it
    was otherwise; it is back on leaving."""

    def __init__(self, count: int):
        self.count = max(1, count)
        self._pool: ThreadPoolExecutor | None = None
        self._threads = torch.get_num_threads()
        self._per_lane = max(1, self._threads // self.count)
        self._in_flight: list[Future] = []
        self._narrow = False  # whether PyTorch is at the lanes' share of its threads

    def __enter__(self) -> Lanes:
        if self.count > 1:
            self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="superres-lane")
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        set_cpu_threads(self._threads)

    def submit(self, fn: Callable[..., T], *args, **kwargs) -> Future:
        """``fn(*args, **kwargs)`` in a lane (on this thread, at once, without lanes); its
        result or exception arrives through the returned future."""
        if self._pool is None:
            return _done(fn, *args, **kwargs)
        if not self._narrow:  # only solo() widens it, and it leaves no lane running
            set_cpu_threads(self._per_lane)
            self._narrow = True
        self._in_flight = [f for f in self._in_flight if not f.done()]
        future = self._pool.submit(fn, *args, **kwargs)
        self._in_flight.append(future)
        return future

    def solo(self, fn: Callable[..., T], *args, **kwargs) -> Future:
        """``fn(*args, **kwargs)`` on this thread with all of PyTorch's threads, after the
        lanes in flight have finished; returns it done, with its result or exception."""
        if self._in_flight:
            wait(self._in_flight)
            self._in_flight = []
        if self._narrow:
            set_cpu_threads(self._threads)
            self._narrow = False
        return _done(fn, *args, **kwargs)


def _done(fn: Callable[..., T], *args, **kwargs) -> Future:
    future: Future = Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except Exception as exc:
        future.set_exception(exc)
    return future
