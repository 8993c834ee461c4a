"""Image quality metrics: pure functions of pixels.

- full reference (:mod:`.full_reference`): PSNR and SSIM under the SR paper protocol;
- no reference (:mod:`.niqe`): NIQE, for results that have no ground truth (real photos).
"""

from superres.metrics.full_reference import SSIM_WINDOW, prepare, psnr, psnr_torch, ssim, ssim_torch
from superres.metrics.niqe import NIQE_MIN_SIZE, NiqeUnavailableError, niqe

__all__ = ["psnr", "ssim", "psnr_torch", "ssim_torch", "prepare", "SSIM_WINDOW", "niqe", "NIQE_MIN_SIZE", "NiqeUnavailableError"]
