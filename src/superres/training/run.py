"""``superres train`` and ``superres export``: build everything from a config and run Lightning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.loggers import TensorBoardLogger
from pydantic import ValidationError
from torch.utils.data import DataLoader

from superres.atomic import signals_handled_elsewhere, write_atomic
from superres.data.datasets import HRPatchDataset, ImageStore, PairedPatchDataset, PatchStreamSampler, load_benchmark
from superres.data.teacher_labels import TeacherLabelDataset
from superres.data.pairs import IndexedPatches, SynthesizeLR
from superres.device import bf16_is_fast, cpu_capability, resolve_device, set_cpu_threads
from superres.errors import SuperresError, printable
from superres.models import checkpoint as ckpt_format
from superres.models import create
from superres.models.checkpoint import CheckpointError
from superres.models.contract import fuse
from superres.training.callbacks import AtomicCheckpointIO, ProgressBar, ProtocolValidation, StepCheckpoint, StopAtMaxSteps, read_metrics
from superres.training.checkpoints import read_for_resume, read_training_checkpoint
from superres.training.config import ConfigError, TrainConfig
from superres.training.module import SRModule

__all__ = ["train", "export_run", "git_commit"]


def git_commit() -> str | None:
    """The commit of the superres checkout (with ``-dirty`` if it has changes), if any."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class _SRData(L.LightningDataModule):
    """The endless patch stream, sharded by rank, starting at the module's iteration."""

    def __init__(self, config: TrainConfig, module: SRModule):
        super().__init__()
        self.config = config
        self.module = module
        d = config.data
        self.hr = ImageStore(d.train, cache=d.cache, cache_dir=d.cache_dir, min_size=d.patch_size)
        if d.teacher_labels is not None:
            self.dataset = TeacherLabelDataset(
                d.teacher_labels, self.hr, patch=d.patch_size // config.model.scale, seed=config.trainer.seed, augment=d.augment
            )
            if self.dataset.scale != config.model.scale:
                raise ConfigError(f"'data.teacher_labels' holds x{self.dataset.scale} labels, but model.scale is {config.model.scale}")
        elif d.train_lr is not None:
            lr_store = ImageStore(d.train_lr, cache=d.cache, cache_dir=d.cache_dir)
            self.dataset = PairedPatchDataset(lr_store, self.hr, scale=config.model.scale, patch=d.patch_size, seed=config.trainer.seed, augment=d.augment, sampling=d.sampling)
        else:
            self.dataset = HRPatchDataset(
                self.hr, patch=d.patch_size, seed=config.trainer.seed, augment=d.augment, sampling=d.sampling, min_gradient=d.min_gradient
            )

    def train_dataloader(self):
        d = self.config.data
        sampler = PatchStreamSampler(
            batch_size=d.batch_size,
            start_batch=lambda: self.module.iteration,
            rank=self.trainer.global_rank,
            world=self.trainer.world_size,
        )
        dataset, collate = self.dataset, None
        if d.num_workers > 0 and d.train_lr is None and d.teacher_labels is None:
            # The workers make the LR side too (the costly part with degradations), beside the
            # training process instead of between its steps; the pairs are the same.
            dataset = IndexedPatches(self.dataset)
            collate = SynthesizeLR(
                self.config.model.scale, self.config.data.degradations, self.config.trainer.seed, d.batch_size,
                rank=self.trainer.global_rank, world=self.trainer.world_size,
            )
        return DataLoader(
            dataset, batch_size=d.batch_size, sampler=sampler, num_workers=d.num_workers,
            persistent_workers=d.num_workers > 0, drop_last=True, collate_fn=collate,
            worker_init_fn=_leave_sigterm_to_the_trainer if d.num_workers > 0 else None,
        )


def _leave_sigterm_to_the_trainer(_worker_id: int) -> None:
    """A scheduler (SLURM, `kill -- -PGID`, `pkill -f`) sends SIGTERM to every process of the
    run; a worker that died of it would make the training process fail with "DataLoader worker
    killed" before it saved its checkpoint. The workers ignore it (as PyTorch's already ignore
    Ctrl-C), the training process saves and exits, and the workers stop with it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _RankAgreement(L.Callback):
    """After training, gather a checksum of the generator (and discriminator) from every rank
    and record whether they agree (DDP must keep replicas identical); written to ``ddp_check.json``."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_end(self, trainer, module):
        if trainer.world_size < 2:
            return
        nets = [module.generator] + ([module.discriminator] if module.discriminator is not None else [])
        flat = torch.cat([p.detach().double().flatten() for net in nets for p in net.parameters()])
        local = torch.stack([flat.sum(), (flat * torch.arange(flat.numel(), dtype=torch.float64)).sum()])
        gathered = trainer.strategy.all_gather(local)  # (world, 2)
        if trainer.is_global_zero:
            rows = gathered.cpu().tolist()
            write_atomic(self.path, json.dumps({"checksums": rows, "identical": all(r == rows[0] for r in rows)}).encode())


def _strategy(config: TrainConfig, module: SRModule) -> str:
    """The Lightning strategy: the configured one, except that a GAN under DDP must let DDP
    find unused parameters (the generator's backward leaves the discriminator without
    gradients and the discriminator's leaves the generator), or DDP stops at the first step."""
    t = config.trainer
    strategy = t.strategy
    if module.discriminator is None:
        return strategy
    several = t.num_nodes > 1 or (isinstance(t.devices, int) and t.devices > 1) or (isinstance(t.devices, list) and len(t.devices) > 1)
    if strategy == "auto" and several:
        strategy = "ddp"  # what Lightning would pick for several devices
    if strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def train(config: TrainConfig, *, resume: bool = False, callbacks: Sequence[L.Callback] = ()) -> Path:
    """Train per ``config``; with ``resume`` continue from ``output_dir/checkpoints/last.ckpt``.
    ``callbacks`` run after the built-in ones, so they see each validation's scores (a
    hyperparameter search's pruning). Returns the exported weights file (``output_dir/model.safetensors``)."""
    out = Path(config.output_dir)
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise SuperresError(f"nothing to resume: '{last}' does not exist")
    if not resume and last.is_file():
        raise SuperresError(f"'{out}' already holds a run; pass --resume to continue it or choose another output_dir")
    set_cpu_threads(config.trainer.threads)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A shell starts background jobs with SIGINT ignored; `kill -INT` should still stop
        # (and checkpoint) a run the way Ctrl-C does.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Read (safely) and checked before anything is written, so a bad last.ckpt costs nothing.
    resumed = {last: read_for_resume(last)} if resume else {}
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)

    module = SRModule(config)
    data = _SRData(config, module)
    module.provenance = {"commit": git_commit(), "data": {"folders": config.data.train, "images": len(data.hr)}}
    if config.model.init_from:
        module.provenance["started_from"] = _lineage(config.model.init_from)
        if module.reinitialised:
            left = module.reinitialised
            print(f"superres: {len(left)} tensors not in {config.model.init_from} start at their initialisation ({ckpt_format._few(left)})")
    for reason in data.hr.skipped:
        print(f"superres: skipped {printable(reason)}")
    t = config.trainer
    validation = _validation(config, out)
    callbacks = [
        StopAtMaxSteps(t.max_steps),
        validation,
        StepCheckpoint(out / "checkpoints", t.checkpoint_every, t.keep_every),
        ProgressBar(t.max_steps, validation),
        _RankAgreement(out / "ddp_check.json"),
        *callbacks,
    ]
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(config, module),
        precision=training_precision(t.precision, t.accelerator),
        max_epochs=-1,
        max_steps=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=TensorBoardLogger(str(out), name="tb", version=""),
        log_every_n_steps=t.log_every,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO(resumed)],
    )
    # Written only now that the run can start: a mistake above leaves the run folder as it was.
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode())
    # Lightning owns SIGTERM and SIGINT while it runs: it saves a checkpoint and stops.
    with warnings.catch_warnings(), signals_handled_elsewhere():
        # An endless stream has no length; Lightning says so at every start.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*infinite.*")
        # The frozen VGG19 of the perceptual loss stays in eval mode on purpose.
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None)
    if trainer.interrupted:
        raise KeyboardInterrupt
    if not trainer.is_global_zero:
        return out / "model.safetensors"
    return export_run(out)


def _validation(config: TrainConfig, out: Path) -> ProtocolValidation:
    """The paper-protocol validation of ``config.val``, its benchmark images read now."""
    if config.val.niqe and config.val.folders:
        from superres.metrics.niqe import require_niqe

        require_niqe()  # a missing extra is one line now, not at the first validation
    val_sets = {}
    for folder in config.val.folders:
        items = load_benchmark(folder, config.model.scale, degrade=config.val.degrade)
        val_sets[config.val.set_name(folder)] = items[: config.val.max_images] if config.val.max_images else items
    return ProtocolValidation(
        val_sets, config.model.scale, config.val.every_n_steps, out / "metrics.jsonl",
        at_start=bool(config.model.init_from), with_niqe=config.val.niqe,
    )


def _training_record(info: dict) -> dict:
    """A checkpoint's ``superres`` section as a weight file's ``training`` metadata: config,
    commit, iterations, data and, for a run started from another, that run's record."""
    provenance = info.get("provenance", {})
    return {
        "config": info.get("config"),
        "commit": provenance.get("commit"),
        "iterations": info.get("iteration"),
        "data": provenance.get("data"),
        "started_from": provenance.get("started_from"),
    }


def _lineage(path: str | os.PathLike) -> dict:
    """The training record of the weights in ``path`` (a ``model.init_from``), so the
    weights of a run that fine-tunes another name every stage behind them."""
    path = Path(path)
    if not path.exists() or path.suffix.lower() in (".param", ".bin"):  # a registry name, an ncnn file: no record of ours
        return {"from": str(path)}
    if path.suffix == ".safetensors":
        return {"from": str(path), **(ckpt_format.read_metadata(path).get("training") or {})}
    return {"from": str(path), **_training_record(read_training_checkpoint(path).record)}


def training_precision(precision: str, accelerator: str) -> str:
    """The Lightning precision a run uses: the recipe's, except bf16 on a CPU where bf16 is not
    measured to be fast (:func:`superres.device.bf16_is_fast`), which falls back to fp32 with
    a one-line warning (on an AVX2-only CPU a bf16 SwiftRep step was 15x slower than fp32)."""
    # "auto" picks as resolve_device does (CUDA, then MPS, then the CPU): on a Mac an auto
    # run trains on MPS, which this CPU check has nothing to say about.
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and resolve_device("auto").type == "cpu")
    if precision.startswith("bf16") and on_cpu and not bf16_is_fast("cpu"):
        print(f"superres: warning: {precision} is slow on this CPU ({cpu_capability()}); training in fp32 (32-true) instead", file=sys.stderr)
        return "32-true"
    return precision


def export_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, *, checkpoint: str | None = None) -> Path:
    """Write a run's final (EMA) weights as a registry-loadable safetensors file with the
    config, commit, iterations, data and last validation scores in its metadata; or those of
    ``checkpoint``, one the run kept (``iter_0000800.ckpt``, ``trainer.keep_every``), with
    the validation scores of its own iteration."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise SuperresError(f"'{run_dir}' is not a training run (no checkpoints/last.ckpt)")
    last = run_dir / "checkpoints" / (checkpoint or "last.ckpt")
    if not last.is_file():
        kept = sorted(p.name for p in (run_dir / "checkpoints").glob("iter_*.ckpt"))
        raise SuperresError(f"'{run_dir}' has no checkpoint '{checkpoint}' (kept: {', '.join(kept) or 'none'})")
    state = read_training_checkpoint(last)
    info = state.record
    try:
        config = TrainConfig.model_validate_json(json.dumps(info.get("config")))
    except ValidationError:
        raise CheckpointError(f"'{last}' holds no valid training config; it cannot be exported") from None
    m = config.model
    model = create(m.name, scale=m.scale, **m.hyperparameters)
    model.load_state_dict(state.generator_state())
    hyper = dict(model.superres_hyperparameters)
    if fuse(model):  # ship the fused inference form
        hyper["reparameterized"] = True
    validation = [r for r in read_metrics(run_dir) if r["iteration"] <= (info.get("iteration") or 0)]
    training = {**_training_record(info), "last_validation": validation[-1] if validation else None}
    training["total_iterations"] = sum(iterations or 0 for _, iterations in ckpt_format.training_stages(training))
    metadata = {"training": training}
    target = Path(output) if output else run_dir / "model.safetensors"
    return ckpt_format.save(model, target, arch=m.name, scale=m.scale, hyperparameters=hyper, metadata=metadata)
