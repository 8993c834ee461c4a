"""The ``superres`` command line: thin; each subcommand parses, calls the library, prints.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments
and ``_run_<name>(args) -> int`` does the work; ``_COMMANDS`` lists them. A user mistake
is reported as one line on stderr with exit code 2 (usage) or 1 (failure), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from superres.errors import SuperresError, printable
from superres.options import BACKENDS, DEFAULT_MODEL, DEFAULT_PHOTO_MODEL, DEFAULT_SCALE, DEFAULT_TILE_OVERLAP, FITS, IMAGE_FORMATS, PNG_SUFFIX, PRECISIONS


_DEMO_OUTPUT = "superres-demo"


def _add_upscale(sub) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images, videos, DICOM and GeoTIFF (files, folders, globs); with no INPUT, the bundled demo image",
        description="Upscale images and videos. With no INPUT, upscale the bundled demo image with the default "
        f"model into -o (default ./{_DEMO_OUTPUT}/) beside a bicubic comparison. By default (-m auto) each image gets "
        "the fidelity model that suits it, and the log says which and why; videos, DICOM and GeoTIFF get the clean flagship.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files, folders (searched recursively) or glob patterns")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default: beside each input)")
    p.add_argument("-s", "--scale", type=_factor, help="upscaling factor, any number above 1, e.g. 1.5 (default: the model file's own, else 4)")
    _add_size_arguments(p)
    p.add_argument(
        "-m", "--model", default=DEFAULT_PHOTO_MODEL,
        help="registry name (its shipped weights), a checkpoint file, or auto: per image, the clean (swiftrep), light (JPEG, "
        f"noise) or real-world (blurred) model, from its JPEG quality, noise and blur (default: {DEFAULT_PHOTO_MODEL})",
    )
    p.add_argument("--suffix", help="added to each output's name (default: _x<scale>, or _<size>: _1920x1080, _w2000, _h1080)")
    p.add_argument("--format", choices=[f.suffix[1:] for f in IMAGE_FORMATS], help="image output format (default: the input's; an animation stays animated as gif or webp)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100 (default: 95; WebP 100 is lossless)")
    p.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist alone")
    p.add_argument("--compare", action="store_true", help="also write <name>_compare.png: bicubic | model, labelled")
    p.add_argument("--tile", type=int, help="tile side in input pixels (default: from free memory; 0: never tile)")
    p.add_argument("--tile-overlap", type=int, help=f"input pixels shared by neighbouring tiles (default: {DEFAULT_TILE_OVERLAP})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="auto: fp16 on CUDA; on a CPU measured to run bf16 fast, bf16 for models it changes by 0.01 dB or less; else fp32",
    )
    p.add_argument(
        "--backend", default="torch", choices=BACKENDS,
        help="PyTorch, ONNX Runtime, ONNX Runtime on the shipped int8 graph (models it changes by 0.05 dB or less), "
        "or OpenVINO on the CPU (pip install 'superres[openvino]'; docs/SPEED.md)",
    )
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch or ONNX Runtime (default: one per core)")
    p.add_argument("--ensemble", action="store_true", help="self-ensemble: 8 flips and rotations averaged, a little sharper, about 8x the time")
    p.add_argument("--cog", action="store_true", help="write GeoTIFF results as Cloud-Optimised GeoTIFFs (with overviews)")
    p.add_argument(
        "--strength", type=float, metavar="S",
        help="a perceptual model (swiftrep-real-gan): 1 its full texture (default), 0 its fidelity partner's smooth result, between: a blend of the two networks",
    )
    p.add_argument("--fidelity", metavar="MODEL", help="with --strength: the fidelity model to blend with (default: the perceptual model's registered partner)")
    p.add_argument("--manifest", metavar="PATH", help="append a JSON line per file (input, output, status, error, seconds) to PATH")
    g = p.add_argument_group("Ray", "run the batch on a Ray cluster (pip install 'superres[ray]'); INPUT and -o may also be URIs (s3://, gs://, file://)")
    g.add_argument("--engine", choices=["local", "ray"], default="local", help="local: this process (default); ray: Ray Data replicas")
    g.add_argument("--ray-address", metavar="ADDRESS", help="a running cluster (e.g. 10.0.0.5:6379 or auto; default: RAY_ADDRESS, else a new one on this machine)")
    g.add_argument("--replicas", type=int, help="model replicas, one actor each (default: 1)")
    g.add_argument("--gpus-per-replica", type=float, help="GPUs each replica takes; 0.5 puts two on a GPU (default: 0, CPU)")
    p.set_defaults(run=_run_upscale)


def _factor(text: str) -> float:
    """--scale: a number above 1; a whole one stays an int (x4, not x4.0, in names)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 < value <= 64:
        raise argparse.ArgumentTypeError(f"must be above 1 (and at most 64), not {text}")
    return int(value) if value.is_integer() else value


def _add_size_arguments(p) -> None:
    p.add_argument("--size", metavar="WxH", help="exact output size, e.g. 1920x1080; see --fit for another aspect ratio")
    p.add_argument("--width", type=int, help="output width in pixels, the height in proportion")
    p.add_argument("--height", type=int, help="output height in pixels, the width in proportion")
    p.add_argument(
        "--fit", choices=FITS, default=FITS[0],
        help="a --size of another aspect ratio: cover (default: fill it, trimming the overflow evenly), "
        "contain (fit inside it, one side shorter), stretch (exactly it, aspect changed)",
    )


def _output_size(args):
    """(scale, width, height, label) from --scale/--size/--width/--height, checked before any model loads."""
    from superres.inference.sizing import OutputSize, parse_size

    width, height = parse_size(args.size) if args.size else (None, None)
    if args.size and (args.width is not None or args.height is not None):
        raise SuperresError("give --size or --width/--height, not both")
    width = args.width if width is None else width
    height = args.height if height is None else height
    if width is None and height is None:
        scale = _stated_scale(args.model) if args.scale is None else args.scale
        return scale, None, None, f"x{scale:g}"
    size = OutputSize(scale=args.scale, width=width, height=height, fit=args.fit)  # raises on a bad mix or value
    return None, width, height, size.label


def _stated_scale(model: str) -> int:
    """-s left out: the scale a model file states (a superres ONNX graph or safetensors file), else 4."""
    from pathlib import Path

    if not Path(model).is_file():
        return 4  # a registry name: its x4 model, as always
    from superres.models.pretrained import declared_scale

    return declared_scale(model) or 4


def _load_options(args, width, height) -> dict:
    """``superres.load``'s keyword options from upscale's arguments, for either engine."""
    return dict(
        width=width, height=height, fit=args.fit, ensemble=args.ensemble, strength=args.strength, fidelity=args.fidelity,
        device=args.device, tile=args.tile, tile_overlap=args.tile_overlap,
        precision=args.precision, backend=args.backend, threads=args.threads,
    )


def _run_upscale(args) -> int:
    from pathlib import Path

    from superres.inference import load
    from superres.extras import require
    from superres.inference.batch import Manifest, check_output_folder, collect_inputs, expand_path_lists, plan_jobs, run_jobs
    from superres.inference.video import is_video

    if args.engine == "ray":
        return _run_upscale_on_ray(args)
    for option in ("ray_address", "replicas", "gpus_per_replica"):
        if getattr(args, option) is not None:
            raise SuperresError(f"--{option.replace('_', '-')} is an option of --engine ray")
    uris = [a for a in [*args.inputs, args.output or ""] if "://" in a]
    if uris:
        raise SuperresError(f"'{uris[0]}': URIs are read and written by --engine ray (pip install 'superres[ray]')")
    demo = not args.inputs
    inputs = args.inputs or [str(Path(__file__).parent / "assets" / "demo.png")]
    output = args.output or (_DEMO_OUTPUT if demo else None)
    if output is not None:
        check_output_folder(output)
    scale, width, height, label = _output_size(args)
    suffix = f"_{label}" if args.suffix is None else args.suffix
    skipped: list[str] = []
    inputs, failures = expand_path_lists(inputs)
    found, missing = collect_inputs(inputs, exclude=output, suffix=suffix, skipped=skipped)
    failures += missing
    jobs, refused = plan_jobs(found, suffix=suffix, output_dir=output, image_format=args.format, compare=args.compare or demo)
    failures += refused
    if any(is_video(source) for source, _name in found):
        require("av", extra="video", purpose="video")  # one line before any work, not a failure per file
    if jobs:
        upscaler = load(args.model, scale, **_load_options(args, width, height))  # checks the options before it loads the model
        if output is not None:
            Path(output).mkdir(parents=True, exist_ok=True)
        manifest = Manifest(args.manifest) if args.manifest else None
        try:
            failures += run_jobs(
                upscaler, jobs, quality=args.quality, skip_existing=args.skip_existing,
                log=lambda line: print(printable(line)), record=manifest.write if manifest else None, cog=args.cog,
            )
        finally:
            if manifest is not None:
                manifest.close()
    for message in skipped:
        print(f"superres: skipped {printable(message)}", file=sys.stderr)
    for message in failures:
        print(f"superres: failed {printable(message)}", file=sys.stderr)
    if skipped or failures:
        print(f"superres: {len(skipped)} skipped, {len(failures)} failed (listed above)", file=sys.stderr)
    return 1 if failures or skipped or not jobs else 0


def _run_upscale_on_ray(args) -> int:
    """``upscale --engine ray``: the same outputs, made by Ray Data replicas; a summary line at the end."""
    import time

    from superres.inference.batch import Manifest, summary
    from superres.inference.ray_batch import require_ray, upscale_on_ray

    if not args.inputs:
        raise SuperresError("--engine ray needs INPUT (files, folders, globs, lists of paths or URIs)")
    if args.compare:
        raise SuperresError("--compare is not offered with --engine ray (run it on a few files without it)")
    require_ray()  # a missing extra is one line before anything is planned
    scale, width, height, label = _output_size(args)
    suffix = f"_{label}" if args.suffix is None else args.suffix
    manifest = Manifest(args.manifest) if args.manifest else None

    def report(result) -> None:
        if manifest is not None:
            manifest.write(result)
        if result.status != "failed":
            print(printable(result.line()), flush=True)

    start = time.perf_counter()
    try:
        results, plan = upscale_on_ray(
            args.inputs, args.output, model=args.model, scale=scale, suffix=suffix, image_format=args.format,
            load_options=_load_options(args, width, height), quality=args.quality, replicas=args.replicas or 1,
            gpus_per_replica=args.gpus_per_replica or 0, ray_address=args.ray_address, skip_existing=args.skip_existing,
            cog=args.cog, on_result=report,
        )
    finally:
        if manifest is not None:
            manifest.close()
    failures = plan.failures + [r.error for r in results if r.status == "failed"]
    for message in plan.skipped:
        print(f"superres: skipped {printable(message)}", file=sys.stderr)
    for message in failures:
        print(f"superres: failed {printable(message)}", file=sys.stderr)
    if plan.skipped or failures:
        print(f"superres: {len(plan.skipped)} skipped, {len(failures)} failed (listed above)", file=sys.stderr)
    print(f"superres: {summary(results, time.perf_counter() - start)}", file=sys.stderr)
    return 1 if failures or plan.skipped or not plan.jobs else 0


def _add_export_onnx(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a model to ONNX (dynamic height and width), checked against PyTorch; as export --format onnx")
    p.add_argument("model", help="registry name (its shipped weights) or a checkpoint file")
    p.add_argument("-s", "--scale", type=int, default=DEFAULT_SCALE, help=f"upscaling factor (default: {DEFAULT_SCALE})")
    p.add_argument("-o", "--output", help="default: <model>_x<scale>.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--fp16", action="store_true", help="float16 weights, input and output (half the file; checked against fp32)")
    p.set_defaults(run=_run_export_onnx)


def _export_name(model: str) -> str:
    from pathlib import Path

    return Path(model).stem if Path(model).suffix else model


def _run_export_onnx(args) -> int:
    from pathlib import Path

    from superres.inference.onnx import export_onnx, max_abs_difference
    from superres.models import load_for_scale, model_contract

    model = load_for_scale(args.model, args.scale)
    name = _export_name(args.model)
    output = Path(args.output or f"{name}_x{args.scale}.onnx")
    data = export_onnx(model, output, scale=args.scale, name=name, opset=args.opset, fp16=args.fp16)
    precision = ", fp16" if args.fp16 else ""
    print(f"wrote {printable(str(output))} ({len(data) / 1e6:.2f} MB, opset {args.opset}{precision}; max |ONNX - PyTorch| = {max_abs_difference(model, data):.1e})")
    contract = model_contract(model)
    print(f"input: (B, {contract.channels}, H, W), {contract.description or f'{contract.channels} channels'}")
    return 0


def _run_export_ncnn(args) -> int:
    from pathlib import Path

    from superres.inference.export_ncnn import export_ncnn
    from superres.models import load_for_scale

    model = load_for_scale(args.source, args.scale)
    name = _export_name(args.source)
    folder = Path(args.output or ".")
    param, weights = export_ncnn(model, folder, name=name, scale=args.scale)
    print(f"wrote {printable(str(param))} and {printable(weights.name)} ({weights.stat().st_size / 1e6:.2f} MB, fp16)")
    print(f"input blob 'data', output blob 'output': RGB in [0, 1], x{args.scale} (realesrgan-ncnn-vulkan: -n {param.stem} -s {args.scale}; docs/APPS.md)")
    return 0


def _add_explain(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="which input pixels a box of the result came from (Local Attribution Map, Gu and Dong 2021)",
        description="Attribute a box of the upscaled result to the input's pixels: integrated gradients of the box's "
        "edges and texture along a path from a blurred input to the real one. Writes the map over the input "
        "(<name>_<model>_x<scale>_lam.png) and its raw values (.npy), and prints the Diffusion Index (how widely the "
        "model draws on the input) and the share of attribution outside the box's own input area.",
    )
    p.add_argument("input", metavar="IMAGE", help="the low-resolution image that is upscaled")
    p.add_argument("--box", required=True, metavar="X,Y,W,H", help="the region of the result to explain, in output pixels")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"registry name (its shipped weights) or a checkpoint file (default: {DEFAULT_MODEL})")
    p.add_argument("-s", "--scale", type=int, default=DEFAULT_SCALE, help=f"upscaling factor (default: {DEFAULT_SCALE})")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default: beside the input)")
    p.add_argument("--steps", type=int, default=50, help="path steps, one forward and backward pass each (default: 50, the paper's)")
    p.add_argument("--sigma", type=float, default=1.2, help="blur of the baseline in input pixels (default: 1.2, the paper's)")
    p.add_argument("--no-crop", action="store_true", help="run the model on the whole image, not only the window that can reach the box")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps, auto")
    # One thread by default: the model runs on a small window (60x60 for SwiftRep x4), where a
    # second thread costs more in synchronisation than it gives, and on a loaded 2-core machine
    # it measured 5-15x slower per step (0.13 s with one thread, 0.7-2.0 s with two).
    p.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch (default: 1, fastest for the small windows explained)")
    p.set_defaults(run=_run_explain)


def _run_explain(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from superres.atomic import atomic_path
    from superres.attribution import explain, heatmap_overlay, parse_box
    from superres.extras import require
    from superres.imaging.io import ImageData, read_image, write_image

    require("matplotlib", extra="plot", purpose="the attribution heatmap")  # before the minutes of work, not after
    box = parse_box(args.box)  # a bad box fails before a model is loaded
    image = read_image(args.input)
    if args.threads:
        from superres.device import set_cpu_threads

        set_cpu_threads(args.threads)
    result = explain(
        args.model, image, box, scale=args.scale, steps=args.steps, sigma=args.sigma,
        crop=not args.no_crop, device=args.device, progress=True,
    )
    source = Path(args.input)
    folder = Path(args.output) if args.output else source.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{source.stem}_{result.model}_x{result.scale}_lam"
    picture = write_image(stem.with_suffix(PNG_SUFFIX), ImageData(pixels=heatmap_overlay(image, result)))
    values = stem.with_suffix(".npy")
    with atomic_path(values, suffix=".npy") as temp:  # like every output: whole or not at all
        np.save(temp, result.map.astype(np.float32))
    if args.json:
        print(json.dumps({**result.to_json(), "heatmap": str(picture), "values": str(values)}, indent=2))
        return 0
    x0, y0, x1, y1 = result.input_box
    print(f"wrote {printable(str(picture))} and {printable(str(values))} ({image.size[1]}x{image.size[0]} float32, the signed attribution per input pixel)")
    print(
        f"{result.model} x{result.scale}, box {box}: Diffusion Index {result.diffusion_index:.2f}; "
        f"{result.outside_share:.1%} of the attribution lies outside the box's input area "
        f"({x0},{y0} {x1 - x0}x{y1 - y0}); completeness error {result.completeness_error:.2%} "
        f"({result.steps} steps, {result.seconds:.1f} s)"
    )
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
    p.add_argument("--model", "-m", default="bicubic", help="registry name (its shipped weights), a checkpoint file, or auto (a model chosen per image)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders of HR images")
    p.add_argument("--lr-data", nargs="+", metavar="DIR", help="ready-made LR folders, one per --data folder (paired)")
    p.add_argument("--scale", "-s", nargs="+", type=int, default=[4], help="scales (default: 4)")
    p.add_argument("--degrade", metavar="PRESET", help="score on degraded LR inputs: jpegQ (e.g. jpeg40), noiseS (e.g. noise8) or real")
    p.add_argument("--niqe", action="store_true", help="also score each result's NIQE (no-reference; lower is more natural)")
    p.add_argument(
        "--no-reference", action="store_true",
        help="the folders hold photos with no ground truth: upscale them as they are and score NIQE only",
    )
    p.add_argument(
        "--lr-8bit", action="store_true",
        help="reduce the LR images to 8 bits before the model (as an 8-bit pipeline would) and score against the HR at its "
        "own depth; 16-bit images are otherwise scored in 16 bits (PSNR peak 65535)",
    )
    p.add_argument("--per-image", action="store_true", help="a row per image as well")
    p.add_argument("--ensemble", action="store_true", help="score the self-ensemble (8 flips and rotations averaged; about 8x the time), shown as x4+")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.set_defaults(run=_run_eval)


def _run_eval(args) -> int:
    from superres import evaluate
    from superres.data.degradations import check_preset
    from superres.metrics.niqe import require_niqe
    from superres.device import resolve_device
    from superres.inference.autopick import AUTO, AutoModel
    from superres.models import load_for_scale

    if args.degrade is not None:
        try:
            check_preset(args.degrade)
        except ValueError as exc:
            raise SuperresError(f"--degrade: {exc}") from None
    if args.degrade and args.lr_data:
        raise SuperresError("--degrade makes the LR images from the HR ones: it takes no --lr-data")
    if args.lr_8bit and (args.lr_data or args.no_reference):
        raise SuperresError("--lr-8bit reduces the LR images made from the HR ones: it takes neither --lr-data nor --no-reference")
    if args.no_reference and (args.degrade or args.lr_data):
        raise SuperresError("--no-reference scores the photos as they are: it takes neither --degrade nor --lr-data")
    if args.niqe or args.no_reference:
        require_niqe()  # before any model loads: a missing extra is one line
    device = resolve_device(args.device)
    errors: list[str] = []
    if args.no_reference:
        from superres.inference.upscaler import Upscaler, load

        def upscaler_for_scale(s: int) -> Upscaler:
            if args.model == AUTO:
                return load(AUTO, s, device=device, ensemble=args.ensemble)
            return Upscaler(load_for_scale(args.model, s), scale=s, name=args.model, device=device, ensemble=args.ensemble)

        results = evaluate.score_no_reference(
            upscaler_for_scale,
            args.data,
            args.scale,
            errors=errors,
        )
    else:
        results = evaluate.evaluate(
            lambda s: AutoModel(s, device=device) if args.model == AUTO else load_for_scale(args.model, s).to(device),
            args.data,
            args.scale,
            lr_folders=args.lr_data,
            device=device,
            errors=errors,
            degrade=args.degrade,
            with_niqe=args.niqe,
            ensemble=args.ensemble,
            lr_8bit=args.lr_8bit,
        )
    output = {"table": lambda: evaluate.format_table(results, per_image=args.per_image), "json": lambda: evaluate.to_json(results), "csv": lambda: evaluate.to_csv(results)}
    print(output[args.format]())
    for message in errors:
        print(f"superres: skipped {printable(message)}", file=sys.stderr)
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
    print(f"wrote {printable(str(weights))}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export", help="export a model as ncnn or ONNX files (--format), or a training run's final weights as safetensors",
        description="superres export MODEL -s S --format ncnn|onnx -o OUT writes a model for other runtimes "
        "(ncnn: OUT is a folder, getting MODEL-xS.param and .bin; onnx: OUT is the .onnx file). "
        "superres export RUN_DIR writes a training run's final (EMA) weights as safetensors.",
    )
    p.add_argument("source", metavar="MODEL_OR_RUN", help="registry name or checkpoint file; or a training run folder")
    p.add_argument("--format", choices=["safetensors", "onnx", "ncnn"], help="default: safetensors for a run folder; a model needs onnx or ncnn")
    p.add_argument("-s", "--scale", type=int, default=4, help="onnx, ncnn: upscaling factor (default: 4)")
    p.add_argument("-o", "--output", help="ncnn: folder (default: .); onnx: file (default: <model>_x<scale>.onnx); safetensors: default RUN_DIR/model.safetensors")
    p.add_argument("--fp16", action="store_true", help="onnx: float16 weights, input and output (ncnn files are fp16 always)")
    p.add_argument("--opset", type=int, default=17, help="onnx: ONNX opset (default: 17)")
    p.add_argument("--checkpoint", help="safetensors: a checkpoint the run kept (iter_0000800.ckpt, see trainer.keep_every) instead of the last")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from pathlib import Path

    fmt = args.format or ("safetensors" if Path(args.source).is_dir() else None)
    if fmt is None:
        from superres.models.registry import is_registered

        if not Path(args.source).exists() and not is_registered(args.source):
            raise SuperresError(f"{args.source!r} is neither a training run folder, a registered model nor a file (see 'superres models')")
        raise SuperresError(f"say which format to export {args.source!r} to: --format ncnn or --format onnx")
    if fmt != "onnx" and args.fp16:
        raise SuperresError("--fp16 is an option of --format onnx (ncnn files hold fp16 weights always)")
    if fmt != "safetensors" and args.checkpoint:
        raise SuperresError("--checkpoint is an option of exporting a training run (--format safetensors)")
    if fmt == "onnx":
        args.model = args.source
        return _run_export_onnx(args)
    if fmt == "ncnn":
        return _run_export_ncnn(args)
    from superres.training import export_run

    print(f"wrote {printable(str(export_run(args.source, args.output, checkpoint=args.checkpoint)))}")
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
    p.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="a name of this machine clients may address (IP addresses and localhost always work; --host NAME is added)",
    )
    p.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    from superres.serve import Settings, check_port, run  # first: without the serve extra, one line naming it

    from pydantic import ValidationError

    check_port(args.port)
    try:
        settings = Settings(
            device=args.device,
            workers=args.workers,
            queue_size=args.queue_size,
            max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
            weights_dirs=tuple(args.weights_dir),
            cors_origins=tuple(args.cors_origin),
            allowed_hosts=(*args.allowed_host, args.host),
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
    p.add_argument("--baseline", action="store_true",
                   help="run the config's own values first, so the search is judged against them in the same study")
    p.set_defaults(run=_run_tune)


def _run_tune(args) -> int:
    from superres.training.tune import tune

    result = tune(
        args.config, trials=args.trials, search=args.search, overrides=args.overrides, study=args.study,
        storage=args.storage, directory=args.directory, timeout=args.timeout, n_jobs=args.n_jobs,
        pruner=args.pruner, startup_trials=args.startup_trials, metric=args.metric, seed=args.seed, baseline=args.baseline,
    )
    print(result.table)
    print(", ".join(f"{n} {state}" for state, n in sorted(result.counts.items())))
    if result.best_config is not None:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
        print(f"best: trial {result.best_trial}, {result.best_value:.4f} ({params})")
        if result.baseline_value is not None:
            print(f"baseline (the config's own values): {result.baseline_value:.4f}; best - baseline = {result.best_value - result.baseline_value:+.4f}")
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
    _add_explain,
    _add_benchmark,
    _add_models,
    _add_serve,
]


def build_parser() -> argparse.ArgumentParser:
    from superres import __version__

    parser = argparse.ArgumentParser(prog="superres", description="Deep-learning single-image super-resolution.")
    parser.add_argument("--version", action="version", version=f"superres {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from superres.atomic import remove_on_signals

    args = build_parser().parse_args(argv)
    remove_on_signals()  # files are written by worker threads: their temporary files go on SIGTERM too
    try:
        return int(args.run(args) or 0)
    except SuperresError as exc:
        print(f"superres: error: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("superres: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
