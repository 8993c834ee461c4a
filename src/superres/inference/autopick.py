"""``-m auto``: the fidelity model that suits a photo, chosen from what the photo itself says.

Three shipped models each win on one kind of input (docs/REALWORLD.md): ``swiftrep`` on
clean sources (PNGs, renders, camera JPEGs of high quality), ``swiftrep-light`` on everyday
JPEGs and noisy photos, ``swiftrep-real`` on blurred, resized-again pictures. Each loses
0.2-3 dB on the others' inputs, so the choice matters more than most options. It is made
from what the picture says of its history, each measurement cheap and documented where it
is computed:

- the JPEG quality of the file, from its quantisation tables (:mod:`superres.imaging.jpeg_quality`),
  when the image came from a JPEG file (an :class:`ImageData` read by superres, a Pillow
  ``JpegImageFile``, or the file's bytes);
- from the pixels alone (:mod:`superres.imaging.estimates`): the noise sigma in the flattest
  blocks, the ratio of the whole high-pass band to it (texture reads above 1, artefacts
  everywhere below), how far the spectrum falls toward Nyquist (blur), and JPEG's block grid.

The rule, first match wins (thresholds below, each with the values it was set between):

0. a 16-bit image (a scan, a microscope's or a telescope's frame) -> the clean flagship;
1. a JPEG below :data:`JPEG_CLEAN_QUALITY` -> the light model (its artefacts are its training);
2. a spectrum that falls past :data:`FALLOFF_REAL` or bends past :data:`BEND_REAL` -> the real-world model;
3. artefacts across the picture (:data:`TEXTURE_REAL`) -> the real-world model;
4. JPEG blocks in the pixels (:data:`BLOCKY`) -> the light model;
5. noise of :data:`NOISE_SIGMA` or more that is not texture (:data:`TEXTURE`) -> the light model;
6. else the clean flagship.

Measured on Set14 (held out) by ``benchmarks/autopick_quality.py`` (docs/REALWORLD.md, "-m
auto"): JPEG and noisy inputs get the best model; pixels alone cannot tell every blurred
picture from a soft clean one, so on second-order inputs auto falls short of the real-world
model where it leaves such a picture to the clean one.

A model without weights for the scale asked is replaced by the next that has them: the
light model's inputs go to the real-world one (it was trained on JPEG and noise too), the
real-world model's to the light one, and then to the flagship, which has every scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from superres.imaging.estimates import blockiness, highpass_sigma, noise_sigma, spectral_falloff
from superres.imaging.jpeg_quality import jpeg_quality

__all__ = [
    "AUTO", "CLEAN", "LIGHT", "REAL", "JPEG_CLEAN_QUALITY", "FALLOFF_REAL", "BEND_REAL", "TEXTURE_REAL", "TEXTURE_REAL_NOISE",
    "BLOCKY", "NOISE_SIGMA", "TEXTURE",
    "Measurements", "Choice", "AutoModel", "measure", "decide", "choose_model", "shipped_scales",
]

#: The name that asks for a choice per image, wherever a model name is taken.
AUTO = "auto"
CLEAN, LIGHT, REAL = "swiftrep", "swiftrep-light", "swiftrep-real"

# The thresholds were tuned on Set5 and crops of 64 training photos (never on Set14), under
# every kind of input (benchmarks/autopick_tuning.py; docs/benchmarks/autopick_tuning_x4.json),
# with one asymmetry in mind: a clean picture sent to the light or real-world model loses
# 1-8 dB, a degraded one left to the clean model 0.2-1 dB. So a pixel test sends a picture
# away from the clean model only past the most extreme value a clean picture of the tuning
# set reached (smooth wallpapers with bokeh are blurred too; foliage reads as noise).

#: JPEGs at or above this quality go on to the pixel tests: at 90 the clean model beats the
#: light one by 0.22 dB on Set14, at 75 it loses by 0.49 (docs/REALWORLD.md's JPEG sweep).
JPEG_CLEAN_QUALITY = 85
#: Power in the top band this far (dB) or more below the mid band: blurred. Clean inputs of
#: the tuning set reach -31.6 dB (a soft-focus wallpaper), second-order ones -12 to -43.
FALLOFF_REAL = -32.0
#: Or a spectrum bent this far (dB) from a power law at its top (:attr:`Measurements.bend`):
#: down by a low-pass filter (blur, a sinc, a resize), up by noise added after one. Clean,
#: JPEG 90 and noisy inputs of the tuning set stay within -4.0 and +3.4 dB; 34 of the 69
#: second-order ones fall outside -5 and +5, or past the falloff above.
BEND_REAL = 5.0
#: Or a high-pass band whose whole reads below this times its quietest blocks (compression
#: and filtering artefacts everywhere, rather than detail in places; clean inputs read 0.88
#: and up, most 1 and up, noisy ones 0.97 and up)...
TEXTURE_REAL = 0.85
#: ...where there is noise enough to measure the ratio on (below, both are nearly 0: a flat picture).
TEXTURE_REAL_NOISE = 1.0
#: JPEG blocks show in the pixels from here (clean inputs of the tuning set reach 1.25).
BLOCKY = 1.3
#: Noise sigma (0-255, per channel, in the flattest blocks) from which the light model wins
#: (clean foliage and water read up to 7.7, noise of sigma 8 reads 5.7-13)...
NOISE_SIGMA = 6.0
#: ...when the whole high-pass band reads no more than this times as much: more is texture
#: (fur, grass, the butterfly's wings), on which the clean model wins even under noise.
TEXTURE = 1.15


@dataclass(frozen=True)
class Measurements:
    """What an image measured (:mod:`superres.imaging.estimates`): ``jpeg_quality`` (None: not
    read from a JPEG), ``noise`` (sigma on 0-255 in its flattest blocks), ``texture`` (the
    whole high-pass band's sigma over ``noise``), ``falloff`` and ``nyquist`` (dB: the power
    near Nyquist against the mid and the high band), ``blockiness`` (JPEG's grid) and ``bits``
    (8 or 16)."""

    jpeg_quality: int | None
    noise: float
    texture: float
    falloff: float
    nyquist: float
    blockiness: float
    bits: int = 8  # the pixels' depth: 16-bit images are measured data (scans, microscopy, astronomy), not photos


    @property
    def bend(self) -> float:
        """How far (dB) the power in the top band departs from the power law through the mid
        and high bands (a straight line in log power against log frequency, through the bands'
        centres 0.15, 0.35 and 0.45 cycles per pixel): natural pictures' spectra are close to
        power laws, and a clean downscale stays within a few dB of its line; a low-pass filter
        bends it down, noise added after one bends it up (a noise floor on a blurred picture)."""
        slope = (self.falloff - self.nyquist) / math.log(0.35 / 0.15)  # dB per unit of log frequency, mid to high
        return self.nyquist - slope * math.log(0.45 / 0.35)

    def as_dict(self) -> dict:
        """JSON-ready, rounded to what the rule can tell apart."""
        return {
            "jpeg_quality": self.jpeg_quality, "noise": round(self.noise, 2), "texture": round(self.texture, 2),
            "falloff": round(self.falloff, 1), "nyquist": round(self.nyquist, 1), "blockiness": round(self.blockiness, 3),
            "bits": self.bits,
        }


@dataclass(frozen=True)
class Choice:
    """The model chosen for an image (``name``, a registry name), a few words on why
    (``reason``), and the :class:`Measurements` it was chosen from."""

    name: str
    reason: str
    measurements: Measurements

    def line(self) -> str:
        """Words for a log: ``auto chose swiftrep-light: JPEG quality 60, below 85``."""
        return f"auto chose {self.name}: {self.reason}"


def _pixels(image) -> tuple[np.ndarray, int | None]:
    """The pixels of any image kind :meth:`Upscaler.upscale` takes, as HxWxC, and the JPEG
    quality its object knows of (an ImageData read from a JPEG, a Pillow JPEG)."""
    from PIL import Image

    from superres.imaging.io import ImageData

    if isinstance(image, ImageData):
        return image.pixels, image.jpeg_quality
    if isinstance(image, Image.Image):
        from superres.inference.channels import pil_pixels  # as upscaling reads it: 16-bit stays 16-bit

        found = jpeg_quality(image)
        return pil_pixels(image)[0], None if found is None else found.quality
    if isinstance(image, np.ndarray):
        return image, None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(image, torch.Tensor):
        first = image[0] if image.ndim == 4 else image  # a batch is judged by its first image
        return first.detach().float().cpu().permute(1, 2, 0).numpy(), None
    raise TypeError(f"cannot measure a {type(image).__name__}: pass a PIL image, a numpy array, a torch tensor or an ImageData")


def measure(image, *, jpeg_file: bytes | None = None) -> Measurements:
    """The :class:`Measurements` of ``image`` (any kind the Upscaler takes). ``jpeg_file``:
    the JPEG file the pixels were decoded from, when the caller has it and the image object
    does not carry its quality (a decoded numpy array)."""
    pixels, quality = _pixels(image)
    if jpeg_file is not None:
        found = jpeg_quality(jpeg_file)
        quality = None if found is None else found.quality
    noise = noise_sigma(pixels)
    texture = highpass_sigma(pixels) / noise if noise > 0 else 1.0
    falloff, nyquist = spectral_falloff(pixels)
    bits = 16 if np.asarray(pixels).dtype == np.uint16 else 8
    return Measurements(quality, noise, texture, falloff, nyquist, blockiness(pixels), bits)


def decide(m: Measurements, scale: int, available: dict[str, tuple[int, ...]]) -> Choice:
    """The :class:`Choice` for measurements ``m`` at model scale ``scale``, among the models of
    ``available`` (name -> scales with weights); the rule is the module's."""
    if m.bits == 16:  # the light and real-world models learnt 8-bit photos' faults, which such data has not
        wanted, why = CLEAN, "16-bit: measured data, not a photo's history"
    elif m.jpeg_quality is not None and m.jpeg_quality < JPEG_CLEAN_QUALITY:
        wanted, why = LIGHT, f"JPEG quality {m.jpeg_quality}, below {JPEG_CLEAN_QUALITY}"
    elif m.falloff <= FALLOFF_REAL or abs(m.bend) >= BEND_REAL:
        wanted, why = REAL, f"blurred: the finest detail {-m.falloff:.0f} dB below the mid band, spectrum bent {m.bend:+.0f} dB"
    elif m.texture < TEXTURE_REAL and m.noise >= TEXTURE_REAL_NOISE:
        wanted, why = REAL, f"degraded: artefacts across the picture (high-pass {m.texture:.2f} x its quietest blocks)"
    elif m.blockiness >= BLOCKY:
        wanted, why = LIGHT, f"JPEG blocks in the pixels: blockiness {m.blockiness:.2f}, {BLOCKY:g} or more"
    elif m.noise >= NOISE_SIGMA and m.texture <= TEXTURE:
        wanted, why = LIGHT, f"noisy: noise sigma {m.noise:.1f}, {NOISE_SIGMA:g} or more"
    else:
        wanted = CLEAN
        why = "clean: " + (f"JPEG quality {m.jpeg_quality}, " if m.jpeg_quality is not None else "") + f"noise sigma {m.noise:.1f}"
        why += f"{' (texture)' if m.noise >= NOISE_SIGMA else ''}, finest detail {-m.falloff:.0f} dB below the mid band"
    order = {LIGHT: (LIGHT, REAL, CLEAN), REAL: (REAL, LIGHT, CLEAN), CLEAN: (CLEAN,)}[wanted]
    for name in order:
        if scale in available.get(name, ()):
            if name != wanted:
                why += f"; {wanted} has no x{scale}"
            return Choice(name, why, m)
    raise ValueError(f"no model for auto at x{scale}: {CLEAN} has no weights for it")


def shipped_scales() -> dict[str, tuple[int, ...]]:
    """The scales each of auto's models has shipped weights for."""
    from superres.models import get_spec

    return {name: get_spec(name).pretrained_scales() for name in (CLEAN, LIGHT, REAL)}


def choose_model(image, scale: int, *, jpeg_file: bytes | None = None) -> Choice:
    """The fidelity model for ``image`` (any kind the Upscaler takes) at model scale ``scale``
    (2, 3 or 4), with why and the measurements: see the module for the rule. ``jpeg_file``
    as in :func:`measure`."""
    return decide(measure(image, jpeg_file=jpeg_file), int(scale), shipped_scales())


class AutoModel:
    """``superres eval -m auto``: per image, the model :func:`choose_model` names, at one scale.

    ``load(name, scale)`` gives a model (an ``nn.Module``; default: its shipped weights), each
    loaded once and moved to ``device``. :meth:`for_image` takes the LR as the evaluation
    has it: its pixels and, for a JPEG-degraded one, the JPEG file it was decoded from."""

    def __init__(self, scale: int, *, device="cpu", load=None):
        from superres.models import load_for_scale

        self.scale = int(scale)
        self._device = device
        self._load = load or load_for_scale
        self._models: dict = {}
        self._available = shipped_scales()

    def for_image(self, lr: np.ndarray, lr_file: bytes | None = None):
        """(the model for this LR image, the :class:`Choice` that named it)."""
        choice = decide(measure(lr, jpeg_file=lr_file), self.scale, self._available)
        if choice.name not in self._models:
            self._models[choice.name] = self._load(choice.name, self.scale).to(self._device)
        return self._models[choice.name], choice
