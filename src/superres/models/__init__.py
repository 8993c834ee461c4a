"""The model zoo: architectures (one file each), the registry and checkpoints.

    >>> from superres import models
    >>> net = models.create("swiftrep", scale=4)
    >>> net = models.load("weights.safetensors")
"""

from superres.models.contract import Contract, input_channels, model_contract
from superres.models.registry import ModelSpec, create, get_spec, list_specs, pretrained_path, register, weights_file_name

# Explicit registration: importing an architecture file registers its names.
from superres.models import bicubic, espcn, fsrcnn, swiftrep  # noqa: F401  (registration)
from superres.models import srcnn, vdsr, srresnet, unet, discriminators  # noqa: F401  (registration)
from superres.models import edsr, imdn, rcan, rrdbnet, srvggnet  # noqa: F401  (registration)
from superres.models import reference  # noqa: F401  (registration: other projects' releases)
from superres.models.checkpoint import CheckpointError, read_metadata, save
from superres.models.pretrained import has_parameters, load, load_for_scale


__all__ = [
    "Contract", "input_channels", "model_contract", "ModelSpec", "create", "get_spec", "list_specs",
    "pretrained_path", "register", "weights_file_name", "load", "save", "CheckpointError", "read_metadata",
]
