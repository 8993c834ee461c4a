"""The web app: ``superres serve`` runs :func:`create_app` under uvicorn.

    >>> from superres.serve import Settings, create_app
    >>> app = create_app(Settings(workers=1, queue_size=4))
"""

from __future__ import annotations

from superres.serve.app import create_app
from superres.serve.settings import Settings

__all__ = ["Settings", "create_app", "run"]

# uvicorn answers 503 itself past this many open connections and tasks: a last guard against
# a flood of idle connections, well above what the job queue lets through.
_MAX_CONNECTIONS = 128


def run(settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve the app on ``host:port`` until interrupted (loopback only unless told otherwise)."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        limit_concurrency=_MAX_CONNECTIONS,
        server_header=False,
    )
