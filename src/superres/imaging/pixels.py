"""Pixels in memory: the decoded image (:class:`ImageData`) and the conversions of its samples.

Integer samples (uint8, uint16) to float32 in [0, 1] and back, the 16- to 8-bit reduction and
compositing on white: what reading, writing, the upscaler and the datasets share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # imported where a tensor is made: reading and writing images need no torch
    import torch

__all__ = [
    "Animation", "ImageData", "composite_on_white", "from_float", "from_float_tensor", "peak_value", "to_8bit", "to_float",
    "to_float_tensor",
]


@dataclass(eq=False)
class Animation:
    """How an animated image (GIF, WebP) plays, beside its first frame in :class:`ImageData`.

    ``frames`` are the frames after the first, each a whole canvas as it shows on screen
    (earlier frames and disposal already composited), of the first frame's size, dtype and
    channels, with alpha exactly when the first frame has it. ``durations`` are the display
    times of all the frames, the first included, in milliseconds. ``loop``: how many times
    the animation repeats, 0 for ever, None where the file says nothing (GIF: it plays once).
    ``disposals``: the GIF disposal method of every frame (0-3), [] where the source had none.
    """

    frames: list[ImageData]
    durations: list[int]
    loop: int | None = 0
    disposals: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.durations) != len(self.frames) + 1:
            raise ValueError(f"{len(self.frames) + 1} frames but {len(self.durations)} durations")
        if self.disposals and len(self.disposals) != len(self.durations):
            raise ValueError(f"{len(self.durations)} frames but {len(self.disposals)} disposal methods")

    def replace_frames(self, frames: list[ImageData]) -> Animation:
        """The same timing, loop and disposals with other frames (an upscaled copy)."""
        return Animation(frames=list(frames), durations=list(self.durations), loop=self.loop, disposals=list(self.disposals))


@dataclass(eq=False)  # field-wise == on arrays is ambiguous; compare .pixels explicitly
class ImageData:
    """A decoded image: colour and alpha apart, plus the metadata worth carrying to the output.

    ``pixels`` is (H, W, 1) for grayscale or (H, W, 3) for RGB, uint8 or uint16; ``alpha`` is
    (H, W) of the same dtype, or None. ``exif`` is the EXIF block as Pillow's
    ``Exif.tobytes()`` writes it (``b"Exif\\0\\0"`` then a TIFF structure), without the
    orientation tag: the orientation has already been applied to the pixels. ``format`` is
    the source's format ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"), None for an image made
    in memory. ``animation``: the other frames and the timing of an animated file (pixels and
    alpha are its first frame), None for a still image. ``jpeg_quality``: for an image read
    from a JPEG, the quality its quantisation tables were written at (IJG scale 1-100,
    :mod:`.jpeg_quality`), which says how much of its detail is compression artefact.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    animation: Animation | None = None
    jpeg_quality: int | None = None

    def __post_init__(self) -> None:
        pixels = self.pixels
        if not isinstance(pixels, np.ndarray) or pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            shape = getattr(pixels, "shape", type(pixels).__name__)
            raise ValueError(f"pixels must be an (H, W, 1) or (H, W, 3) array, got {shape}")
        if pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"pixels must be uint8 or uint16, got {pixels.dtype}")
        if self.alpha is not None:
            if not isinstance(self.alpha, np.ndarray) or self.alpha.shape != pixels.shape[:2]:
                shape = getattr(self.alpha, "shape", type(self.alpha).__name__)
                raise ValueError(f"alpha must be an (H, W) array matching pixels {pixels.shape[:2]}, got {shape}")
            if self.alpha.dtype != pixels.dtype:
                raise ValueError(f"alpha dtype {self.alpha.dtype} differs from pixels dtype {pixels.dtype}")

    def __repr__(self) -> str:
        h, w, c = self.pixels.shape
        parts = [f"{h}x{w}x{c} {self.pixels.dtype}", f"alpha={'yes' if self.alpha is not None else 'no'}"]
        parts += [f"icc={len(self.icc_profile) if self.icc_profile else 0} B"]
        parts += [f"exif={len(self.exif) if self.exif else 0} B", f"format={self.format!r}"]
        if self.animation is not None:
            parts.append(f"frames={len(self.animation.durations)}")
        if self.jpeg_quality is not None:
            parts.append(f"jpeg_quality={self.jpeg_quality}")
        return f"ImageData({', '.join(parts)})"

    @property
    def bit_depth(self) -> int:
        """Bits per sample: 8 or 16."""
        return 8 if self.pixels.dtype == np.uint8 else 16

    @property
    def frames(self) -> list[ImageData]:
        """Every frame as a still ImageData (pixels and alpha only): one for a still image."""
        first = ImageData(pixels=self.pixels, alpha=self.alpha)
        return [first] + (self.animation.frames if self.animation is not None else [])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.pixels.shape[0], self.pixels.shape[1]


def peak_value(dtype: npt.DTypeLike) -> int:
    """The largest sample of ``dtype``: 255 for uint8, 65535 for uint16."""
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 65535
    raise ValueError(f"expected uint8 or uint16 pixels, got {dtype}")


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 or uint16 pixels to float32 in [0, 1]: ``x / 255`` or ``x / 65535``."""
    return pixels.astype(np.float32) / np.float32(peak_value(pixels.dtype))


def from_float(pixels: np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
    """Float pixels in [0, 1] to ``dtype`` (uint8 or uint16): ``round(clip(x, 0, 1) * peak)``.

    Rounds half to even; NaN becomes 0. The inverse of :func:`to_float` for every integer value.
    """
    dtype = np.dtype(dtype)
    top = peak_value(dtype)
    values = np.asarray(pixels)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    # float32 is exact enough: its spacing near 65535 is 1/256, far from a rounding boundary.
    scaled = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * values.dtype.type(top)
    return np.rint(scaled).astype(dtype)


def to_float_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(B, H, W, C) or (H, W, C) uint8/uint16 pixels to a float32 (B, C, H, W) tensor in [0, 1]:
    :func:`to_float`'s arithmetic (the same float32 division), so the numbers are identical."""
    import torch

    batch = pixels[None] if pixels.ndim == 3 else pixels
    peak = peak_value(pixels.dtype)
    # uint16 has no arithmetic in torch: widen it to int32 first (exact). A read-only array
    # (Pillow's) is copied: torch refuses to wrap one without a warning.
    if batch.dtype == np.uint16:
        batch = batch.astype(np.int32)
    elif not (batch.flags.writeable and batch.flags.c_contiguous):
        batch = np.array(batch)
    source = torch.from_numpy(batch)
    return source.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format).div_(peak)


def from_float_tensor(images: torch.Tensor, dtype: npt.DTypeLike) -> np.ndarray:
    """A float (B, C, H, W) CPU tensor in [0, 1] to (B, H, W, C) ``dtype`` pixels, as
    :func:`from_float` does it (NaN to 0, clip, times the peak in float32, round half to even),
    so the numbers are identical. Works in place on ``images`` when it is float32."""
    import torch

    dtype = np.dtype(dtype)
    top = peak_value(dtype)
    # (B, H, W, C): a view; the conversion to integers writes it contiguous, in one pass.
    x = images.permute(0, 2, 3, 1)
    x = x if x.dtype == torch.float32 else x.float()
    x = x.nan_to_num_(0.0).clamp_(0.0, 1.0).mul_(top).round_()
    # numpy's float-to-integer cast is several times faster than torch's on a CPU (0.04 against
    # 0.3 ms for a 0.15 MP RGB image); the values are whole numbers in range, so it is exact.
    # An image already in (B, H, W, C) memory (see rgb_from_luma_torch) is then not moved.
    return x.numpy().astype(dtype, order="C")


def to_8bit(array: np.ndarray) -> np.ndarray:
    """uint8 or uint16 samples as uint8: 16-bit ones rounded, ``round(x / 257)``."""
    if array.dtype == np.uint8:
        return array
    # round(x / 257) in integers: exact, and the inverse of the x * 257 that widens 8 to 16 bits.
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def composite_on_white(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, C) integer pixels blended over white by their (H, W) alpha, rounded, same dtype."""
    peak = peak_value(pixels.dtype)
    a = alpha.astype(np.int64)[..., None]
    out = (pixels.astype(np.int64) * a + peak * (peak - a) + peak // 2) // peak
    return out.astype(pixels.dtype)
