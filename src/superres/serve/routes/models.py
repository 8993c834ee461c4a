"""``GET /`` (the page), ``GET /docs`` (offline API reference), ``GET /healthz`` and
``GET /v1/models``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from superres.options import WEB_FORMATS
from superres.serve.context import server_of

__all__ = ["STATIC", "router", "version"]

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


def version() -> str:
    """superres's version, read when asked (the app module loads without the package's)."""
    from superres import __version__

    return __version__


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    return FileResponse(STATIC / "docs.html")


@router.get("/healthz", summary="Liveness, device and queue state")
async def healthz(request: Request) -> dict:
    server = server_of(request)
    jobs = server.jobs
    return {
        "status": "ok",
        "version": version(),
        "device": server.device,
        "queue": {"workers": jobs.workers, "running": jobs.running, "waiting": jobs.waiting, "capacity": jobs.capacity},
        "loaded_models": [f"{name} x{scale}" for name, scale in server.upscalers.keys()],  # x4+: the self-ensemble
    }


@router.get("/v1/models", summary="The models this server offers, with their scales and measured quality")
async def models(request: Request) -> dict:
    """Each model by registry name with the scales it can run at, its parameter count per
    scale and, when its weight file records it, the PSNR/SSIM measured on benchmark sets
    (`quality`: `{"Set5": {"psnr": ..., "ssim": ...}}`, or null)."""
    server = server_of(request)
    catalog = await server.catalog()
    name, scale = server.default_choice(catalog)
    settings = server.settings
    return {
        "default": {"model": name, "scale": scale},
        "formats": list(WEB_FORMATS),
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_input_pixels": settings.max_input_pixels,
            "max_output_pixels": settings.max_output_pixels,
        },
        "models": catalog.to_json() + catalog.auto_json(),
    }
