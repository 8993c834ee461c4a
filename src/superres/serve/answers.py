"""What every route answers with: the JSON error, its one-line messages, the busy answer,
and the one upload decoder (bounded, off the event loop, its failures in this server's words)."""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from fastapi import FastAPI, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from superres.errors import printable
from superres.imaging.io import ImageData, ImageReadError, ImageTooLargeError, read_image
from superres.serve.jobs import JobQueue

__all__ = [
    "ERROR_RESPONSES", "ErrorBody", "add_error_handlers", "busy", "bytes_text", "decode_upload", "error", "pixels_text", "safe_stem",
]

log = logging.getLogger("superres.serve.app")


class ErrorBody(BaseModel):
    """Every error response."""

    error: str


#: The error answers the API routes declare in the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "the upload is not a readable image"},
    413: {"model": ErrorBody, "description": "upload, input pixels or output pixels over the server's limits"},
    422: {"model": ErrorBody, "description": "bad parameters: unknown model, unsupported scale, bad format"},
    503: {"model": ErrorBody, "description": "the job queue is full; retry after the Retry-After seconds"},
}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error answer ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def busy(jobs: JobQueue) -> JSONResponse:
    """503 with Retry-After: the job queue is full."""
    return error(503, f"server busy: {jobs.capacity} jobs already running or waiting; try again in a moment", {"retry-after": "2"})


def pixels_text(n: int) -> str:
    """A pixel count for a message: megapixels from 0.1 MP, else pixels."""
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n:,} pixels"


def bytes_text(n: int) -> str:
    """A byte count for a message, in MiB, KiB or bytes."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def safe_stem(filename: str | None) -> str:
    """An upload's name stem, safe in a Content-Disposition header and a file system."""
    stem = Path(filename or "image").stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "image"


def upload_label(filename: str | None) -> str:
    """An uploaded file's name as error messages may quote it: the client chose it, so markup
    is escaped (a page that shows the JSON error must not run it), control characters are
    written as escapes, and it is cut at 100 characters."""
    if not filename:
        return "upload"
    return html.escape(printable(filename[:100]), quote=True)


def _too_large_message(exc: ImageTooLargeError, label: str) -> str:
    """read_image's refusal in this server's words: its setting, and the size in megapixels."""
    if exc.size is None:  # only Pillow's decompression-bomb check could tell
        return str(exc)
    width, height = exc.size
    return (
        f"cannot read '{label}': too large: {width}x{height} = {pixels_text(width * height)}, over this "
        f"server's limit of {pixels_text(exc.limit)} (max_input_pixels)"
    )


async def decode_upload(image: UploadFile, slots, max_pixels: int, too_large_note: str = "") -> ImageData | JSONResponse:
    """The uploaded image decoded (at most ``slots`` at a time, off the event loop, refused
    from its header over ``max_pixels``), or the answer saying why not: 413 too large (with
    ``too_large_note`` after the reason), 400 unreadable. The bytes are dropped once decoded."""
    label = upload_label(image.filename)
    async with slots:
        data = await image.read()
        try:
            return await run_in_threadpool(read_image, data, name=label, max_pixels=max_pixels)
        except ImageTooLargeError as exc:
            return error(413, _too_large_message(exc, label) + too_large_note)
        except ImageReadError as exc:
            return error(400, str(exc))
        finally:
            del data


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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"not found: {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    return error(exc.status_code, message, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error(422, _validation_message(exc))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error(500, f"internal error ({type(exc).__name__}); see the server log")


def add_error_handlers(app: FastAPI) -> None:
    """Every error ``app`` meets answered as JSON ``{"error": "<one line>"}``."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
