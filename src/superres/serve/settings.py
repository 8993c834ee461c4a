"""What the web app may do: limits, queue, CORS, device and models, in one typed object."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings"]

MiB = 1 << 20


class Settings(BaseModel):
    """Configuration of :func:`superres.serve.create_app`; every default is the safe one.

    A request body over ``max_upload_bytes`` is refused while it streams in (413). An image
    over ``max_input_pixels`` is refused from its header, before decoding (413), and so is one
    whose result would exceed ``max_output_pixels``. ``workers`` jobs run at once, each in a
    thread off the event loop, and at most ``queue_size`` more wait; a request beyond that is
    answered 503 at once rather than piling up in memory.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_upload_bytes: int = Field(25 * MiB, gt=0, description="largest request body, multipart overhead included")
    max_input_pixels: int = Field(8_000_000, gt=0, description="largest input image (width x height)")
    # 64 MP is an 8000x8000 result: 192 MB as 8-bit RGB, a 2000x2000 photo at x4.
    max_output_pixels: int = Field(64_000_000, gt=0, description="largest result (width x height)")
    workers: int = Field(1, ge=1, description="jobs that run at once")
    queue_size: int = Field(4, ge=0, description="jobs that may wait for a worker; more get 503")
    cache_size: int = Field(2, ge=1, description="loaded models kept in memory (least recently used dropped)")
    cors_origins: tuple[str, ...] = Field((), description="origins allowed to call the API from a browser; none by default")
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="names of this machine that requests may be addressed to (the Host header), besides its IP "
        "addresses and localhost; a name not listed is refused, which is what stops DNS rebinding",
    )
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection may take to send a request's headers")
    body_timeout: float = Field(30.0, gt=0, description="seconds an upload may stall between two chunks of its body")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    tile: int | None = Field(None, gt=0, description="tile size for inference (None: the inference default)")
    default_model: str | None = Field(None, description="the model the page selects first when available (None: auto, the model chosen per photo)")
    default_scale: int = Field(4, ge=1)
    weights_dirs: tuple[Path, ...] = Field(
        (),
        description="extra folders of NAME_xSCALE.safetensors files, looked at before the shipped weights; "
        "clients still name models only by registry name",
    )
