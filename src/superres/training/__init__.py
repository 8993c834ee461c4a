"""Training on PyTorch Lightning: typed config, losses, the SR LightningModule, callbacks."""

from superres.training.config import ConfigError, TrainConfig, load_config
from superres.training.run import export_run, train

__all__ = ["ConfigError", "TrainConfig", "load_config", "export_run", "train"]
