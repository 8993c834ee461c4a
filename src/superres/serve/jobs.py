"""Running inference off the event loop: a bounded job queue and a cache of loaded models."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Hashable, TypeVar

__all__ = ["Busy", "JobQueue", "LRUCache"]

# How often a long job's request is asked whether its client is still there.
_DISCONNECT_POLL_S = 0.25

T = TypeVar("T")


class Busy(Exception):
    """Every worker is busy and the queue is full."""


class JobQueue:
    """``workers`` threads run jobs; at most ``queue_size`` more jobs wait for one.

    :meth:`run` refuses a job at once (raises :class:`Busy`) when ``workers + queue_size``
    jobs are already admitted, so a burst of requests costs a quick 503 each instead of
    memory for every waiting image. Admission is counted on the event loop (one thread),
    so the count needs no lock.
    """

    def __init__(self, workers: int, queue_size: int) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self.admitted = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="superres-job")
        self._stopping = threading.Event()

    @property
    def running(self) -> int:
        return min(self.admitted, self.workers)

    @property
    def waiting(self) -> int:
        return max(self.admitted - self.workers, 0)

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job()`` in a worker thread and return its result; raise :class:`Busy` if full."""
        if self.admitted >= self.capacity:
            raise Busy()
        self.admitted += 1
        loop = asyncio.get_running_loop()
        future = self._executor.submit(job)
        # The slot is freed when the job is over, not when its request is: a client that
        # disconnects cancels a job still waiting, but one already running goes on in its
        # thread and keeps its slot, so the queue never holds more work than it admits.
        future.add_done_callback(lambda _: self._release(loop))
        return await asyncio.wrap_future(future)

    async def run_cancellable(self, job: Callable[[threading.Event], T], request) -> T:
        """:meth:`run` for a job that checks an event between its steps and stops when it is
        set: when the client of ``request`` (a Starlette request) disconnects, and when the
        server shuts down. A job that only ran on would hold its worker, and its memory,
        for minutes after anyone wanted it, and keep the process from exiting."""
        cancel = threading.Event()
        if self._stopping.is_set():
            cancel.set()

        async def watch() -> None:
            while not cancel.is_set():
                if self._stopping.is_set() or await request.is_disconnected():
                    cancel.set()
                    return
                await asyncio.sleep(_DISCONNECT_POLL_S)

        watcher = asyncio.create_task(watch())
        try:
            return await self.run(lambda: job(cancel))
        finally:
            # Also when this request is cancelled (uvicorn ends requests still running a few
            # seconds into its shutdown): the job in its thread must learn it too.
            cancel.set()
            watcher.cancel()

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._decrement)
        except RuntimeError:  # the loop is closed: the server has stopped
            pass

    def _decrement(self) -> None:
        self.admitted -= 1

    def shutdown(self) -> None:
        """Cancel the waiting jobs and tell the running cancellable ones to stop."""
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


class LRUCache:
    """A thread-safe map of at most ``size`` entries, built on demand, least recently used dropped.

    Building happens under the lock: two workers asking for the same model load it once,
    and the cache never holds more than ``size`` models even briefly.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
            while len(self._items) >= self.size:  # drop before building: peak memory is size models
                self._items.popitem(last=False)
            value = build()
            self._items[key] = value
            return value

    def keys(self) -> list:
        with self._lock:
            return list(self._items)
