"""Training on PyTorch Lightning: typed config, losses, the SR LightningModule, callbacks.

Needs the ``train`` extra (``pip install 'superres[train]'``); importing this package without
it raises :class:`superres.extras.MissingExtraError`, one line naming that command.
"""

from superres.extras import require

for _module in ("lightning", "tensorboard", "yaml", "pydantic"):
    require(_module, extra="train", purpose="training")

from superres.training.config import ConfigError, TrainConfig, load_config
from superres.training.run import export_run, train

__all__ = ["ConfigError", "TrainConfig", "load_config", "export_run", "train"]
