"""Distillation from a teacher model: its labels, made once and cached
(:mod:`superres.data.teacher_labels`), then a student trained on them.

``python -m superres.training.distill labels --teacher FILE.param --out DIR --count N`` makes
(or completes) a label set with the teacher run by the ``ncnn`` runtime, the fastest CPU path
for Real-ESRGAN's models; a superres checkpoint or registry name runs through PyTorch instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from superres.data.teacher_labels import LabelSet, make_labels
from superres.device import set_cpu_threads

__all__ = ["teacher_runner"]


def teacher_runner(teacher: str, *, threads: int = 1):
    """A callable (3, h, w) float32 -> (3, s*h, s*w) for ``teacher``: an ncnn ``.param`` file
    run by the ncnn runtime, or anything :func:`superres.models.load_for_scale` loads."""
    if teacher.lower().endswith(".param"):
        from superres.models.ncnn import NcnnRuntime

        return NcnnRuntime(teacher, threads=threads)
    from superres.models import load

    model = load(teacher).eval()
    set_cpu_threads(threads)

    def run(image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(image)[None])[0].numpy()

    return run


def _labels_command(args: argparse.Namespace) -> int:
    labels = LabelSet(Path(args.out), tuple(str(Path(p).resolve()) for p in args.photos), scale=args.scale, lr_size=args.lr_size, seed=args.seed)
    teacher = teacher_runner(args.teacher, threads=args.threads)
    started = time.monotonic()

    def progress(index: int, made: int) -> None:
        if made % 25 == 0:
            rate = (time.monotonic() - started) / made
            print(f"label {index + 1}/{args.count}: {made} made this run, {rate:.2f} s each", flush=True)

    made = make_labels(teacher, labels, args.count, progress=progress)
    print(f"{made} labels made; '{labels.folder}' holds samples 0-{args.count - 1}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m superres.training.distill", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("labels", help="make or complete a cached label set")
    make.add_argument("--teacher", required=True, help="an ncnn .param file, a checkpoint or a registry name")
    make.add_argument("--out", required=True, help="the label set's folder")
    make.add_argument("--count", type=int, required=True, help="samples 0..COUNT-1")
    make.add_argument("--photos", nargs="+", default=["../shared/datasets/train/hr"], help="folders of HR photos")
    make.add_argument("--scale", type=int, default=4)
    make.add_argument("--lr-size", type=int, default=64)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    return _labels_command(args)


if __name__ == "__main__":
    sys.exit(main())
