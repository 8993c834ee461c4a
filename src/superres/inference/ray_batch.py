"""Batch upscaling on Ray Data: ``superres upscale ... --engine ray``, for more files than one
process gets through, on a laptop or a cluster.

A thin adapter over :mod:`superres.inference.batch`: the inputs are found and their outputs
named as ``superres upscale`` names them (:func:`~.batch.collect_inputs`, :func:`~.batch.plan_jobs`),
and every file is upscaled by the same routine (:func:`~.batch.run_jobs`: read, upscale, write
atomically), so each output has the same bytes as the single-process one. What Ray adds:
the list of (input, output) paths, never the pixels, streams through ``map_batches`` into a
pool of replica actors, each of which loads the model once; the files are read, upscaled
(tiled, so memory stays bounded) and written inside the replicas, which send back only a
row of the manifest.

Inputs and outputs are local paths, or URIs of a file system pyarrow opens (``file://``,
``s3://``, ``gs://``, ...): a replica copies a remote input to a temporary local file, runs
the same routine and uploads the result (an object store shows an object whole or not at
all, so the upload is atomic too). ``ray`` and ``pyarrow`` are imported only here, and only
when a function needs them: ``pip install 'superres[ray]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

from superres.atomic import remove_leftovers
from superres.errors import SuperresError
from superres.inference.batch import (
    Job, JobResult, check_output_folder, collect_inputs, expand_path_lists, plan_jobs, run_jobs, skipped_result, wanted_name,
)

__all__ = ["RayPlan", "plan_ray_jobs", "run_on_ray", "upscale_on_ray", "require_ray"]

#: The most jobs handed to a replica at once. Each call is one run_jobs pipeline, which
#: starts with a decode and ends with an encode that nothing overlaps, and one Ray task.
#: 120 small images through one replica, in one driver: 4 per call took 21.9-25.9 s, 8 and
#: 16 20.2-20.6 s; but with 16 the first rows came back after 12.4 s (8: 6.2 s), so the
#: manifest and the progress lag far behind the files.
_JOBS_PER_CALL = 8

_RESULT_FIELDS = ("source", "output", "status", "error", "seconds", "megapixels", "detail")


def require_ray() -> None:
    """Raise a one-line :class:`~superres.extras.MissingExtraError` when the ``ray`` extra
    (Ray Data and pyarrow) is not installed. Looks without importing: Ray Data takes 1.5 s
    to import, which :func:`_connect` does beside the driver's own start."""
    from superres.extras import require_installed

    require_installed("ray", "pyarrow", extra="ray", purpose="--engine ray")


def is_uri(text: str) -> bool:
    """Whether ``text`` names a file system (``s3://``, ``file://``) rather than a local path."""
    return "://" in str(text)


def _open_uri(uri: str):
    """(pyarrow file system, path in it) for ``uri``; a one-line error if pyarrow cannot."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except (ValueError, OSError, ImportError) as exc:
        raise SuperresError(f"cannot open '{uri}': {' '.join(str(exc).split())}") from None


def _local(argument: str) -> str:
    """``argument`` as a local path if it is one or a ``file://`` URI, else unchanged."""
    if not is_uri(argument):
        return argument
    from pyarrow import fs

    filesystem, path = _open_uri(argument)
    return path if isinstance(filesystem, fs.LocalFileSystem) else argument


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0]


@dataclass
class RayPlan:
    """The jobs of a Ray run: ``jobs`` pairs (input, output), each a local path or a URI;
    ``failures`` and ``skipped`` are one-line reasons, as :func:`collect_inputs` gives them."""

    jobs: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _collect_remote(uri: str, exclude: str | None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """The files under a remote ``uri`` (a folder prefix, searched recursively, or one
    object), as (key, relative) pairs like :func:`collect_inputs`'s, the key being the path
    in the file system (``bucket/folder/photo.png``)."""
    from pyarrow import fs

    filesystem, root = _open_uri(uri)
    try:
        info = filesystem.get_file_info(root)
        if info.type == fs.FileType.File:
            return [(Path(root), Path(PurePosixPath(root).name))], []
        if info.type != fs.FileType.Directory:
            return [], [f"'{uri}': no such file or folder"]
        listing = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    except OSError as exc:
        return [], [f"'{uri}': {' '.join(str(exc).split())}"]
    keys = sorted(i.path for i in listing if i.type == fs.FileType.File and wanted_name(PurePosixPath(i.path).name))
    if exclude is not None:  # an earlier run's outputs under the folder searched
        keys = [k for k in keys if not (k + "/").startswith(exclude.rstrip("/") + "/")]
    if not keys:
        return [], [f"'{uri}': no images or videos in this folder"]
    base = PurePosixPath(root)
    return [(Path(key), Path(PurePosixPath(key).relative_to(base))) for key in keys], []


def plan_ray_jobs(
    arguments: Sequence[str],
    output: str | None,
    *,
    suffix: str,
    image_format: str | None = None,
) -> RayPlan:
    """Find the inputs named by ``arguments`` and name their outputs, as ``superres upscale``
    does (files, folders, globs, and ``.txt``/``.parquet`` lists of paths), with URIs besides.

    Local paths and ``file://`` URIs go through :func:`collect_inputs` and :func:`plan_jobs`
    unchanged; a remote URI (``s3://bucket/folder``) is listed through pyarrow and named by
    the same :func:`plan_jobs` (its keys stand in for paths). A remote input with no ``-o``
    is written beside itself, in its own bucket.
    """
    plan = RayPlan()
    arguments, plan.failures = expand_path_lists(arguments)
    output = None if output is None else _local(output)
    remote_output = output is not None and is_uri(output)
    output_key = _open_uri(output)[1] if remote_output else None

    local = [_local(a) for a in arguments if not is_uri(_local(a))]
    remote = [a for a in arguments if is_uri(_local(a))]
    if local:
        found, errors = collect_inputs(local, exclude=None if remote_output else output, suffix=suffix, skipped=plan.skipped)
        plan.failures += errors
        out_dir = output_key if remote_output else output
        jobs, refused = plan_jobs(found, suffix=suffix, output_dir=out_dir, image_format=image_format)
        plan.failures += refused
        scheme = _scheme(output) if remote_output else None
        plan.jobs += [(str(j.source), f"{scheme}://{j.output}" if scheme else str(j.output)) for j in jobs]
    for uri in remote:
        found, errors = _collect_remote(uri, output_key if remote_output and _scheme(output) == _scheme(uri) else None)
        plan.failures += errors
        jobs, refused = plan_jobs(found, suffix=suffix, output_dir=output_key if remote_output else output, image_format=image_format)
        plan.failures += refused
        out_scheme = _scheme(output) if remote_output else (None if output is not None else _scheme(uri))
        plan.jobs += [(f"{_scheme(uri)}://{j.source}", f"{out_scheme}://{j.output}" if out_scheme else str(j.output)) for j in jobs]
    return plan


def _exists(outputs: Sequence[str]) -> set[int]:
    """Indices of ``outputs`` (local paths or URIs) that exist: one listing call per file
    system for the remote ones."""
    from pyarrow import fs

    found = {i for i, o in enumerate(outputs) if not is_uri(o) and Path(o).exists()}
    remote: dict[str, list[int]] = {}
    for i, o in enumerate(outputs):
        if is_uri(o):
            remote.setdefault(_scheme(o), []).append(i)
    for indices in remote.values():
        filesystem, _ = _open_uri(outputs[indices[0]])
        infos = filesystem.get_file_info([_open_uri(outputs[i])[1] for i in indices])
        found |= {i for i, info in zip(indices, infos) if info.type == fs.FileType.File}
    return found


def _run_rows(upscaler, rows: Sequence[tuple[str, str]], quality: int, cog: bool = False) -> list[JobResult]:
    """Some jobs in a replica: :func:`run_jobs`, the single-process path's own function,
    with remote inputs fetched to, and remote outputs sent from, a private temporary folder."""
    results: list[JobResult] = []
    with tempfile.TemporaryDirectory(prefix="superres-ray-") as folder:
        jobs: list[Job] = []
        names: dict[str, tuple[str, str, str]] = {}  # local output -> (input, output, local input)
        for i, (source, output) in enumerate(rows):
            local_in = Path(folder) / str(i) / "in" / PurePosixPath(source).name if is_uri(source) else Path(source)
            local_out = Path(folder) / str(i) / "out" / PurePosixPath(output).name if is_uri(output) else Path(output)
            if is_uri(source):
                try:
                    local_in.parent.mkdir(parents=True)
                    filesystem, path = _open_uri(source)
                    with filesystem.open_input_stream(path) as stream:
                        local_in.write_bytes(stream.readall())
                except (OSError, SuperresError) as exc:
                    results.append(JobResult(source, output, "failed", f"'{source}': {' '.join(str(exc).split())}"))
                    continue
            jobs.append(Job(local_in, local_out))
            names[str(local_out)] = (source, output, str(local_in))
        local: list[JobResult] = []
        run_jobs(upscaler, jobs, quality=quality, progress=False, log=lambda line: None, record=local.append, cog=cog)
        for result in local:
            source, output, local_in = names[result.output]
            error = result.error
            if error is not None:
                error = error.replace(local_in, source).replace(result.output, output)
            elif result.status == "done" and is_uri(output):
                try:
                    filesystem, path = _open_uri(output)
                    with filesystem.open_output_stream(path) as stream:
                        stream.write(Path(result.output).read_bytes())
                except (OSError, SuperresError) as exc:
                    results.append(JobResult(source, output, "failed", f"cannot write '{output}': {' '.join(str(exc).split())}"))
                    continue
            results.append(JobResult(source, output, result.status, error, result.seconds, result.megapixels, result.detail))
    return results


def _niceness() -> int | None:
    """This process's niceness (None where the OS has none to tell)."""
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None


def _renice(niceness: int | None) -> None:
    """Run this replica at the job's priority (``niceness``, the driver's) where Ray started it
    lower (its workers default to 15, so anything else on a node, down to Ray's own daemons,
    came first). Raising a priority needs the right to (root or CAP_SYS_NICE); without it
    the replica keeps Ray's."""
    current = _niceness()
    if niceness is None or current is None or current <= niceness:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError:
        pass


class _Replica:
    """The ``map_batches`` UDF: one per actor, so the model loads once per replica."""

    def __init__(self, model: str, scale, options: dict, quality: int, cog: bool, niceness: int | None = None):
        _renice(niceness)  # first: importing torch and loading the model are most of a replica's start
        from superres.atomic import remove_on_signals
        from superres.inference.upscaler import load

        remove_on_signals()  # a replica stopped by SIGTERM removes the files it was writing

        self.upscaler = load(model, scale, **options)
        self.quality = quality
        self.cog = cog

    def __call__(self, batch: dict) -> dict:
        results = _run_rows(self.upscaler, [(str(s), str(o)) for s, o in zip(batch["source"], batch["output"])], self.quality, self.cog)
        # Empty strings, not None: a column of one type.
        return {name: [getattr(r, name) or ("" if name in ("error", "detail") else getattr(r, name)) for r in results] for name in _RESULT_FIELDS}


def _root_cause(exc: BaseException) -> str:
    """The line of a Ray error that says what went wrong (its messages hold whole remote
    tracebacks), with what to do when a replica cannot import superres."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and set(line.strip()) != {"^"}]
    causes = [line for line in lines if "Error:" in line and not line.startswith(("File ", "Traceback"))]
    cause = causes[-1] if causes else (lines[0] if lines else type(exc).__name__)
    if "No module named 'superres" in cause:
        cause += "; superres (with the same version) must be installed on every node of the cluster"
    return cause


#: Where a local Ray instance started by a job keeps its session: one folder per job, named so,
#: holding the driver's pid. Every process of that instance names the folder on its command
#: line, which is how the job finds them all to end them (and how a later job finds those of a
#: job whose driver was killed: a folder whose driver is gone).
_LOCAL_PREFIX = "superres-rayjob-"
_DRIVER_FILE = "driver.pid"
_REPLICA_RESTARTS = 3


def _local_session_root() -> Path:
    # Short: Ray's socket paths under it must stay within 108 characters.
    return Path("/tmp") if os.name == "posix" else Path(tempfile.gettempdir())


def _processes_of(folder: Path) -> list:
    """The live processes whose command line names ``folder`` (a local instance's session)."""
    import psutil

    needle = str(folder)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and any(needle in part for part in (proc.info["cmdline"] or ())):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _end_local_instance(folder: Path) -> None:
    """End every process left of the local instance in ``folder`` (after ``ray.shutdown()``, its
    agents; after a killed driver, all of them) and remove the folder."""
    import shutil

    import psutil

    processes = _processes_of(folder)
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(processes, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    shutil.rmtree(folder, ignore_errors=True)


def _reap_orphaned_instances() -> None:
    """End the local instances of earlier jobs whose driver is gone (killed, so that it could
    not end them). Only folders this module made are looked at."""
    import psutil

    for folder in _local_session_root().glob(f"{_LOCAL_PREFIX}*"):
        try:
            pid, started = (float(v) for v in (folder / _DRIVER_FILE).read_text().split())
        except (OSError, ValueError):
            continue
        try:
            alive = abs(psutil.Process(int(pid)).create_time() - started) < 1
        except psutil.Error:
            alive = False
        if not alive:
            _end_local_instance(folder)


def _connect(address: str | None) -> Path | bool:
    """Join the cluster at ``address`` (None: ``RAY_ADDRESS``, else a new one on this
    machine). Returns the session folder of a local instance this call started, which the
    caller ends with :func:`_disconnect`; True for a connection it started to a cluster;
    False when Ray was already connected. Imports Ray Data too: all of Ray's start-up, run
    beside the model check."""
    import psutil

    from superres.extras import require

    ray = require("ray", extra="ray", purpose="--engine ray")
    require("ray.data", extra="ray", purpose="--engine ray")

    if ray.is_initialized():
        return False
    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    folder = None
    if address is None and not os.environ.get("RAY_ADDRESS"):
        _reap_orphaned_instances()
        folder = Path(tempfile.mkdtemp(prefix=_LOCAL_PREFIX, dir=_local_session_root()))
        (folder / _DRIVER_FILE).write_text(f"{os.getpid()} {psutil.Process().create_time()}")
        options["_temp_dir"] = str(folder)
        if _niceness() is not None:
            # A new local instance: its workers (our replicas) run at this process's priority.
            # Ray renices workers to 15 by default, and on a machine doing anything else that
            # starved the replicas to an eighth of one process's speed (docs/RAY.md).
            options["_system_config"] = {"worker_niceness": _niceness()}
    logging.getLogger("ray").setLevel(logging.ERROR)  # before init too: its notices are not ours to print
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        if folder is not None:
            _end_local_instance(folder)
        raise SuperresError(f"cannot reach the Ray cluster at {address or 'this machine'}: {' '.join(str(exc).split())}") from None
    return folder or True


def _disconnect(started: Path | bool) -> None:
    """Undo :func:`_connect`: disconnect, and end every process of a local instance it started
    (``ray.shutdown()`` leaves its agent processes running)."""
    if not started:
        return
    import ray

    try:
        ray.shutdown()
    finally:
        if isinstance(started, Path):
            _end_local_instance(started)


def _check_replicas(replicas: int, gpus_per_replica: float) -> None:
    if not isinstance(replicas, int) or replicas < 1:
        raise SuperresError(f"--replicas must be a positive integer, got {replicas!r}")
    if gpus_per_replica < 0:
        raise SuperresError(f"--gpus-per-replica must be 0 or more, got {gpus_per_replica!r}")


def _check_model_and_connect(model: str, scale: float | None, options: dict, ray_address: str | None, connect: bool):
    """The model, loaded on the CPU, and what :func:`_connect` started (False when not ``connect``).

    The model is checked here, before the cluster is asked to run anything: a wrong name or
    option is one line, not an actor's traceback. The check (importing torch, loading the
    weights) runs in a thread while this one starts Ray (importing Ray Data, starting or
    joining the cluster: 2-5 s), which must stay in the thread that goes on to use it."""
    from superres.inference.upscaler import load

    with ThreadPoolExecutor(1, thread_name_prefix="superres-model-check") as pool:
        checking = pool.submit(load, model, scale, **{**options, "device": "cpu", "backend": "torch"})
        try:
            started = _connect(ray_address) if connect else False
        except BaseException:
            checking.result()  # a wrong model is the first thing to fix
            raise
        try:
            checked = checking.result()
        except BaseException:
            _disconnect(started)
            raise
    return checked, started


def _replica_dataset(
    todo: Sequence[tuple[str, str]], *, model: str, scale: float | None, options: dict, quality: int, cog: bool,
    replicas: int, gpus_per_replica: float,
):
    """The Ray Data pipeline that runs ``todo`` on ``replicas`` :class:`_Replica` actors, its
    rows being :data:`_RESULT_FIELDS`. On CPU, sets ``options['threads']`` to each replica's share."""
    import ray  # imported by _connect
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Ray Data logs a failed job's whole traceback before raising it; we report its cause in one line.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    if gpus_per_replica > 0:
        cpus = 1
    else:
        cpus = options.get("threads") or max(1, int(ray.cluster_resources().get("CPU", 1)) // replicas)
        options["threads"] = cpus
    # Up to _JOBS_PER_CALL jobs per call: run_jobs decodes the next and encodes the last
    # while the model runs, and the rows of a call come back together, so the manifest
    # stays a call behind the files; at least two calls per replica, so a small job
    # still spreads over all of them.
    rows = [{"source": s, "output": o} for s, o in todo]
    per_call = max(1, min(_JOBS_PER_CALL, -(-len(rows) // (2 * replicas))))
    dataset = ray.data.from_items(rows, override_num_blocks=min(-(-len(rows) // per_call), 4096))
    # Ray 2.5x warns that extra remote arguments (these two have no named parameter yet)
    # are deprecated; the warning is Ray's business, not the user's.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return dataset.map_batches(
            _Replica,
            batch_size=per_call,
            batch_format="numpy",
            concurrency=replicas,
            num_cpus=cpus,
            num_gpus=gpus_per_replica or None,
            # A replica that dies (killed, out of memory, its node lost) is restarted, and the
            # batch it held is run again, a bounded number of times: a file that kills every
            # replica it meets fails the job instead of cycling for ever. Its outputs are
            # written atomically, so a batch run twice writes the same complete files.
            max_restarts=_REPLICA_RESTARTS,
            max_task_retries=_REPLICA_RESTARTS,
            fn_constructor_kwargs=dict(model=model, scale=scale, options=options, quality=quality, cog=cog,
                                       niceness=_niceness()),
        )


def _row_result(row: dict) -> JobResult:
    """A row of :func:`_replica_dataset`'s output as a :class:`JobResult`."""
    return JobResult(
        source=row["source"], output=row["output"], status=row["status"], error=row["error"] or None,
        seconds=float(row["seconds"]), megapixels=float(row["megapixels"]), detail=row["detail"],
    )


def _end_job(started: Path | bool, todo: Sequence[tuple[str, str]]) -> None:
    _disconnect(started)  # also on Ctrl+C, and on SIGTERM, which ray.init makes a SystemExit
    # A replica killed while writing (its restart, or the end of a stopped job) could not
    # remove its temporary file; no replica of this job runs now.
    for _source, output in todo:
        if not is_uri(output):
            remove_leftovers(output)


def run_on_ray(
    jobs: Sequence[tuple[str, str]],
    *,
    model: str,
    scale: float | None = None,
    load_options: dict | None = None,
    quality: int = 95,
    replicas: int = 1,
    gpus_per_replica: float = 0,
    ray_address: str | None = None,
    skip_existing: bool = False,
    cog: bool = False,
    on_result: Callable[[JobResult], object] | None = None,
) -> list[JobResult]:
    """Upscale ``jobs`` ((input, output) pairs, from :func:`plan_ray_jobs`) on a Ray cluster
    with ``replicas`` model replicas, each ``superres.load(model, scale, **load_options)``
    (width, height, fit, strength, device, tile, precision, ...), given ``gpus_per_replica``
    GPUs (0: CPU; fractions share a GPU) and, on CPU, an equal share of the cluster's CPUs as
    its threads (or ``load_options['threads']``). Jobs whose output exists are skipped when
    ``skip_existing``; GeoTIFF results are Cloud-Optimised with ``cog``. ``on_result`` gets
    each result as it comes back (in completion order); all are returned. A bad file is a
    "failed" result, never an exception.
    """
    require_ray()
    _check_replicas(replicas, gpus_per_replica)
    options = {k: v for k, v in (load_options or {}).items() if v is not None}
    results: list[JobResult] = []

    def report(result: JobResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    every = list(jobs)
    existing = _exists([o for _, o in every]) if skip_existing and every else set()
    todo = [job for i, job in enumerate(every) if i not in existing]
    checked, started = _check_model_and_connect(model, scale, options, ray_address, connect=bool(todo))
    for i in sorted(existing):
        report(skipped_result(Job(every[i][0], every[i][1])))
    if not todo:
        return results
    if gpus_per_replica == 0 and options.get("precision", "auto") == "auto" and options.get("backend", "torch") == "torch":
        # "auto" depends on the machine (superres.device.bf16_is_fast): decided here once, so
        # that every replica of the job runs the same precision, whatever node it lands on.
        options["precision"] = checked.precision

    import ray  # imported by _connect

    try:
        dataset = _replica_dataset(todo, model=model, scale=scale, options=options, quality=quality, cog=cog,
                                   replicas=replicas, gpus_per_replica=gpus_per_replica)
        try:
            for row in dataset.iter_rows():
                report(_row_result(row))
        except ray.exceptions.RayError as exc:
            raise SuperresError(f"the Ray job stopped: {_root_cause(exc)} (rerun with --skip-existing to continue)") from None
    finally:
        _end_job(started, todo)
    return results


def upscale_on_ray(
    inputs: Sequence[str],
    output: str | None = None,
    *,
    model: str = "swiftrep",
    scale: float | None = 4,
    suffix: str | None = None,
    image_format: str | None = None,
    **run_options,
) -> tuple[list[JobResult], RayPlan]:
    """The whole job in one call: plan the outputs of ``inputs`` (paths, folders, globs,
    lists, URIs) into ``output`` and run them on Ray (:func:`run_on_ray`'s options).
    Returns the results and the plan (whose ``failures`` and ``skipped`` never ran)."""
    require_ray()
    label = f"x{scale:g}" if scale is not None else None
    if suffix is None:
        if label is None:
            raise SuperresError("give a suffix when the output is sized by width or height")
        suffix = f"_{label}"
    if output is not None and not is_uri(_local(output)):
        check_output_folder(_local(output))  # before a remote folder is listed, or a model loaded
    plan = plan_ray_jobs(inputs, output, suffix=suffix, image_format=image_format)
    results = run_on_ray(plan.jobs, model=model, scale=scale, **run_options) if plan.jobs else []
    return results, plan

