"""``POST /v1/upscale``: one image in, the upscaled image out, at a scale or a size."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from superres.errors import SuperresError
from superres.imaging.io import ImageData, check_encodable, encode_image
from superres.inference.autopick import AUTO, CLEAN, LIGHT, REAL, decide, measure
from superres.inference.sizing import OutputSize, OutputTooLarge, choose_model_scale
from superres.options import FITS, WEB_FORMATS, image_format
from superres.serve.answers import ERROR_RESPONSES, busy, decode_upload, error, pixels_text, safe_stem
from superres.serve.catalog import Blend, Catalog, Offer
from superres.serve.context import ServerContext, server_of
from superres.serve.jobs import Busy

__all__ = ["MEDIA_TYPES", "router"]

log = logging.getLogger("superres.serve.app")  # the server's one log

# The formats a result is returned in, each with its media type and the largest side its
# encoder writes (a result over it is refused before the upscale, not failed after it).
_WEB_FORMATS = {name: image_format(name) for name in WEB_FORMATS}
MEDIA_TYPES = {name: f.media_type for name, f in _WEB_FORMATS.items() if f is not None}
_MAX_SIDE = {name: f.max_side for name, f in _WEB_FORMATS.items() if f is not None and f.max_side is not None}

ImageField = Annotated[UploadFile, File(description="PNG, JPEG, WebP, TIFF, BMP or GIF; alpha, 16-bit, grey, ICC and animation are kept")]
ModelField = Annotated[
    str | None,
    Form(
        description="a name from GET /v1/models, or auto: the fidelity model chosen for this image, named with the "
        "reason in the x-superres-auto header (default: the server's default, auto unless set)"
    ),
]
ScaleField = Annotated[
    float | None,
    Form(
        description="upscaling factor above 1: one the model offers runs that model; any other (1.5, 2.8) runs the "
        "model of the next scale above and resizes its result (default: the server's default)"
    ),
]
WidthField = Annotated[int | None, Form(description="width of the result in pixels, instead of scale (alone: aspect kept)")]
HeightField = Annotated[int | None, Form(description="height of the result in pixels, instead of scale (alone: aspect kept)")]
FitField = Annotated[
    Literal[FITS],
    Form(description="width and height of another aspect ratio: cover (fill, trim the overflow), contain (fit inside), stretch"),
]
EnsembleField = Annotated[bool, Form(description="self-ensemble: 8 flips and rotations averaged; a little sharper, about 8x the time")]
StrengthField = Annotated[
    float | None,
    Form(
        ge=0, le=1,
        description="a perceptual model (its `fidelity` in GET /v1/models): 1 its full texture (default), 0 its "
        "fidelity partner's smooth result, between: a blend of the two networks' weights (rounded to 0.01)",
    ),
]
FormatField = Annotated[Literal[WEB_FORMATS], Form(description="format of the result")]
QualityField = Annotated[int, Form(ge=1, le=100, description="JPEG/WebP quality (WebP at 100 is lossless)")]

router = APIRouter()


@dataclass
class _Ask:
    """What a request asks for, once checked against the catalog."""

    offer: Offer
    output: OutputSize | None
    blend: Blend | None
    ensemble: bool = False
    format: str = WEB_FORMATS[0]
    quality: int = 95
    auto: bool = False  # model "auto": the offer is the flagship's until the image is read
    reason: str | None = None  # why auto chose the model it did


@router.post(
    "/v1/upscale",
    summary="Upscale one image",
    response_class=Response,
    responses={
        200: {
            "description": "the upscaled image, in the requested format",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES.values()},
        },
        **ERROR_RESPONSES,
    },
)
async def upscale(
    request: Request, image: ImageField, model: ModelField = None, scale: ScaleField = None, width: WidthField = None,
    height: HeightField = None, fit: FitField = "cover", ensemble: EnsembleField = False, strength: StrengthField = None,
    format: FormatField = WEB_FORMATS[0], quality: QualityField = 95,
) -> Response:
    """Upload an image as multipart form data; get the upscaled image back, at ``scale`` or
    exactly ``width`` x ``height``.

    Example: `curl -F image=@photo.png -F model=bicubic -F scale=2 http://127.0.0.1:8000/v1/upscale -o out.png`;
    `-F width=1920 -F height=1080` for a size, `-F ensemble=true` for the self-ensemble,
    `-F model=swiftrep-real-gan -F strength=0.5` for half a perceptual model's texture.
    With `model=auto` (the default unless the server sets another) the model is chosen for
    the image: `x-superres-model` names it and `x-superres-auto` says why.
    """
    images = len((await request.form()).getlist("image"))  # parsed once already; FastAPI would keep the last
    if images != 1:
        return error(422, f"send one image per request (got {images} 'image' fields)")
    server = server_of(request)
    catalog = await server.catalog()
    ask = _ask(server, catalog, model, scale, width, height, fit, strength)
    if isinstance(ask, JSONResponse):
        return ask
    ask = replace(ask, ensemble=ensemble, format=format, quality=quality)
    decoded = await decode_upload(image, server.decode_slots, server.settings.max_input_pixels)
    if isinstance(decoded, JSONResponse):
        return decoded
    size = _plan_size(server, catalog, ask, decoded)
    if isinstance(size, JSONResponse):
        return size
    if ask.auto:  # the same choice as superres.load("auto") makes, among the models this server offers
        available = {n: tuple(catalog.offers.get(n, {})) for n in (CLEAN, LIGHT, REAL)}
        choice = await run_in_threadpool(lambda: decide(measure(decoded), ask.offer.scale, available))
        ask.offer, ask.reason = catalog.offers[choice.name][ask.offer.scale], choice.reason
    return await _run(server, catalog, ask, decoded, size, image.filename)


def _ask(server: ServerContext, catalog: Catalog, model, scale, width, height, fit, strength) -> _Ask | JSONResponse:
    """The offer (model and scale), output size and blend a request names, or its 422; all
    checked before the upload is decoded."""
    default_name, default_scale = server.default_choice(catalog)
    name = model or default_name
    # auto: checked as its flagship, whose scales it covers; the model is chosen once the image is read.
    auto = name == AUTO and CLEAN in catalog.offers
    if auto and strength is not None:
        return error(422, "auto chooses among fidelity models: it takes no strength")
    output = None
    try:
        offered = catalog.offered(name)
        exact = width is None and height is None and (scale is None or (float(scale).is_integer() and int(scale) in offered))
        if exact:
            offer = catalog.find(name, int(scale) if scale is not None else default_scale)
        else:  # any other size: the model chosen per image below, as superres.load does
            output = OutputSize(scale=scale, width=width, height=height, fit=fit)
            offer = catalog.find(name, next(iter(offered), 0))  # an unknown name: its 422
        blend = None if strength is None else catalog.blend(offer, round(strength, 2))
    except SuperresError as exc:
        return error(422, str(exc))
    except LookupError as exc:
        return error(422, str(exc.args[0]))
    return _Ask(offer, output, blend, auto=auto)


def _plan_size(server: ServerContext, catalog: Catalog, ask: _Ask, decoded: ImageData) -> tuple[int, int] | JSONResponse:
    """(height, width) of the result, with the offer of the model scale that reaches it put
    in ``ask``; or the 413/422 of a result over the server's or the format's limits."""
    in_height, in_width = decoded.size
    if ask.output is None:
        out_height, out_width = in_height * ask.offer.scale, in_width * ask.offer.scale
    else:
        try:
            plan = ask.output.plan(in_height, in_width)
        except SuperresError as exc:  # a size no larger than the image
            return error(422, str(exc))
        offers = catalog.offers[ask.offer.name]
        ask.offer = offers[choose_model_scale(plan.factor, offers)]
        out_height, out_width = plan.size
    # The model's own output is what memory holds, when it is larger than the result (x1.5 runs x2).
    model_scale = ask.offer.scale
    held = max(out_height * out_width, in_height * in_width * model_scale * model_scale) * len(decoded.frames)
    limit = server.settings.max_output_pixels
    if held > limit:
        what = f"{out_width}x{out_height} = {pixels_text(held)}"
        if held != out_height * out_width:
            frames = f" in {len(decoded.frames)} frames" if decoded.animation is not None else ""
            what = f"{out_width}x{out_height}, {pixels_text(held)} to compute with the x{model_scale} model{frames}"
        return error(
            413,
            f"the result would be {what}, over this "
            f"server's limit of {pixels_text(limit)} (max_output_pixels); use a smaller image or scale",
        )
    max_side = _MAX_SIDE.get(ask.format)
    if max_side is not None and max(out_width, out_height) > max_side:
        return error(
            422,
            f"the result would be {out_width}x{out_height}, over {ask.format.upper()}'s limit of {max_side} "
            "pixels a side; ask for png, or a smaller image or scale",
        )
    return out_height, out_width


async def _run(server: ServerContext, catalog: Catalog, ask: _Ask, decoded: ImageData, size: tuple[int, int], filename: str | None) -> Response:
    """The upscale as a queued job, answered with the image and its headers (or 422/503/500)."""
    offer = ask.offer
    try:
        if ask.blend is not None and ask.blend.partner.scale != offer.scale:  # a size chose another model scale
            ask.blend = catalog.blend(offer, ask.blend.strength)
        content, seconds = await server.jobs.run(lambda: _upscale_job(server, ask, decoded))
    except LookupError as exc:
        return error(422, str(exc.args[0]))
    except Busy:
        return busy(server.jobs)
    except OutputTooLarge as exc:  # over this machine's memory budget, below max_output_pixels
        return error(413, str(exc))
    except SuperresError as exc:
        log.error("upscale with %s x%s failed: %s", offer.name, offer.scale, exc)
        return error(500, f"upscaling failed: {exc}")
    label = f"x{offer.scale}" if ask.output is None else ask.output.label
    out_height, out_width = size
    return Response(
        content,
        media_type=MEDIA_TYPES[ask.format],
        headers={
            "content-disposition": f'inline; filename="{safe_stem(filename)}_{offer.name}_{label}.{ask.format}"',
            "x-superres-model": offer.name,
            "x-superres-scale": str(offer.scale),  # the model's, which ran
            "x-superres-size": f"{out_width}x{out_height}",
            "x-superres-ensemble": "true" if ask.ensemble else "false",
            **({} if ask.blend is None else {"x-superres-strength": f"{ask.blend.strength:g}"}),
            # -m auto: why x-superres-model was chosen, e.g. "JPEG quality 60, below 85"
            **({} if ask.reason is None else {"x-superres-auto": ask.reason}),
            "x-superres-seconds": f"{seconds:.3f}",
        },
    )


def _upscale_job(server: ServerContext, ask: _Ask, image: ImageData) -> tuple[bytes, float]:
    """The work of one request, in a job thread: the cached Upscaler, the image, its bytes."""
    start = time.perf_counter()
    offer, blend = ask.offer, ask.blend
    # The same library calls as the CLI's: load(..., ensemble=, strength=) and the output size per image.
    options: dict = {"ensemble": True} if ask.ensemble else {}
    if blend is not None:
        options.update(strength=blend.strength, fidelity=blend.partner.load_reference)
    upscaler = server.upscalers.get(
        (offer.name if blend is None else f"{offer.name}@{blend.strength:g}", f"{offer.scale}+" if ask.ensemble else offer.scale),
        lambda: server.load(offer.load_reference, scale=offer.scale, device=server.device, tile=server.settings.tile, **options),
    )
    check_encodable(image, ask.format)  # an animation its writer cannot take: before the frames are upscaled
    result = upscaler.upscale_image_data(image, output=ask.output)
    return encode_image(result, ask.format.upper(), quality=ask.quality), time.perf_counter() - start
