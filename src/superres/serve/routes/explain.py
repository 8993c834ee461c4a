"""``POST /v1/explain``: the Local Attribution Map of a box of the result, as JSON."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from superres.errors import SuperresError
from superres.imaging.io import ImageData, encode_image
from superres.serve.answers import ERROR_RESPONSES, busy, decode_upload, error, pixels_text
from superres.serve.catalog import Offer
from superres.serve.context import server_of
from superres.serve.jobs import Busy

__all__ = ["ExplainResult", "ExplainValues", "router"]

log = logging.getLogger("superres.serve.app")  # the server's one log

router = APIRouter()


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


@router.post(
    "/v1/explain",
    summary="Which input pixels a box of the result came from (Local Attribution Map)",
    response_model=ExplainResult,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
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

    server = server_of(request)
    catalog = await server.catalog()
    default_name, default_scale = server.default_choice(catalog)
    try:
        offer = catalog.find(model or default_name, scale if scale is not None else default_scale)
        parsed = parse_box(box)
    except LookupError as exc:
        return error(422, str(exc.args[0]))
    except ExplainError as exc:
        return error(422, str(exc))
    limit = min(server.settings.max_input_pixels, _EXPLAIN_MAX_INPUT_PIXELS)
    decoded = await decode_upload(image, server.decode_slots, limit, f"; explanations take at most {pixels_text(limit)}")
    if isinstance(decoded, JSONResponse):
        return decoded
    try:
        body = await server.jobs.run_cancellable(
            lambda cancel: _explain_job(offer, decoded, parsed, steps, server.device, include_values, cancel), request
        )
    except Busy:
        return busy(server.jobs)
    except ExplainError as exc:
        return error(422, str(exc))
    except SuperresError as exc:
        log.error("explain with %s x%s failed: %s", offer.name, offer.scale, exc)
        return error(500, f"explaining failed: {exc}")
    return JSONResponse(body)
