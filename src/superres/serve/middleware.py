"""The app's outer layers, each a plain ASGI middleware: the body limit and stall timeout,
the Host and Origin checks, and the security headers; :func:`add_middleware` puts them on
an app in their order."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from superres.serve.answers import bytes_text, error
from superres.serve.settings import Settings

__all__ = ["AddressedHere", "BodyLimit", "SecurityHeaders", "add_middleware"]

# Everything the page and the docs load comes from this server; images are shown from blob: URLs.
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# The headers a browser page on a CORS origin may read from an upscale's answer.
_EXPOSED_HEADERS = [
    "content-disposition", "x-superres-model", "x-superres-scale", "x-superres-size", "x-superres-ensemble", "x-superres-strength", "x-superres-seconds", "x-superres-auto",
]


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """Put the layers on ``app``. Added innermost first. Outermost, the security headers go on
    every answer (the limits' own included); then requests not addressed here are turned away
    before anything else; CORS (when configured) sees every request before the limits do."""
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes, timeout=settings.body_timeout)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=_EXPOSED_HEADERS,
        )
    app.add_middleware(AddressedHere, allowed_hosts=settings.allowed_hosts, cors_origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders)


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
        return f"upload too large: over this server's limit of {bytes_text(self.limit)} (max_upload_bytes={self.limit})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                await error(400, "invalid Content-Length header")(scope, receive, send)
                return
            if too_large:
                # "Connection: close": the unread body must not be taken for the next request.
                await error(413, self._message(), {"connection": "close"})(scope, receive, send)
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
            await error(400, message, {"connection": "close"})(scope, receive, send)
            return
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
        if scope["method"] not in self._SAFE_METHODS and origin is not None:
            own = urlsplit(origin).netloc == hosts[0]  # "null" (a sandboxed or file: page) has none
            if not own and origin not in self.cors_origins:
                message = f"cross-origin request from {origin!r} refused (start the server with --cors-origin {origin} to allow it)"
                await error(403, message, {"connection": "close"})(scope, receive, send)
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
