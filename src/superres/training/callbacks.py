"""Lightning callbacks and plugins: atomic checkpoints, periodic and on-interrupt saves,
validation under the paper protocol, a progress bar with an ETA, the stop at max_steps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from tqdm import tqdm

from superres.atomic import atomic_path
from superres.data.datasets import BenchmarkImage
from superres.errors import printable
from superres.evaluate import score_images
from superres.imaging.pixels import to_8bit
from superres.training.checkpoints import read_for_resume

__all__ = ["AtomicCheckpointIO", "StepCheckpoint", "ProtocolValidation", "ProgressBar", "StopAtMaxSteps", "read_metrics"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint atomically (:mod:`superres.atomic`), so a crash mid-write never
    leaves a truncated ``last.ckpt``; and reads one only safely.

    Lightning's own reader passes ``weights_only`` through from its caller, so under a torch
    whose default unpickles freely (or with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) a
    downloaded ``last.ckpt`` could run code on ``--resume``. Here every read is
    :func:`~superres.training.checkpoints.read_for_resume`, and a checkpoint the caller has
    already read that way (``loaded``, by path) is handed over as it is, not read again."""

    def __init__(self, loaded: dict[Path, dict] | None = None):
        super().__init__()
        self.loaded = dict(loaded or {})

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        path = Path(path)
        if path in self.loaded:
            return self.loaded.pop(path)
        return read_for_resume(path)

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temp:
            torch.save(checkpoint, temp)


class StepCheckpoint(L.Callback):
    """Save ``last.ckpt`` every ``every`` iterations, at the end, and on an exception or
    Ctrl-C; keep a numbered copy every ``keep_every`` iterations (0 = none)."""

    def __init__(self, directory: Path, every: int, keep_every: int = 0):
        self.directory = Path(directory)
        self.every = every
        self.keep_every = keep_every

    @property
    def last(self) -> Path:
        return self.directory / "last.ckpt"

    def _save(self, trainer, module) -> None:
        # weights_only=False (the full state, to resume) said explicitly: unsaid, Lightning logs
        # a line about it at every save.
        trainer.save_checkpoint(self.last, weights_only=False)
        if self.keep_every and module.iteration % self.keep_every == 0:
            trainer.save_checkpoint(self.directory / f"iter_{module.iteration:07d}.ckpt", weights_only=False)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.iteration % self.every == 0:
            self._save(trainer, module)

    def on_train_end(self, trainer, module):
        self._save(trainer, module)

    def on_exception(self, trainer, module, exception):
        # Ctrl-C, or SIGTERM from a scheduler (SLURM) or `kill`, which Lightning raises as
        # SIGTERMException: save where we are so --resume loses nothing.
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and module.iteration > 0:
            trainer.save_checkpoint(self.last, weights_only=False)
            if trainer.is_global_zero:
                print(f"\nsaved {self.last} at iteration {module.iteration}; resume with --resume", flush=True)


class StopAtMaxSteps(L.Callback):
    """End training after ``max_steps`` iterations (the patch stream itself is endless)."""

    def __init__(self, max_steps: int):
        self.max_steps = max_steps

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.iteration >= self.max_steps:
            trainer.should_stop = True

    def on_train_start(self, trainer, module):
        if module.iteration >= self.max_steps:
            trainer.should_stop = True


def _triplet(lr: np.ndarray, sr: np.ndarray, hr: np.ndarray, scale: int, crop: int = 192) -> np.ndarray:
    """A (3, crop, 3*crop) image: LR (nearest-upscaled) | SR | HR, from the centre."""
    h, w = hr.shape[:2]
    c = min(crop, h, w) // scale * scale
    y, x = (h - c) // 2 // scale * scale, (w - c) // 2 // scale * scale
    lr_up = np.repeat(np.repeat(lr[y // scale : (y + c) // scale, x // scale : (x + c) // scale], scale, 0), scale, 1)
    panels = [lr_up, sr[y : y + c, x : x + c], hr[y : y + c, x : x + c]]
    panels = [to_8bit(p) for p in panels]  # TensorBoard shows 8 bits; 16-bit validation images are scored in 16
    panels = [np.repeat(p, 3, axis=2) if p.shape[2] == 1 else p for p in panels]
    return np.concatenate(panels, axis=1).transpose(2, 0, 1)


class ProtocolValidation(L.Callback):
    """Every ``every`` iterations (and at the end), PSNR/SSIM of the EMA model under the paper
    protocol on each benchmark folder, on rank 0; logged to TensorBoard with an LR/SR/HR
    triplet, and appended to ``metrics.jsonl`` in the run folder. With ``at_start``, also
    before the first step of a new run: a run started from trained weights shows there that
    it starts where those weights were (the shipped score, for a shipped file). With
    ``with_niqe``, the results' mean NIQE too (``<name>/niqe``)."""

    def __init__(self, datasets: dict[str, list[BenchmarkImage]], scale: int, every: int, log_file: Path, *, at_start: bool = False, with_niqe: bool = False):
        self.datasets = datasets
        self.scale = scale
        self.every = every
        self.at_start = at_start
        self.with_niqe = with_niqe
        self.log_file = Path(log_file)
        self.last: dict[str, float] = {}
        self.reported: set[str] = set()  # images skipped, said once
        self._done_at = -1

    @property
    def scored_at(self) -> int:
        """The iteration of the latest validation (-1 before the first); callbacks listed
        after this one (a tuner's pruning, say) read ``last`` when it equals the current one."""
        return self._done_at

    def _validate(self, trainer, module) -> None:
        if not trainer.is_global_zero or not self.datasets or module.iteration == self._done_at:
            return
        self._done_at = module.iteration
        model = module.eval_model
        was_training = model.training
        model.eval()
        record = {"iteration": module.iteration, "time": time.time()}
        with torch.autocast(device_type=module.device.type, enabled=False):
            for name, items in self.datasets.items():
                outputs: list[np.ndarray] = []
                skipped: list[str] = []
                score = score_images(model, items, scale=self.scale, dataset=name, device=module.device, outputs=outputs, errors=skipped, with_niqe=self.with_niqe)
                for reason in set(skipped) - self.reported:
                    print(f"superres: validation skipped {printable(reason)}", flush=True)
                self.reported.update(skipped)
                record[f"{name}/psnr"] = round(score.psnr, 4)
                record[f"{name}/ssim"] = round(score.ssim, 5)
                scores = {f"val/{name}/psnr": score.psnr, f"val/{name}/ssim": score.ssim}
                if score.niqe is not None:
                    record[f"{name}/niqe"] = round(score.niqe, 4)
                    scores[f"val/{name}/niqe"] = score.niqe
                if trainer.logger is not None:
                    trainer.logger.log_metrics(scores, step=module.iteration)
                    experiment = getattr(trainer.logger, "experiment", None)
                    if hasattr(experiment, "add_image") and score.images:
                        first = next(item for item in items if item.name == score.images[0].image)
                        experiment.add_image(f"samples/{name}/lr_sr_hr", _triplet(first.lr, outputs[0], first.hr, self.scale), module.iteration)
        model.train(was_training)
        self.last = {k: v for k, v in record.items() if "/" in k}
        with open(self.log_file, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def on_train_start(self, trainer, module):
        if self.at_start and module.iteration == 0:
            self._validate(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.iteration % self.every == 0:
            self._validate(trainer, module)

    def on_train_end(self, trainer, module):
        self._validate(trainer, module)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The validation records :class:`ProtocolValidation` appended to a run's ``metrics.jsonl``,
    oldest first; [] for a run that has none."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class ProgressBar(L.Callback):
    """One tqdm bar over all iterations (with an ETA), showing the loss and last validation."""

    def __init__(self, max_steps: int, validation: ProtocolValidation | None = None):
        self.max_steps = max_steps
        self.validation = validation
        self.bar = None

    def on_train_start(self, trainer, module):
        if trainer.is_global_zero and module.iteration:
            print(f"resuming at iteration {module.iteration}", flush=True)
        if trainer.is_global_zero:
            self.bar = tqdm(total=self.max_steps, initial=module.iteration, desc="train", unit="it", dynamic_ncols=True, mininterval=1.0)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.bar is None:
            return
        self.bar.update(1)
        if module.iteration % 10 == 0:
            postfix = {"loss": f"{float(outputs['loss'] if isinstance(outputs, dict) else outputs):.4f}"}
            if self.validation is not None:
                postfix.update({k: f"{v:.2f}" for k, v in self.validation.last.items() if k.endswith("psnr")})
            self.bar.set_postfix(postfix, refresh=False)

    def on_train_end(self, trainer, module):
        if self.bar is not None:
            self.bar.close()

    def on_exception(self, trainer, module, exception):
        self.on_train_end(trainer, module)
