"""The model zoo: architectures (one file each), the registry and checkpoints.

    >>> from superres import models
    >>> net = models.create("swiftrep", scale=4)
    >>> net = models.load("weights.safetensors")
"""

from superres.models.contract import Contract, input_channels, model_contract
from superres.models.registry import ModelSpec, create, get_spec, list_specs, pretrained_path, register

# Explicit registration: importing an architecture file registers its names.
from superres.models import bicubic, espcn, fsrcnn, swiftrep  # noqa: F401  (registration)
from superres.models import srcnn, vdsr, srresnet, unet, discriminators  # noqa: F401  (registration)
from superres.models import edsr, imdn, rcan, rrdbnet, srvggnet  # noqa: F401  (registration)
from superres.models.checkpoint import CheckpointError, load_superres, read_metadata, save
from superres.models.foreign import load_foreign
from superres.models.pretrained import has_parameters, load_for_scale


def load(path, map_location="cpu"):
    """Load a checkpoint: superres safetensors, or an authors' release recognised from its keys.

    A ``.safetensors`` file with superres metadata is built through the registry; anything
    else (``.pth``, ``.pt``, ``.ckpt``, safetensors without our metadata) goes to
    :func:`superres.models.foreign.load_foreign`. Either way the model has ``scale``,
    ``superres_arch`` and ``superres_hyperparameters``, and a bad file raises CheckpointError.
    """
    if str(path).lower().endswith(".safetensors") and "arch" in read_metadata(path):
        return load_superres(path, map_location=map_location)
    return load_foreign(path, map_location=map_location)


__all__ = ["Contract", "input_channels", "model_contract", "ModelSpec", "create", "get_spec", "list_specs", "pretrained_path", "register", "load", "save", "CheckpointError", "read_metadata"]
