"""The ``superres`` command line: thin; each subcommand parses, calls the library, prints.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments
and ``_run_<name>(args) -> int`` does the work; ``_COMMANDS`` lists them. A user mistake
is reported as one line on stderr with exit code 2 (usage) or 1 (failure), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from superres.errors import SuperresError


_DEMO_OUTPUT = "superres-demo"


def _add_upscale(sub) -> None:
    from superres.inference import DEFAULT_MODEL

    p = sub.add_parser(
        "upscale",
        help="upscale images and videos (files, folders, globs); with no INPUT, the bundled demo image",
        description="Upscale images and videos. With no INPUT, upscale the bundled demo image with the default "
        f"model into -o (default ./{_DEMO_OUTPUT}/) beside a bicubic comparison.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files, folders (searched recursively) or glob patterns")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default: beside each input)")
    p.add_argument("-s", "--scale", type=int, default=4, help="upscaling factor (default: 4)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"registry name (its shipped weights) or a checkpoint file (default: {DEFAULT_MODEL})")
    p.add_argument("--suffix", help="added to each output's name (default: _x<scale>)")
    p.add_argument("--format", choices=["png", "jpg", "webp", "tif", "bmp"], help="image output format (default: the input's)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100 (default: 95; WebP 100 is lossless)")
    p.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist alone")
    p.add_argument("--compare", action="store_true", help="also write <name>_compare.png: bicubic | model, labelled")
    p.add_argument("--tile", type=int, help="tile side in input pixels (default: from free memory; 0: never tile)")
    p.add_argument("--tile-overlap", type=int, help="input pixels shared by neighbouring tiles (default: 32)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"], help="auto: fp16 on CUDA, fp32 elsewhere")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"], help="run the model with PyTorch or ONNX Runtime")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch or ONNX Runtime (default: one per core)")
    p.set_defaults(run=_run_upscale)


def _run_upscale(args) -> int:
    from pathlib import Path

    from superres.inference import load
    from superres.inference.batch import collect_inputs, plan_jobs, run_jobs

    demo = not args.inputs
    inputs = args.inputs or [str(Path(__file__).parent / "assets" / "demo.png")]
    output = args.output or (_DEMO_OUTPUT if demo else None)
    found, failures = collect_inputs(inputs, exclude=output)
    suffix = f"_x{args.scale}" if args.suffix is None else args.suffix
    jobs, refused = plan_jobs(found, suffix=suffix, output_dir=output, image_format=args.format, compare=args.compare or demo)
    failures += refused
    if jobs:
        upscaler = load(
            args.model, args.scale, device=args.device, tile=args.tile, tile_overlap=args.tile_overlap,
            precision=args.precision, backend=args.backend, threads=args.threads,
        )
        if output is not None:
            Path(output).mkdir(parents=True, exist_ok=True)
        failures += run_jobs(upscaler, jobs, quality=args.quality, skip_existing=args.skip_existing)
    for message in failures:
        print(f"superres: failed {message}", file=sys.stderr)
    return 1 if failures or not jobs else 0


def _add_export_onnx(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a model to ONNX (dynamic height and width), checked against PyTorch")
    p.add_argument("model", help="registry name (its shipped weights) or a checkpoint file")
    p.add_argument("-s", "--scale", type=int, default=4, help="upscaling factor (default: 4)")
    p.add_argument("-o", "--output", help="default: <model>_x<scale>.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.set_defaults(run=_run_export_onnx)


def _run_export_onnx(args) -> int:
    from pathlib import Path

    from superres.inference.onnx import export_onnx, max_abs_difference
    from superres.models import load_for_scale, model_contract

    model = load_for_scale(args.model, args.scale)
    name = Path(args.model).stem if Path(args.model).suffix else args.model
    output = Path(args.output or f"{name}_x{args.scale}.onnx")
    data = export_onnx(model, output, scale=args.scale, name=name, opset=args.opset)
    print(f"wrote {output} ({len(data) / 1e6:.2f} MB, opset {args.opset}; max |ONNX - PyTorch| = {max_abs_difference(model, data):.1e})")
    contract = model_contract(model)
    print(f"input: (B, {contract.channels}, H, W), {contract.description or f'{contract.channels} channels'}")
    return 0


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
    p.add_argument(
        "--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
        help="override config keys, e.g. --set data.batch_size=32 trainer.devices=2 (repeatable)",
    )
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


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the web app (a page and a REST API) on this machine")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--workers", type=int, default=1, help="jobs that run at once (default: 1)")
    p.add_argument("--queue-size", type=int, default=4, help="jobs that may wait; more get 503 (default: 4)")
    p.add_argument("--max-upload-mb", type=float, default=25, help="largest upload in MiB (default: 25)")
    p.add_argument("--weights-dir", action="append", default=[], metavar="DIR", help="extra folder of NAME_xSCALE.safetensors")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow this origin to call the API")
    p.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    from pydantic import ValidationError

    from superres.serve import Settings, run

    try:
        settings = Settings(
            device=args.device,
            workers=args.workers,
            queue_size=args.queue_size,
            max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
            weights_dirs=tuple(args.weights_dir),
            cors_origins=tuple(args.cors_origin),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SuperresError(f"bad option {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"superres: warning: serving on {args.host}: anyone who can reach it can use this machine's CPU/GPU", file=sys.stderr)
    print(f"superres: serving on http://{args.host}:{args.port}/ (API docs at /docs); Ctrl+C stops", file=sys.stderr)
    run(settings, host=args.host, port=args.port)
    return 0


def _add_benchmark(sub) -> None:
    p = sub.add_parser("benchmark", help="score every shipped model (paper protocol) and write docs/MODEL_ZOO.md")
    p.add_argument("--data", nargs="+", metavar="DIR", help="benchmark HR folders (default: ../shared/datasets/benchmark/Set5 and Set14)")
    p.add_argument("-o", "--output", default="docs/MODEL_ZOO.md")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the speed column")
    p.add_argument("--no-update-weights", action="store_true", help="do not record the scores in the weight files")
    p.set_defaults(run=_run_benchmark)


def _run_benchmark(args) -> int:
    from superres.zoo_report import measure_zoo, shipped_models, write_report

    folders = args.data or [f"../shared/datasets/benchmark/{name}" for name in ("Set5", "Set14")]
    if not shipped_models():
        raise SuperresError("no shipped weights to benchmark (src/superres/models/weights is empty)")
    rows = measure_zoo(folders, threads=args.threads, update_metadata=not args.no_update_weights)
    command = "superres benchmark" + (f" --data {' '.join(args.data)}" if args.data else "")
    print(f"wrote {write_report(rows, folders, args.output, command=command, threads=args.threads)}")
    return 0


def _add_tune(sub) -> None:
    p = sub.add_parser(
        "tune", help="search a config's hyperparameters with Optuna (real training runs, pruning, resumable)",
        description="Run a hyperparameter search: each trial is a superres train run of CONFIG with sampled values, "
        "scored by its validation PSNR. Running the same command again continues the study.",
    )
    p.add_argument("config", help="a YAML config (see configs/); may hold a 'search:' section")
    p.add_argument("--trials", type=int, required=True, help="finished (complete or pruned) trials the study should hold")
    p.add_argument(
        "--search", action="extend", nargs="+", default=[], metavar="KEY=KIND:ARGS",
        help="searched keys: log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH, choice:A,B (e.g. optim.lr=log:1e-4:1e-2)",
    )
    p.add_argument(
        "--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
        help="override config keys for every trial, e.g. --set trainer.max_steps=2000 val.every_n_steps=250",
    )
    p.add_argument("--study", help="study name (default: the config's file name)")
    p.add_argument("--dir", dest="directory", metavar="DIR", help="study folder: trial runs, best.yaml, trials.md, PNGs (default: runs/tune/STUDY)")
    p.add_argument("--storage", metavar="URL", help="database URL shared by several processes or machines (default: SQLite DIR/study.db)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="start no new trial after this long")
    p.add_argument("--n-jobs", type=int, default=1, help="trials run at once on this machine, each in its own process (default: 1)")
    p.add_argument("--pruner", choices=["median", "halving", "none"], default="median", help="stops poor trials early (default: median)")
    p.add_argument("--startup-trials", type=int, default=5, help="random trials before the sampler models and the pruner prunes (default: 5)")
    p.add_argument("--metric", help="metrics.jsonl key to maximise (default: the first val folder's psnr, e.g. Set5/psnr)")
    p.add_argument("--seed", type=int, help="sampler seed, for a repeatable search")
    p.set_defaults(run=_run_tune)


def _run_tune(args) -> int:
    from superres.training.tune import tune

    result = tune(
        args.config, trials=args.trials, search=args.search, overrides=args.overrides, study=args.study,
        storage=args.storage, directory=args.directory, timeout=args.timeout, n_jobs=args.n_jobs,
        pruner=args.pruner, startup_trials=args.startup_trials, metric=args.metric, seed=args.seed,
    )
    print(result.table)
    print(", ".join(f"{n} {state}" for state, n in sorted(result.counts.items())))
    if result.best_config is not None:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
        print(f"best: trial {result.best_trial}, {result.best_value:.4f} ({params})")
        print(f"wrote {result.best_config}")
    for path in result.pictures:
        print(f"wrote {path}")
    for note in result.notes:
        print(f"superres: {note}", file=sys.stderr)
    return 0 if result.best_config is not None else 1


# (name, adder) in the order they appear in --help.
_COMMANDS = [
    _add_upscale,
    _add_eval,
    _add_train,
    _add_tune,
    _add_export,
    _add_export_onnx,
    _add_benchmark,
    _add_models,
    _add_serve,
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
