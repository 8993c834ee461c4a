"""The web app: ``superres serve`` runs :func:`create_app` under uvicorn.

    >>> from superres.serve import Settings, create_app
    >>> app = create_app(Settings(workers=1, queue_size=4))
"""

from __future__ import annotations

from superres.errors import SuperresError
from superres.extras import require

for _module in ("fastapi", "uvicorn", "python_multipart", "pydantic"):
    require(_module, extra="serve", purpose="the web app")

from superres.serve.app import create_app  # noqa: E402  (after the check, which names the pip command)
from superres.serve.protocol import with_header_deadline  # noqa: E402
from superres.serve.settings import Settings  # noqa: E402

__all__ = ["Settings", "check_port", "create_app", "run"]

# uvicorn answers 503 itself past this many open connections and tasks: a last guard against
# a flood of idle connections, well above what the job queue lets through.
_MAX_CONNECTIONS = 128


def check_port(port: int) -> None:
    """Refuse a TCP port out of range in one line, before anything starts (0: any free port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise SuperresError(f"port must be 0-65535, got {port!r}")


_GRACEFUL_SHUTDOWN_S = 5


def run(settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve the app on ``host:port`` until interrupted (loopback only unless told otherwise)."""
    import uvicorn

    check_port(port)
    settings = settings or Settings()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        limit_concurrency=_MAX_CONNECTIONS,
        server_header=False,
        http=with_header_deadline(settings.header_timeout),
        # On SIGTERM or Ctrl+C, requests still running after this long are cancelled, which
        # stops a running explanation at its next step; without it shutdown waited for them.
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
