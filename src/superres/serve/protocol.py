"""The HTTP protocol ``superres serve`` runs under: uvicorn's h11 implementation plus a
deadline for each request's headers.

uvicorn times out an idle keep-alive connection, but not one that has sent part of a
request's headers: a client that opens connections and sends a few header bytes on each
holds them open for good (slowloris), until the connection limit turns everyone away.
Here every connection must complete a request's headers within ``header_timeout`` seconds
of opening (or of its previous response) or is closed. A request's body is timed by the
app (:class:`superres.serve.app.BodyLimit`).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["with_header_deadline"]


class _HeaderDeadline(H11Protocol):
    header_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        # A request whose headers arrived has a cycle that is not complete: the app has it.
        between_requests = self.cycle is None or self.cycle.response_complete
        if between_requests and not self.transport.is_closing():
            self.transport.close()


def with_header_deadline(header_timeout: float) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.run(http=...)``: h11 closing connections that do
    not send a request's headers within ``header_timeout`` seconds."""
    return type("HeaderDeadlineH11Protocol", (_HeaderDeadline,), {"header_timeout": float(header_timeout)})
