"""The data ``-m auto``'s thresholds were tuned on: Set5 and crops of the training photos (never
Set14, which reports), each under every kind of input, with what the image measures and what
each fidelity model scores on it.

Run: python benchmarks/autopick_tuning.py [--photos 14] [--crop 480] [--threads 1] [--json out.json]
     python benchmarks/autopick_tuning.py --others --no-set5 --kinds clean noise8 --models swiftrep swiftrep-light --json out2.json
     python benchmarks/autopick_tuning.py --replay docs/benchmarks/autopick_tuning_x4.json   (the two runs, joined)

Per image and kind (clean bicubic LR, ``superres eval --degrade`` presets): the measurements
``-m auto`` decides from (:func:`superres.inference.autopick.measure`: the JPEG quality read
from the LR's file for the JPEG kinds, and the pixels' noise, texture, spectral falloff and
blockiness) and the PSNR on Y (the paper protocol) of each model's result. Printed per kind
and group (Set5, training crops): which model wins how often, and what the current rule
(:func:`~superres.inference.autopick.decide`) scores against the best single model and
against an oracle that picks the best model for every image. ``--replay JSON`` re-reads a
saved run instead of measuring (to try other thresholds, edit them in autopick.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from superres.data.degradations.presets import degrade_with_file
from superres.evaluate import predict_uint8
from superres.imaging.color import modcrop
from superres.imaging.io import read_image
from superres.imaging.resize import imresize
from superres.inference.autopick import Measurements, decide, measure, shipped_scales
from superres.metrics import psnr
from superres.models import load_for_scale

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared/datasets"
KINDS = ["clean", "jpeg90", "jpeg75", "jpeg60", "jpeg40", "noise4", "noise8", "real"]


def images(photos: int, crop: int, set5: bool, others: bool = False) -> list[tuple[str, np.ndarray]]:
    """Set5 whole (with ``set5``), then the centre ``crop`` of every n-th training photo
    (``photos`` of them); with ``others``, instead every other one of the remaining photos,
    cropped around the point a third of the way in (another part of a picture than a centre)."""
    out = [(f"Set5/{p.stem}", read_image(p).pixels) for p in sorted((DATA / "benchmark/Set5").glob("*.png"))] if set5 else []
    paths = sorted((DATA / "train/hr").glob("*.png"))
    chosen = paths[:: max(1, len(paths) // max(1, photos))][:photos]
    for p in [q for q in paths if q not in chosen][::2] if others else chosen:
        hr = read_image(p).pixels
        h, w = hr.shape[:2]
        if others:
            top, left = max(0, h // 3 - crop // 2), max(0, w // 3 - crop // 2)
        else:
            top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        out.append((f"{'train2' if others else 'train'}/{p.stem}", hr[top : top + crop, left : left + crop]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["swiftrep", "swiftrep-light", "swiftrep-real"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--photos", type=int, default=14, help="training photos of the first set (--others: the rest)")
    parser.add_argument("--crop", type=int, default=480)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=KINDS)
    parser.add_argument("--no-set5", action="store_true", help="training crops only")
    parser.add_argument("--others", action="store_true", help="the photos the --photos run left out (every other one), off-centre crops")
    parser.add_argument("--replay", metavar="JSON", help="summarise a saved run with the current rule, without measuring")
    parser.add_argument("--json", help="written after every image, so a run cut short keeps what it measured")
    args = parser.parse_args()
    if args.replay:
        saved = json.loads(Path(args.replay).read_text())
        summarise(saved["rows"], saved["scale"])
        return
    torch.set_num_threads(args.threads)
    scale = args.scale
    models = {m: load_for_scale(m, scale) for m in args.models}
    rows = []
    for name, hr in images(args.photos, args.crop, not args.no_set5, args.others):
        hr = modcrop(hr[..., :3] if hr.shape[2] >= 3 else np.repeat(hr, 3, axis=2), scale)
        for kind in args.kinds:
            lr, lr_file = (imresize(hr, 1 / scale), None) if kind == "clean" else degrade_with_file(hr, scale, kind, key=Path(name).name)
            row = {"image": name, "kind": kind, **measure(lr, jpeg_file=lr_file).as_dict()}
            row["psnr"] = {m: psnr(predict_uint8(model, lr), hr, shave=scale) for m, model in models.items()}
            rows.append(row)
        print(name, flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"scale": scale, "rows": rows}, indent=1))
    summarise(rows, scale)


def summarise(rows: list[dict], scale: int) -> None:
    """Per group and kind: wins per model, and auto's mean PSNR against the best single model's and an oracle's."""
    available = shipped_scales()
    fields = ("jpeg_quality", "noise", "texture", "falloff", "nyquist", "blockiness")
    for group in dict.fromkeys(r["image"].split("/")[0] for r in rows):
        print(f"\n{group}: auto - best single model (dB), oracle - best; wins per model; auto's picks")
        for kind in dict.fromkeys(r["kind"] for r in rows):
            sub = [r for r in rows if r["kind"] == kind and r["image"].split("/")[0] == group]
            if not sub:
                continue
            models = list(sub[0]["psnr"])
            # A saved run may have scored only some models (--models): a pick it did not score fails loudly.
            picks = [decide(Measurements(*(r[f] for f in fields)), scale, available).name for r in sub]
            means = {m: float(np.mean([r["psnr"][m] for r in sub])) for m in models}
            best = max(means, key=means.get)
            auto = float(np.mean([r["psnr"][p] for r, p in zip(sub, picks)]))
            oracle = float(np.mean([max(r["psnr"].values()) for r in sub]))
            wins = {m: sum(max(r["psnr"], key=r["psnr"].get) == m for r in sub) for m in models}
            chosen = {m: picks.count(m) for m in models if m in picks}
            print(f"  {kind:8s} best {best:15s} {means[best]:.3f}  auto {auto - means[best]:+.3f}  oracle {oracle - means[best]:+.3f}  wins {wins}  picks {chosen}")

if __name__ == "__main__":
    main()
