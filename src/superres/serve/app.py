"""The web app: one static page, offline API docs and a small REST API over :func:`superres.load`.

Endpoints: ``GET /`` (the page), ``GET /docs`` (API reference, no external resources),
``GET /openapi.json``, ``GET /healthz``, ``GET /v1/models``, ``POST /v1/upscale``,
``POST /v1/explain`` (a Local Attribution Map of a box of the result, as JSON). Every
error is JSON ``{"error": "<one line>"}``: 400 unreadable image or a Host this server does
not answer to, 403 a browser's POST from another site, 408 a stalled body, 413 too large
(bytes or pixels), 422 bad parameters (or a result the format cannot hold), 503 busy,
404/405 unknown route.

What a request costs is bounded before it is paid for: the body is counted as it streams
(see :class:`BodyLimit`), the pixel count is read from the image header before decoding,
decoding runs at most ``_DECODE_SLOTS`` at a time, and inference goes through a
:class:`~superres.serve.jobs.JobQueue` that answers 503 when full.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from superres.device import resolve_device
from superres.serve.answers import ErrorBody, add_error_handlers
from superres.serve.catalog import build_catalog
from superres.serve.context import ServerContext
from superres.serve.middleware import AddressedHere, BodyLimit, SecurityHeaders, add_middleware
from superres.serve.routes import explain, models, upscale
from superres.serve.routes.models import STATIC, version
from superres.serve.settings import Settings

__all__ = ["AddressedHere", "BodyLimit", "ErrorBody", "STATIC", "SecurityHeaders", "create_app"]


def _default_loader(reference: str, *, scale: int, device: str, tile: int | None, ensemble: bool = False, **blend):
    import superres  # the inference layer's entry point; imported late so the app module loads without it

    # blend: strength= and fidelity= (the partner's weight file) for a perceptual model
    return superres.load(reference, scale=scale, device=device, tile=tile, ensemble=ensemble, **blend)


def create_app(settings: Settings | None = None, *, loader: Callable | None = None) -> FastAPI:
    """The FastAPI app serving the page, the docs and the API under ``settings``.

    ``loader(reference, scale=, device=, tile=)`` returns an Upscaler; it defaults to
    :func:`superres.load` and is a parameter so that tests can slow it down or count calls.
    """
    settings = settings or Settings()
    # An unusable device fails here, not per request.
    server = ServerContext(settings, str(resolve_device(settings.device)), loader or _default_loader)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(build_catalog, settings.weights_dirs)  # warm the model summaries
        yield
        server.jobs.shutdown()

    app = FastAPI(
        title="superres",
        version=version(),
        summary="Single-image super-resolution over HTTP.",
        description=(
            "Upscale an image with a learned model or bicubic interpolation. Errors are JSON "
            '`{"error": "..."}`. Limits: request body, input and output pixels (413); a bounded job '
            "queue (503 when full). Models are named by registry name only (see `GET /v1/models`)."
        ),
        docs_url=None,  # FastAPI's /docs loads Swagger UI from a CDN; ours is served from static/
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.settings, app.state.jobs, app.state.upscalers = settings, server.jobs, server.upscalers
    add_middleware(app, settings)
    add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for routes in (models, upscale, explain):
        app.include_router(routes.router)
    return app
