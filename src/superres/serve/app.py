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

import asyncio
import html
import ipaddress
import logging
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Callable, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from superres.device import resolve_device
from superres.errors import SuperresError, printable
from superres.imaging.io import ImageData, ImageReadError, ImageTooLargeError, check_encodable, encode_image, read_image
from superres.inference import DEFAULT_MODEL
from superres.inference.sizing import FITS, OutputSize, OutputTooLarge, choose_model_scale
from superres.serve.catalog import Blend, Catalog, Offer, build_catalog
from superres.serve.jobs import Busy, JobQueue, LRUCache
from superres.serve.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

# Decoding an upload takes memory (a 8 MP image is 24-48 MB decoded) and happens before a
# job is admitted, so that a bad file gets its 400 even when the queue is full; two at a
# time bounds that memory however many requests arrive together.
_DECODE_SLOTS = 2

_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}

# The largest side each encoder writes (WebP's 14-bit sizes; libjpeg's JPEG_MAX_DIMENSION; GIF's 16 bits):
# a result over it is refused before the upscale, not failed after it.
_MAX_SIDE = {"webp": 16383, "jpeg": 65500, "gif": 65535}

# Everything the page and the docs load comes from this server; images are shown from blob: URLs.
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ErrorBody(BaseModel):
    """Every error response."""

    error: str


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, counting while they stream in,
    and bodies that stall for ``timeout`` seconds with 408.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read;
    a body without one (chunked) is counted chunk by chunk and refused as soon as it passes
    the limit, so no request ever makes the server hold more than ``limit`` bytes of it. A
    client that stops sending mid-body does not keep its connection and the server's
    attention: each wait for the next chunk is bounded.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    def _message(self) -> str:
        return f"upload too large: over this server's limit of {_bytes(self.limit)} (max_upload_bytes={self.limit})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                await _error(400, "invalid Content-Length header")(scope, receive, send)
                return
            if too_large:
                # "Connection: close": the unread body must not be taken for the next request.
                await _error(413, self._message(), {"connection": "close"})(scope, receive, send)
                return
        received = 0
        complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body, only a disconnect can come: no deadline on that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                raise HTTPException(408, f"request body not received: nothing came for {self.timeout:g} s", headers={"connection": "close"}) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the form parser; FastAPI passes HTTPExceptions through to
                    # the app's handler, which answers with JSON.
                    raise HTTPException(413, self._message(), headers={"connection": "close"})
            return message

        await self.app(scope, counting_receive, send)


class AddressedHere:
    """Answer only requests addressed to this server, and act on a browser's request only if
    it comes from this server's own page or an origin in ``cors_origins``.

    Host: an IP address, ``localhost`` or one of ``allowed_hosts``; anything else (400) is
    what DNS rebinding looks like, a page at ``evil.example`` whose name now resolves to
    127.0.0.1. Origin: a browser sends it with every POST, and would send another site's
    simple multipart POST here unasked (the CORS preflight only guards the other kinds);
    one neither the page's own nor configured is refused (403) before the body is read.
    A request without Origin is not a browser's (curl, scripts) and passes.
    """

    _SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...], cors_origins: tuple[str, ...]) -> None:
        self.app = app
        self.allowed_hosts = {"localhost", *(h.lower() for h in allowed_hosts)}
        self.cors_origins = set(cors_origins)

    def _host_allowed(self, host: str) -> bool:
        if host.startswith("["):  # [IPv6]:port
            name = host[1:].partition("]")[0]
        elif host.count(":") == 1:  # name:port
            name = host.partition(":")[0]
        else:
            name = host
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name.lower() in self.allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
        if len(hosts) != 1 or not self._host_allowed(hosts[0]):
            shown = hosts[0] if len(hosts) == 1 else f"{len(hosts)} Host headers"
            message = f"this server does not answer to host {shown!r} (start it with --allowed-host NAME for a name of this machine)"
            await _error(400, message, {"connection": "close"})(scope, receive, send)
            return
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
        if scope["method"] not in self._SAFE_METHODS and origin is not None:
            own = urlsplit(origin).netloc == hosts[0]  # "null" (a sandboxed or file: page) has none
            if not own and origin not in self.cors_origins:
                message = f"cross-origin request from {origin!r} refused (start the server with --cors-origin {origin} to allow it)"
                await _error(403, message, {"connection": "close"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Add a strict Content-Security-Policy (nothing from other origins) and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", _CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n:,} pixels"


def _bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line: ``scale: Input should be a valid integer``."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "request"
        if err.get("type") == "missing":
            parts.append(f"missing form field '{field}'")
        else:
            parts.append(f"{field}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def _too_large_message(exc: ImageTooLargeError, label: str) -> str:
    """read_image's refusal in this server's words: its setting, and the size in megapixels."""
    if exc.size is None:  # only Pillow's decompression-bomb check could tell
        return str(exc)
    width, height = exc.size
    return (
        f"cannot read '{label}': too large: {width}x{height} = {_pixels(width * height)}, over this "
        f"server's limit of {_pixels(exc.limit)} (max_input_pixels)"
    )


def _safe_stem(filename: str | None) -> str:
    stem = Path(filename or "image").stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "image"


def _upload_label(filename: str | None) -> str:
    """An uploaded file's name as error messages may quote it: the client chose it, so markup
    is escaped (a page that shows the JSON error must not run it), control characters are
    written as escapes, and it is cut at 100 characters."""
    if not filename:
        return "upload"
    return html.escape(printable(filename[:100]), quote=True)


def _version() -> str:
    from superres import __version__

    return __version__


def _default_loader(reference: str, *, scale: int, device: str, tile: int | None, ensemble: bool = False, **blend):
    import superres  # the inference layer's entry point; imported late so the app module loads without it

    # blend: strength= and fidelity= (the partner's weight file) for a perceptual model
    return superres.load(reference, scale=scale, device=device, tile=tile, ensemble=ensemble, **blend)


def _default_model_name(settings: Settings) -> str:
    return settings.default_model if settings.default_model is not None else DEFAULT_MODEL


def create_app(settings: Settings | None = None, *, loader: Callable | None = None) -> FastAPI:
    """The FastAPI app serving the page, the docs and the API under ``settings``.

    ``loader(reference, scale=, device=, tile=)`` returns an Upscaler; it defaults to
    :func:`superres.load` and is a parameter so that tests can slow it down or count calls.
    """
    settings = settings or Settings()
    device = str(resolve_device(settings.device))  # an unusable device fails here, not per request
    load = loader or _default_loader
    jobs = JobQueue(settings.workers, settings.queue_size)
    upscalers = LRUCache(settings.cache_size)
    decode_slots = asyncio.Semaphore(_DECODE_SLOTS)
    preferred_model = _default_model_name(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(build_catalog, settings.weights_dirs)  # warm the model summaries
        yield
        jobs.shutdown()

    app = FastAPI(
        title="superres",
        version=_version(),
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
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.upscalers = upscalers

    # Added innermost first. Outermost, the security headers go on every answer (the limits'
    # own included); then requests not addressed here are turned away before anything else;
    # CORS (when configured) sees every request before the limits do.
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes, timeout=settings.body_timeout)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=[
                "content-disposition", "x-superres-model", "x-superres-scale", "x-superres-size", "x-superres-ensemble", "x-superres-strength", "x-superres-seconds",
            ],
        )
    app.add_middleware(AddressedHere, allowed_hosts=settings.allowed_hosts, cors_origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"not found: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return _error(exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    @app.get("/healthz", summary="Liveness, device and queue state")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "version": _version(),
            "device": device,
            "queue": {"workers": jobs.workers, "running": jobs.running, "waiting": jobs.waiting, "capacity": jobs.capacity},
            "loaded_models": [f"{name} x{scale}" for name, scale in upscalers.keys()],  # x4+: the self-ensemble
        }

    async def current_catalog() -> Catalog:
        return await run_in_threadpool(build_catalog, settings.weights_dirs)

    def default_choice(catalog: Catalog) -> tuple[str, int]:
        name = preferred_model if preferred_model in catalog.offers else "bicubic"
        scales = catalog.offers.get(name, {})
        scale = settings.default_scale if settings.default_scale in scales else next(iter(scales), settings.default_scale)
        return name, scale

    @app.get("/v1/models", summary="The models this server offers, with their scales and measured quality")
    async def models() -> dict:
        """Each model by registry name with the scales it can run at, its parameter count per
        scale and, when its weight file records it, the PSNR/SSIM measured on benchmark sets
        (`quality`: `{"Set5": {"psnr": ..., "ssim": ...}}`, or null)."""
        catalog = await current_catalog()
        name, scale = default_choice(catalog)
        return {
            "default": {"model": name, "scale": scale},
            "formats": list(_MEDIA_TYPES),
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_input_pixels": settings.max_input_pixels,
                "max_output_pixels": settings.max_output_pixels,
            },
            "models": catalog.to_json(),
        }

    def upscale_job(
        offer: Offer, image: ImageData, fmt: str, quality: int, output: OutputSize | None = None, ensemble: bool = False,
        blend: Blend | None = None,
    ) -> tuple[bytes, float]:
        start = time.perf_counter()
        # The same library calls as the CLI's: load(..., ensemble=, strength=) and the output size per image.
        options = {"ensemble": True} if ensemble else {}
        if blend is not None:
            options.update(strength=blend.strength, fidelity=blend.partner.load_reference)
        upscaler = upscalers.get(
            (offer.name if blend is None else f"{offer.name}@{blend.strength:g}", f"{offer.scale}+" if ensemble else offer.scale),
            lambda: load(offer.load_reference, scale=offer.scale, device=device, tile=settings.tile, **options),
        )
        check_encodable(image, fmt)  # an animation its writer cannot take: before the frames are upscaled
        result = upscaler.upscale_image_data(image, output=output)
        return encode_image(result, fmt.upper(), quality=quality), time.perf_counter() - start

    error_responses = {
        400: {"model": ErrorBody, "description": "the upload is not a readable image"},
        413: {"model": ErrorBody, "description": "upload, input pixels or output pixels over the server's limits"},
        422: {"model": ErrorBody, "description": "bad parameters: unknown model, unsupported scale, bad format"},
        503: {"model": ErrorBody, "description": "the job queue is full; retry after the Retry-After seconds"},
    }

    @app.post(
        "/v1/upscale",
        summary="Upscale one image",
        response_class=Response,
        responses={
            200: {
                "description": "the upscaled image, in the requested format",
                "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in _MEDIA_TYPES.values()},
            },
            **error_responses,
        },
    )
    async def upscale(
        request: Request,
        image: Annotated[
            UploadFile, File(description="PNG, JPEG, WebP, TIFF, BMP or GIF; alpha, 16-bit, grey, ICC and animation are kept")
        ],
        model: Annotated[str | None, Form(description="a registry name from GET /v1/models (default: the server's default)")] = None,
        scale: Annotated[
            float | None,
            Form(
                description="upscaling factor above 1: one the model offers runs that model; any other (1.5, 2.8) runs the "
                "model of the next scale above and resizes its result (default: the server's default)"
            ),
        ] = None,
        width: Annotated[int | None, Form(description="width of the result in pixels, instead of scale (alone: aspect kept)")] = None,
        height: Annotated[int | None, Form(description="height of the result in pixels, instead of scale (alone: aspect kept)")] = None,
        fit: Annotated[
            Literal[FITS],
            Form(description="width and height of another aspect ratio: cover (fill, trim the overflow), contain (fit inside), stretch"),
        ] = "cover",
        ensemble: Annotated[bool, Form(description="self-ensemble: 8 flips and rotations averaged; a little sharper, about 8x the time")] = False,
        strength: Annotated[
            float | None,
            Form(
                ge=0, le=1,
                description="a perceptual model (its `fidelity` in GET /v1/models): 1 its full texture (default), 0 its "
                "fidelity partner's smooth result, between: a blend of the two networks' weights (rounded to 0.01)",
            ),
        ] = None,
        format: Annotated[Literal["png", "jpeg", "webp", "gif"], Form(description="format of the result")] = "png",
        quality: Annotated[int, Form(ge=1, le=100, description="JPEG/WebP quality (WebP at 100 is lossless)")] = 95,
    ) -> Response:
        """Upload an image as multipart form data; get the upscaled image back, at ``scale`` or
        exactly ``width`` x ``height``.

        Example: `curl -F image=@photo.png -F model=bicubic -F scale=2 http://127.0.0.1:8000/v1/upscale -o out.png`;
        `-F width=1920 -F height=1080` for a size, `-F ensemble=true` for the self-ensemble,
        `-F model=swiftrep-real-gan -F strength=0.5` for half a perceptual model's texture.
        """
        images = len((await request.form()).getlist("image"))  # parsed once already; FastAPI would keep the last
        if images != 1:
            return _error(422, f"send one image per request (got {images} 'image' fields)")
        catalog = await current_catalog()
        default_name, default_scale = default_choice(catalog)
        name = model or default_name
        output = None
        try:
            offered = catalog.offers.get(name) or {}
            exact = width is None and height is None and (scale is None or (float(scale).is_integer() and int(scale) in offered))
            if exact:
                offer = catalog.find(name, int(scale) if scale is not None else default_scale)
            else:  # any other size: the model chosen per image below, as superres.load does
                output = OutputSize(scale=scale, width=width, height=height, fit=fit)
                offer = catalog.find(name, next(iter(offered), 0))  # an unknown name: its 422
        except SuperresError as exc:
            return _error(422, str(exc))
        except LookupError as exc:
            return _error(422, str(exc.args[0]))
        blend = None
        if strength is not None:  # checked here, before the upload is decoded
            try:
                blend = catalog.blend(offer, round(strength, 2))
            except LookupError as exc:
                return _error(422, str(exc.args[0]))

        label = _upload_label(image.filename)
        async with decode_slots:
            data = await image.read()
            try:
                decoded = await run_in_threadpool(read_image, data, name=label, max_pixels=settings.max_input_pixels)
            except ImageTooLargeError as exc:
                return _error(413, _too_large_message(exc, label))
            except ImageReadError as exc:
                return _error(400, str(exc))
            finally:
                del data
        in_height, in_width = decoded.size
        if output is None:
            out_height, out_width = in_height * offer.scale, in_width * offer.scale
        else:
            try:
                plan = output.plan(in_height, in_width)
            except SuperresError as exc:  # a size no larger than the image
                return _error(422, str(exc))
            offer = catalog.offers[offer.name][choose_model_scale(plan.factor, catalog.offers[offer.name])]
            out_height, out_width = plan.size
        # The model's own output is what memory holds, when it is larger than the result (x1.5 runs x2).
        held = max(out_height * out_width, in_height * in_width * offer.scale * offer.scale) * len(decoded.frames)
        if held > settings.max_output_pixels:
            what = f"{out_width}x{out_height} = {_pixels(held)}"
            if held != out_height * out_width:
                frames = f" in {len(decoded.frames)} frames" if decoded.animation is not None else ""
                what = f"{out_width}x{out_height}, {_pixels(held)} to compute with the x{offer.scale} model{frames}"
            return _error(
                413,
                f"the result would be {what}, over this "
                f"server's limit of {_pixels(settings.max_output_pixels)} (max_output_pixels); use a smaller image or scale",
            )

        max_side = _MAX_SIDE.get(format)
        if max_side is not None and max(out_width, out_height) > max_side:
            return _error(
                422,
                f"the result would be {out_width}x{out_height}, over {format.upper()}'s limit of {max_side} "
                "pixels a side; ask for png, or a smaller image or scale",
            )

        try:
            if blend is not None and blend.partner.scale != offer.scale:  # a size chose another model scale
                blend = catalog.blend(offer, blend.strength)
            content, seconds = await jobs.run(lambda: upscale_job(offer, decoded, format, quality, output, ensemble, blend))
        except LookupError as exc:
            return _error(422, str(exc.args[0]))
        except Busy:
            return _error(
                503,
                f"server busy: {jobs.capacity} jobs already running or waiting; try again in a moment",
                {"retry-after": "2"},
            )
        except OutputTooLarge as exc:  # over this machine's memory budget, below max_output_pixels
            return _error(413, str(exc))
        except SuperresError as exc:
            log.error("upscale with %s x%s failed: %s", offer.name, offer.scale, exc)
            return _error(500, f"upscaling failed: {exc}")

        label = f"x{offer.scale}" if output is None else output.label
        filename = f"{_safe_stem(image.filename)}_{offer.name}_{label}.{format}"
        return Response(
            content,
            media_type=_MEDIA_TYPES[format],
            headers={
                "content-disposition": f'inline; filename="{filename}"',
                "x-superres-model": offer.name,
                "x-superres-scale": str(offer.scale),  # the model's, which ran
                "x-superres-size": f"{out_width}x{out_height}",
                "x-superres-ensemble": "true" if ensemble else "false",
                **({} if blend is None else {"x-superres-strength": f"{blend.strength:g}"}),
                "x-superres-seconds": f"{seconds:.3f}",
            },
        )

    _add_explain_route(app, settings, jobs, decode_slots, current_catalog, default_choice, error_responses, device)
    return app


# An explanation costs `steps` forward and backward passes. Convolutional models run only on the
# window that reaches the box, whatever the image's size; a model that sees the whole image
# runs on all of it, so the input is capped apart from upscaling's limit.
_EXPLAIN_MAX_INPUT_PIXELS = 1 << 20
_EXPLAIN_MAX_STEPS = 100


class ExplainValues(BaseModel):
    """The raw attribution map: little-endian float32, row-major, base64."""

    dtype: str
    shape: list[int]
    data: str


class ExplainResult(BaseModel):
    """A Local Attribution Map of one box of the result (see ``superres.attribution``)."""

    model: str
    scale: int
    box: dict[str, int]
    input_box: dict[str, int]
    region: dict[str, int]
    steps: int
    sigma: float
    diffusion_index: float
    outside_share: float
    feature: float
    baseline_feature: float
    completeness_error: float
    seconds: float
    heatmap: str
    values: ExplainValues | None = None


def _explain_job(offer: Offer, image: ImageData, box, steps: int, device: str, include_values: bool, cancel=None) -> dict:
    import base64

    import numpy as np

    from superres.attribution import ExplainCancelled, explain, heatmap_overlay
    from superres.models import load_for_scale

    def stop_if_cancelled(done: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise ExplainCancelled(f"explanation stopped after {done} of {total} steps: the client left or the server is stopping")

    model = load_for_scale(offer.load_reference, offer.scale)
    result = explain(model, image, box, steps=steps, device=device, progress=stop_if_cancelled)
    result.model = offer.name  # a weights file's stem would name the path, which stays on the server
    png = encode_image(ImageData(pixels=heatmap_overlay(image, result)), "PNG")
    body = {**result.to_json(), "heatmap": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}
    if include_values:
        values = result.map.astype("<f4")
        body["values"] = {"dtype": "float32", "shape": list(values.shape), "data": base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")}
    return body


def _add_explain_route(app: FastAPI, settings: Settings, jobs: JobQueue, decode_slots, current_catalog, default_choice, error_responses, device: str) -> None:
    """``POST /v1/explain``: the Local Attribution Map of a box of the result, as JSON."""

    @app.post(
        "/v1/explain",
        summary="Which input pixels a box of the result came from (Local Attribution Map)",
        response_model=ExplainResult,
        response_model_exclude_none=True,
        responses=error_responses,
    )
    async def explain_box(
        request: Request,
        image: Annotated[UploadFile, File(description="the input image, as for /v1/upscale")],
        box: Annotated[str, Form(description="X,Y,W,H of the box to explain, in pixels of the upscaled result")],
        model: Annotated[str | None, Form(description="a registry name from GET /v1/models (default: the server's default)")] = None,
        scale: Annotated[int | None, Form(description="upscaling factor (default: the server's default)")] = None,
        steps: Annotated[int, Form(ge=1, le=_EXPLAIN_MAX_STEPS, description="path steps, one forward and backward pass each (the paper's 50)")] = 50,
        include_values: Annotated[bool, Form(description="also return the raw map (float32, base64)")] = False,
    ) -> JSONResponse:
        """Upload the input image and a box of its upscaled result; get the attribution map over
        the input as a PNG heatmap (a `data:` URL), the Diffusion Index (how widely the model
        draws on the input, 0-100), the share of attribution outside the box's own input area
        and, on request, the raw values.

        Example: `curl -F image=@photo.png -F model=espcn -F scale=4 -F box=120,80,16,16 http://127.0.0.1:8000/v1/explain`
        """
        from superres.attribution import ExplainError, parse_box

        catalog = await current_catalog()
        default_name, default_scale = default_choice(catalog)
        name = model or default_name
        scale = scale if scale is not None else default_scale
        try:
            offer = catalog.find(name, scale)
            parsed = parse_box(box)
        except LookupError as exc:
            return _error(422, str(exc.args[0]))
        except ExplainError as exc:
            return _error(422, str(exc))

        label = _upload_label(image.filename)
        limit = min(settings.max_input_pixels, _EXPLAIN_MAX_INPUT_PIXELS)
        async with decode_slots:
            data = await image.read()
            try:
                decoded = await run_in_threadpool(read_image, data, name=label, max_pixels=limit)
            except ImageTooLargeError as exc:
                return _error(413, f"{_too_large_message(exc, label)}; explanations take at most {_pixels(limit)}")
            except ImageReadError as exc:
                return _error(400, str(exc))
            finally:
                del data

        try:
            body = await jobs.run_cancellable(lambda cancel: _explain_job(offer, decoded, parsed, steps, device, include_values, cancel), request)
        except Busy:
            return _error(503, f"server busy: {jobs.capacity} jobs already running or waiting; try again in a moment", {"retry-after": "2"})
        except ExplainError as exc:
            return _error(422, str(exc))
        except SuperresError as exc:
            log.error("explain with %s x%s failed: %s", offer.name, offer.scale, exc)
            return _error(500, f"explaining failed: {exc}")
        return JSONResponse(body)

