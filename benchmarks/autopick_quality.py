"""``-m auto`` against each fidelity model, per kind of input, in one run.

Run: python benchmarks/autopick_quality.py [--sets Set14 Set5] [--kinds clean jpeg90 jpeg60 jpeg40 noise8 real] [--scale 4] [--threads 1] [--json out.json]

For each benchmark set and kind of input (clean: the paper protocol's bicubic LR, as PNGs
are; the others: ``superres eval --degrade`` presets, the JPEG ones with their files, whose
quantisation tables auto reads), every fidelity model with weights at the scale and ``auto``
are scored as ``superres eval -m MODEL --data SET -s 4 [--degrade KIND]`` scores them (PSNR
on Y, border shaved). Printed per set: a table of PSNR, auto's margin over the best single
model of each column (the target: -0.05 dB or better), and which models auto chose.
Thresholds were tuned on Set5 and training photos (``benchmarks/autopick_tuning.py``):
Set14 is the held-out report.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch

from superres import evaluate
from superres.inference.autopick import AUTO, CLEAN, LIGHT, REAL, AutoModel, shipped_scales
from superres.models import load_for_scale

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared/datasets/benchmark"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["Set14", "Set5"])
    parser.add_argument("--kinds", nargs="+", default=["clean", "jpeg90", "jpeg60", "jpeg40", "noise8", "real"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scale = args.scale
    available = shipped_scales()
    models = [m for m in (CLEAN, LIGHT, REAL) if scale in available[m]]
    print(f"x{scale}, {args.threads} thread(s); PSNR on Y (dB); models: {', '.join(models)} and auto", flush=True)
    report = {}
    for dataset in args.sets:
        folder = str(BENCH / dataset)
        table: dict[str, dict[str, float]] = {m: {} for m in [*models, AUTO]}
        chosen: dict[str, dict[str, int]] = {}
        for kind in args.kinds:
            degrade = None if kind == "clean" else kind
            for m in models:
                table[m][kind] = evaluate.evaluate(lambda s, m=m: load_for_scale(m, s), [folder], [scale], degrade=degrade)[0].psnr
            result = evaluate.evaluate(lambda s: AutoModel(s), [folder], [scale], degrade=degrade)[0]
            table[AUTO][kind] = result.psnr
            chosen[kind] = dict(Counter(s.model for s in result.images))
            best = max(models, key=lambda m: table[m][kind])
            print(f"{dataset} {kind}: " + ", ".join(f"{m} {table[m][kind]:.3f}" for m in [*models, AUTO])
                  + f"; auto - best ({best}) {table[AUTO][kind] - table[best][kind]:+.3f}; chose {chosen[kind]}", flush=True)
        report[dataset] = {"psnr": table, "chosen": chosen}
    for dataset, data in report.items():
        table, chosen = data["psnr"], data["chosen"]
        print(f"\n{dataset} x{scale}\n\n| model | " + " | ".join(args.kinds) + " |")
        print("|---|" + "---|" * len(args.kinds))
        for m, row in table.items():
            cells = []
            for kind in args.kinds:
                top = max(table[x][kind] for x in models)
                cells.append(f"**{row[kind]:.2f}**" if m != AUTO and row[kind] == top else f"{row[kind]:.2f}")
            print(f"| {'**auto**' if m == AUTO else m} | " + " | ".join(cells) + " |")
        margins = [table[AUTO][k] - max(table[x][k] for x in models) for k in args.kinds]
        print("| auto - best model | " + " | ".join(f"{d:+.2f}" for d in margins) + " |")
        print("| auto chose | " + " | ".join(", ".join(f"{n} {c}" for n, c in sorted(chosen[k].items())) for k in args.kinds) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"scale": scale, "threads": args.threads, "sets": report}, indent=2))


if __name__ == "__main__":
    main()
