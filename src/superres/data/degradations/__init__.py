"""Making LR from HR: the bicubic protocol, first-order degradations, and Real-ESRGAN's
second-order model of real photos (:mod:`.second_order`, with its kernels in :mod:`.kernels`).
:mod:`.presets` names fixed degradations for scoring (``superres eval --degrade``)."""

from superres.data.degradations.first_order import Degradations, gaussian_blur, make_lr_batch
from superres.data.degradations.kernels import KERNEL_SHAPES, filter_batch, random_kernel, shaped_kernel, sinc_kernel
from superres.data.degradations.presets import PRESET_HELP, check_preset, degrade
from superres.data.degradations.second_order import DegradationStage, SecondOrder, jpeg_batch, second_order_lr, unsharp_mask

__all__ = [
    "Degradations", "gaussian_blur", "make_lr_batch",
    "KERNEL_SHAPES", "filter_batch", "random_kernel", "shaped_kernel", "sinc_kernel",
    "PRESET_HELP", "check_preset", "degrade",
    "DegradationStage", "SecondOrder", "jpeg_batch", "second_order_lr", "unsharp_mask",
]
