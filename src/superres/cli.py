"""The ``superres`` command line: thin; each subcommand parses, calls the library, prints.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments
and ``_run_<name>(args) -> int`` does the work; ``_COMMANDS`` lists them. A user mistake
is reported as one line on stderr with exit code 2 (usage) or 1 (failure), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from superres.errors import SuperresError


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(run=_run_models)


def _run_models(args) -> int:
    from superres.models.summary import format_models_table

    print(format_models_table())
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="score a model under the paper protocol (PSNR/SSIM on Y, border shaved)")
    p.add_argument("--model", "-m", default="bicubic", help="registry name (its shipped weights) or a checkpoint file")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders of HR images")
    p.add_argument("--lr-data", nargs="+", metavar="DIR", help="ready-made LR folders, one per --data folder (paired)")
    p.add_argument("--scale", "-s", nargs="+", type=int, default=[4], help="scales (default: 4)")
    p.add_argument("--per-image", action="store_true", help="a row per image as well")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.set_defaults(run=_run_eval)


def _run_eval(args) -> int:
    from superres import evaluate
    from superres.device import resolve_device
    from superres.models import load_for_scale

    device = resolve_device(args.device)
    errors: list[str] = []
    results = evaluate.evaluate(
        lambda s: load_for_scale(args.model, s).to(device),
        args.data,
        args.scale,
        lr_folders=args.lr_data,
        device=device,
        errors=errors,
    )
    output = {"table": lambda: evaluate.format_table(results, per_image=args.per_image), "json": lambda: evaluate.to_json(results), "csv": lambda: evaluate.to_csv(results)}
    print(output[args.format]())
    for message in errors:
        print(f"superres: skipped {message}", file=sys.stderr)
    return 1 if errors else 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (PyTorch Lightning)")
    p.add_argument("config", help="a YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. data.batch_size=32")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    from superres.training import load_config, train

    config = load_config(args.config, args.overrides)
    weights = train(config, resume=args.resume)
    print(f"wrote {weights}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a training run's final (EMA) weights as safetensors")
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", help="default: RUN_DIR/model.safetensors")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from superres.training import export_run

    print(f"wrote {export_run(args.run_dir, args.output)}")
    return 0


# (name, adder) in the order they appear in --help.
_COMMANDS = [
    _add_eval,
    _add_train,
    _add_export,
    _add_models,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="superres", description="Deep-learning single-image super-resolution.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SuperresError as exc:
        print(f"superres: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("superres: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
