"""What the routes of one app share: its settings, device, model loader, job queue, model
cache and decode slots, kept on ``app.state.server`` and read by each route from its request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from superres.options import DEFAULT_PHOTO_MODEL
from superres.serve.catalog import Catalog, build_catalog
from superres.serve.jobs import JobQueue, LRUCache
from superres.serve.settings import Settings

__all__ = ["ServerContext", "server_of"]

# Decoding an upload takes memory (a 8 MP image is 24-48 MB decoded) and happens before a
# job is admitted, so that a bad file gets its 400 even when the queue is full; two at a
# time bounds that memory however many requests arrive together.
_DECODE_SLOTS = 2


@dataclass
class ServerContext:
    """One app's shared state. ``load(reference, scale=, device=, tile=, ...)`` returns an Upscaler."""

    settings: Settings
    device: str
    load: Callable
    jobs: JobQueue = field(init=False)
    upscalers: LRUCache = field(init=False)
    decode_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = JobQueue(self.settings.workers, self.settings.queue_size)
        self.upscalers = LRUCache(self.settings.cache_size)
        self.decode_slots = asyncio.Semaphore(_DECODE_SLOTS)

    @property
    def preferred_model(self) -> str:
        """The model the page selects first when it is offered (auto: chosen per photo)."""
        return self.settings.default_model if self.settings.default_model is not None else DEFAULT_PHOTO_MODEL

    async def catalog(self) -> Catalog:
        """The models offered now (the weights folders are read again, from a cache)."""
        return await run_in_threadpool(build_catalog, self.settings.weights_dirs)

    def default_choice(self, catalog: Catalog) -> tuple[str, int]:
        """(model, scale) a request that names none gets: the preferred model, else bicubic."""
        name = self.preferred_model if catalog.offered(self.preferred_model) else "bicubic"
        scales = catalog.offered(name)
        default_scale = self.settings.default_scale
        scale = default_scale if default_scale in scales else next(iter(scales), default_scale)
        return name, scale


def server_of(request: Request) -> ServerContext:
    """The shared state of the app ``request`` came to."""
    return request.app.state.server
