"""Upscaling files in bulk, as ``superres upscale`` does: find the inputs, name the outputs,
run them one by one so that one bad file does not stop the rest, and draw comparisons.

Outputs are named ``<stem><suffix><ext>`` (``photo_x4.png``), in the output folder (keeping
the sub-folders of a folder input) or beside the input. An output that would replace an input
is refused; every write is atomic (a temporary file renamed into place).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from superres.errors import SuperresError
from superres.imaging.dicom import DICOM_EXTENSIONS, is_dicom
from superres.imaging.io import IMAGE_EXTENSIONS, ImageData, check_encodable, from_float, read_image, to_float, write_image
from superres.inference.lanes import Lanes
from superres.inference.scientific import file_kind, upscale_dicom_file, upscale_geotiff_file
from superres.inference.video import VIDEO_EXTENSIONS, is_video, upscale_video, video_output_suffix
from superres.options import OUTPUT_FORMATS, PNG_SUFFIX, TIFF_EXTENSIONS

if TYPE_CHECKING:
    from superres.inference.upscaler import Upscaler

__all__ = [
    "Job", "JobResult", "Manifest", "collect_inputs", "check_output_folder", "plan_jobs", "run_jobs", "wanted_name",
    "existing_outputs", "skipped_result", "expand_path_lists", "read_manifest", "summary", "compare_image", "OUTPUT_FORMATS",
]

#: DICOM files (also found without an extension, by their DICM marker) and GeoTIFFs (.tif with
#: geo tags) go through :mod:`superres.inference.scientific`, which keeps their metadata.
_KNOWN_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | DICOM_EXTENSIONS


@dataclass
class Job:
    """One input and the files it becomes."""

    source: Path
    output: Path
    compare: Path | None = None


def wanted_name(name: str) -> bool:
    """Whether a folder search takes a file by its name alone: not hidden, and with an image,
    video or DICOM extension. Hidden files include the temporary files of interrupted atomic
    writes. (Also the rule for the keys of a remote folder, :mod:`.ray_batch`.)"""
    return not name.startswith(".") and Path(name).suffix.lower() in _KNOWN_EXTENSIONS


def _wanted(path: Path) -> bool:
    # DICOM series are often files without an extension (IM0001): those are taken by their DICM marker.
    if path.name.startswith(".") or not path.is_file():
        return False
    return wanted_name(path.name) or _is_dicom(path)


def _is_dicom(path: Path) -> bool:
    # The marker is read only for a file without an extension: not for every photo of a folder.
    return path.suffix.lower() in DICOM_EXTENSIONS or (not path.suffix and is_dicom(path))


def _unsupported(path: Path) -> str | None:
    """Why a file a folder search met is not taken (one line), or None if it is taken or is
    hidden (system files such as .DS_Store, and our own interrupted writes, go unmentioned)."""
    if path.name.startswith(".") or not path.is_file() or _wanted(path):
        return None
    return f"'{path}': unsupported type ({path.suffix.lower() or 'no extension'})"


def _files_under(root: Path, depth: int | None = None) -> Iterator[Path]:
    """Every file under ``root`` (``depth`` folders down at most), in sorted order, following
    links to folders but entering each real folder once: a symlink cycle, or two links to
    one folder, ends instead of running forever (``glob``'s ``**`` does not stop)."""
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, left: int | None) -> Iterator[Path]:
        try:
            st = folder.stat()
            entries = sorted(folder.iterdir())
        except OSError:
            return
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        for entry in entries:
            if entry.is_dir():
                if left is None or left > 0:
                    yield from visit(entry, None if left is None else left - 1)
            elif entry.is_file():
                yield entry

    yield from visit(root, depth)


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether path ``parts`` match glob ``pattern`` parts (``**``: any number of folders;
    ``*`` and ``**`` do not match hidden names, as in the shell)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(parts[i:], rest) for i in range(len(parts) + 1) if not any(p.startswith(".") for p in parts[:i]))
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _matches(parts[1:], rest)


def _glob(pattern: str) -> list[Path]:
    """The files ``pattern`` matches, as ``glob.glob(pattern, recursive=True)`` would list
    them, but walked by :func:`_files_under`, so that a symlink cycle under a ``**`` ends."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root, rest = Path(*parts[:fixed]), parts[fixed:]
    depth = None if "**" in rest else len(rest) - 1
    return [p for p in _files_under(root, depth) if _matches(p.relative_to(root).parts, rest)]


def _ours(path: Path, output: Path | None, suffix: str | None) -> bool:
    """Whether ``path`` is an output of a run like this one: under the output folder and
    named with the output suffix (``photo_x4.png``)."""
    if output is None or not path.resolve().is_relative_to(output):
        return False
    return suffix is None or path.stem.endswith(suffix)


def collect_inputs(
    arguments: Sequence[str], *, exclude: str | os.PathLike | None = None, suffix: str | None = None,
    skipped: list[str] | None = None,
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """The files named by ``arguments`` (files, folders searched recursively, glob patterns),
    each with the path its output is named after (relative to the folder it was found in).

    Folders and globs yield only image and video files; a file named outright is taken
    whatever its extension (reading it will tell). Each real folder is searched once, so a
    symlink cycle ends. Outputs of an earlier run are left out of folder searches, so that
    a second run does not upscale them: everything under ``exclude`` (the output folder)
    when it lies inside the folder searched, and, when the output folder is the searched
    folder or holds it, the files there named with ``suffix``. Returns (inputs, errors),
    each error one line. Files of other types that a folder search meets are
    appended to ``skipped``, one line each saying why.
    """
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    seen: set[Path] = set()
    excluded = Path(exclude).resolve() if exclude is not None else None

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, relative))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            inside = excluded is not None and excluded != path.resolve() and excluded.is_relative_to(path.resolve())
            every = [p for p in _files_under(path) if not _ours(p, excluded, None if inside else suffix)]
            files = [p for p in every if _wanted(p)]
            if skipped is not None:
                skipped += filter(None, map(_unsupported, every))
            if not files:
                errors.append(f"'{argument}': no images or videos in this folder")
            for file in files:
                add(file, file.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif glob.has_magic(argument):
            files = [p for p in _glob(argument) if _wanted(p)]
            if not files:
                errors.append(f"'{argument}': no images or videos match")
            for file in files:
                add(file, Path(file.name))
        else:
            errors.append(f"'{argument}': no such file or folder")
    return found, errors


def check_output_folder(folder: str | os.PathLike) -> None:
    """Refuse, before any model loads, an output folder that is a file or that cannot be made
    or written in; tried for real, by making (and removing) a hidden folder where it will be,
    which also answers for read-only mounts and for root."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise SuperresError(f"output '{folder}' is a file, not a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SuperresError(f"cannot make output folder '{folder}': '{existing}' is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".superres-", dir=existing))
    except OSError as exc:
        raise SuperresError(f"cannot write output folder '{folder}': {exc.strerror} in '{existing}'") from None


def plan_jobs(
    inputs: Sequence[tuple[Path, Path]],
    *,
    suffix: str,
    output_dir: str | os.PathLike | None = None,
    image_format: str | None = None,
    compare: bool = False,
) -> tuple[list[Job], list[str]]:
    """Name the output (and comparison) of each input. An output that is one of the inputs,
    or that another input would also write, is refused. Returns (jobs, errors)."""
    if image_format is not None and image_format.lower() not in OUTPUT_FORMATS:
        raise SuperresError(f"unknown format {image_format!r} (use {', '.join(sorted(set(OUTPUT_FORMATS)))})")
    sources = {path.resolve(): path for path, _ in inputs}
    claimed: dict[Path, Path] = {}
    jobs, errors = [], []
    for source, relative in inputs:
        folder = Path(output_dir) / relative.parent if output_dir is not None else source.parent
        if is_video(source):
            extension = video_output_suffix(source)
        elif _is_dicom(source):
            extension = source.suffix.lower() or ".dcm"  # a DICOM result is DICOM, whatever --format says
        elif image_format is not None:
            extension = OUTPUT_FORMATS[image_format.lower()]
        else:
            extension = source.suffix.lower() if source.suffix.lower() in IMAGE_EXTENSIONS else PNG_SUFFIX
        stem = f"{relative.stem}{suffix}"
        job = Job(source, folder / f"{stem}{extension}")
        if compare and not is_video(source):
            job.compare = folder / f"{stem}_compare{PNG_SUFFIX}"
        problem = None
        for target in filter(None, (job.output, job.compare)):
            key = target.resolve()
            if key in sources:
                problem = f"'{source}': its output '{target}' is an input; refusing to overwrite it (use another -o or --suffix)"
            elif key in claimed:
                problem = f"'{source}': its output '{target}' would also be written for '{claimed[key]}'"
        if problem:
            errors.append(problem)
            continue
        for target in filter(None, (job.output, job.compare)):
            claimed[target.resolve()] = source
        jobs.append(job)
    return jobs, errors


@dataclass
class JobResult:
    """What became of one job: a manifest row and a line of the log.

    ``status`` is "done", "skipped" (its output existed and ``skip_existing`` was asked) or
    "failed" (``error`` says why, one line). ``megapixels`` are the input's (0 when unknown).
    """

    source: str
    output: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    detail: str = ""

    def row(self) -> dict:
        """The manifest row (JSON-ready)."""
        return {
            "input": self.source, "output": self.output, "status": self.status, "error": self.error,
            "seconds": round(self.seconds, 4), "megapixels": round(self.megapixels, 6),
        }

    def line(self) -> str:
        """The log line of a done or skipped job (a failure is reported with the others at the end)."""
        if self.status == "skipped":
            return f"skipped {self.output} (exists)"
        return f"wrote {self.output} ({self.detail}, {self.seconds:.1f} s)"


def existing_outputs(jobs: Sequence[Job]) -> set[int]:
    """The indices of ``jobs`` whose output is already there: the ones ``--skip-existing``
    leaves alone. Outputs are written atomically, so one that exists is complete."""
    return {i for i, job in enumerate(jobs) if Path(job.output).exists()}


def skipped_result(job: Job) -> JobResult:
    """The result of a job left alone because its output exists."""
    return JobResult(str(job.source), str(job.output), "skipped")


#: Images decoded ahead of the model, and results waiting to be encoded, at most: enough to
#: keep the model busy, few enough that a folder of large photos stays within memory.
_PREFETCH = 4


@dataclass
class _Decoded:
    job: Job
    start: float
    image: ImageData | None = None
    failure: str | None = None
    kind: str | None = None  # "video", "dicom" or "geotiff": run whole by _run_whole


def _failure(job: Job, exc: Exception) -> str:
    if isinstance(exc, SuperresError):
        # Errors of the readers name their file; those of the upscaler (a size over the
        # memory limit) know no file, and a line of the batch's failures must name one.
        message = str(exc)
        return message if str(job.source) in message or job.source.name in message else f"'{job.source}': {message}"
    return f"'{job.source}': {type(exc).__name__}: {' '.join(str(exc).split())}"


def _failed(job: Job, error: str, start: float | None = None, megapixels: float = 0.0) -> JobResult:
    seconds = 0.0 if start is None else time.perf_counter() - start
    return JobResult(str(job.source), str(job.output), "failed", error, seconds, megapixels)


def _megapixels(image: ImageData | None) -> float:
    return 0.0 if image is None else image.size[0] * image.size[1] / 1e6


def run_jobs(
    upscaler: Upscaler,
    jobs: Sequence[Job],
    *,
    quality: int = 95,
    skip_existing: bool = False,
    progress: bool = True,
    log: Callable[[str], object] = print,
    record: Callable[[JobResult], object] | None = None,
    cog: bool = False,
) -> list[str]:
    """Run ``jobs``; a failure is recorded and the next job runs. ``log`` gets a line per
    file, in the order of ``jobs``; ``record`` (a :class:`Manifest`'s ``write``, say) gets
    each job's :class:`JobResult`. Returns the failures, one line each. Every engine runs
    its files through this function (the Ray replicas too), so they write the same bytes.

    Images run as a pipeline: a thread decodes the next images and another encodes the
    previous results while the model runs (Pillow, imagecodecs and the model all release
    the GIL); each image goes through the model alone, so its bytes never depend on its
    neighbours or on timing. On a CPU, small images run in parallel lanes of one PyTorch
    thread each (:mod:`.lanes`), larger ones by themselves with every thread. Videos run
    one at a time, in their place, with their own pipeline (:func:`upscale_video`); so do
    DICOM files and GeoTIFFs, which keep their metadata (:mod:`.scientific`; ``cog`` writes
    GeoTIFF results Cloud-Optimised)."""
    failures: list[str] = []

    def done(result: JobResult, extra: Sequence[str] = ()) -> None:
        if record is not None:
            record(result)
        if result.status == "failed":
            failures.append(result.error)
            return
        log(result.line())
        for line in extra:
            log(line)

    existing = existing_outputs(jobs) if skip_existing else set()
    todo = []
    for i, job in enumerate(jobs):
        if i in existing:
            done(skipped_result(job))
        else:
            todo.append(job)
    with ThreadPoolExecutor(1, thread_name_prefix="superres-decode") as decoder, ThreadPoolExecutor(1, thread_name_prefix="superres-encode") as encoder, Lanes(upscaler.lane_count) as lanes:
        _Pipeline(upscaler, decoder, encoder, lanes, done, quality=quality, progress=progress, cog=cog, log=log).run(todo)
    return failures


class _Pipeline:
    """:func:`run_jobs`' images in flight: decoded ahead on one thread, upscaled in lanes or
    alone, encoded on another thread, and reported to ``done`` in the order of the jobs."""

    def __init__(
        self, upscaler: Upscaler, decoder: ThreadPoolExecutor, encoder: ThreadPoolExecutor, lanes: Lanes, done, *,
        quality: int, progress: bool, cog: bool, log: Callable[[str], object] | None = None,
    ):
        self.upscaler, self.decoder, self.encoder, self.lanes, self.done = upscaler, decoder, encoder, lanes, done
        self.quality, self.progress, self.cog, self.log = quality, progress, cog, log
        self.decoded: deque[Future] = deque()
        self.written: deque[tuple[_Decoded, Future]] = deque()
        self.ahead = max(_PREFETCH, 2 * lanes.count)

    def run(self, jobs: Sequence[Job]) -> None:
        upcoming = iter(jobs)
        self._refill(upcoming)
        while self.decoded:
            head = self.decoded.popleft().result()
            self._refill(upcoming)
            self._one(head)
        self._report(keep=0)

    def _refill(self, upcoming: Iterator[Job]) -> None:
        while len(self.decoded) < self.ahead:
            job = next(upcoming, None)
            if job is None:
                return
            self.decoded.append(self.decoder.submit(_decode, job))

    def _one(self, head: _Decoded) -> None:
        upscaler, lanes = self.upscaler, self.lanes
        if head.failure is not None:
            self._report(keep=0)
            self.done(_failed(head.job, head.failure, head.start))
            return
        if head.kind is not None:  # a video, DICOM or GeoTIFF: in its place, once the images before it are written
            self._report(keep=0)
            self.done(lanes.solo(_run_whole, upscaler, head, self.progress, self.cog, self.log).result())
            return
        # One image per model call: batching stills of one size would make an image's bytes
        # depend on which others were decoded in time to join it (a batched convolution
        # rounds differently in the last bit), so two runs, or two engines, would differ.
        # Small ones run in lanes (:mod:`.lanes`), side by side, each still alone.
        # -m auto: the model is chosen here, per file, so that the log can say which and why.
        try:
            engine, choice = upscaler.pick(head.image)
        except Exception as exc:  # a model that fails to load is this file's failure
            self.done(_failed(head.job, _failure(head.job, exc), head.start, _megapixels(head.image)))
            return
        if engine.takes_lane(head.image):
            upscaled = lanes.submit(engine.upscale_image_data, head.image)
        else:
            upscaled = lanes.solo(engine.upscale_image_data, head.image, progress=self.progress)
        self.written.append((head, self.encoder.submit(_encode, engine, head, upscaled, self.quality, choice)))
        self._report(keep=self.ahead)

    def _report(self, keep: int) -> None:
        """Report the written files in order: every one done, and more, waiting, until at
        most ``keep`` are left in flight."""
        while self.written and (len(self.written) > keep or self.written[0][1].done()):
            item, future = self.written.popleft()
            try:
                result, extra = future.result()
            except Exception as exc:  # a model or encoder failure is this file's, not the batch's
                self.done(_failed(item.job, _failure(item.job, exc), item.start, _megapixels(item.image)))
                continue
            self.done(result, extra)


def _decode(job: Job) -> _Decoded:
    start = time.perf_counter()
    kind = "video" if is_video(job.source) else file_kind(job.source)
    if kind is not None:
        return _Decoded(job, start, kind=kind)
    try:
        image = read_image(job.source)
        # An animation that its writer cannot take fails now, not after every frame is upscaled.
        check_encodable(image, job.output.suffix)
        return _Decoded(job, start, image=image)
    except Exception as exc:
        return _Decoded(job, start, failure=_failure(job, exc))


def _encode(upscaler: Upscaler, item: _Decoded, upscaling: Future, quality: int, choice=None) -> tuple[JobResult, list[str]]:
    job, image = item.job, item.image
    upscaled: ImageData = upscaling.result()  # the model's exception, if it raised, is this file's failure
    job.output.parent.mkdir(parents=True, exist_ok=True)
    write_image(job.output, upscaled, quality=quality)
    (h, w), (oh, ow) = image.size, upscaled.size
    detail = f"{w}x{h} -> {ow}x{oh}"
    if upscaled.animation is not None:
        detail += f", {len(upscaled.animation.durations)} frames"
    if choice is not None:
        detail += f", {choice.line()}"
    extra = []
    if job.compare is not None:
        label = f"{upscaler.name} {upscaler.output.label if upscaler.output else f'x{upscaler.scale}'}"
        write_image(job.compare, compare_image(image, upscaled, scale=upscaler.scale, label=label))
        extra.append(f"wrote {job.compare} (bicubic | {upscaler.name})")
    seconds = time.perf_counter() - item.start
    return JobResult(str(job.source), str(job.output), "done", None, seconds, _megapixels(image), detail), extra


def _run_whole(upscaler: Upscaler, item: _Decoded, progress: bool, cog: bool, log: Callable[[str], object] | None = None) -> JobResult:
    """A video, DICOM file or GeoTIFF, upscaled by its own path from file to file."""
    job, kind = item.job, item.kind
    start = time.perf_counter()
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dicom":
            detail = upscale_dicom_file(upscaler, job.source, job.output)
        elif kind == "geotiff":
            if job.output.suffix.lower() not in TIFF_EXTENSIONS:
                raise SuperresError(f"'{job.source}': a GeoTIFF is written as GeoTIFF (.tif), not {job.output.suffix}; drop --format")
            detail = upscale_geotiff_file(upscaler, job.source, job.output, cog=cog, log=log)
        else:
            result = upscale_video(upscaler, job.source, job.output, progress=progress)
            detail = f"{result.frames} frames, {result.size[1]}x{result.size[0]}, {result.video_codec}"
    except Exception as exc:
        return _failed(job, _failure(job, exc), start)
    return JobResult(str(job.source), str(job.output), "done", None, time.perf_counter() - start, 0.0, detail)


class Manifest:
    """A JSONL file with a row per job (:meth:`JobResult.row`), appended to as results come,
    one flushed line at a time, so that a run killed midway leaves the rows of what it
    finished. A rerun appends to it; a last line cut short by the kill is dropped first."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+b")
            self._drop_torn_line()
        except OSError as exc:
            raise SuperresError(f"cannot write manifest '{path}': {exc.strerror or exc}") from None

    def _drop_torn_line(self) -> None:
        size = self._file.seek(0, os.SEEK_END)
        start = max(0, size - 65536)  # a row is far shorter
        self._file.seek(start)
        tail = self._file.read()
        if tail and not tail.endswith(b"\n"):
            self._file.truncate(start + tail.rfind(b"\n") + 1)

    def write(self, result: JobResult) -> None:
        """Append ``result``'s row."""
        self._file.write((json.dumps(result.row(), ensure_ascii=False) + "\n").encode())
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The rows of a manifest, in order (a torn last line is left out)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def summary(results: Sequence[JobResult], seconds: float) -> str:
    """One line: how many done, skipped and failed, and the rate of the done ones
    (images and input megapixels per second of wall time)."""
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    megapixels = sum(r.megapixels for r in results if r.status == "done")
    rate = f"{counts['done'] / seconds:.2f} images/s, {megapixels / seconds:.3f} MP/s" if seconds > 0 else "-"
    return f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed in {seconds:.1f} s ({rate})"


#: Extensions of a file that lists inputs rather than being one.
PATH_LIST_EXTENSIONS = (".txt", ".parquet")


def expand_path_lists(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """``arguments`` with each list file (``.txt``: a path a line, blank lines and ``#``
    comments ignored; ``.parquet``: its ``path`` column, or its only column) replaced by the
    paths it holds; a relative path in a list is taken from the list's folder, a URI
    (``s3://...``) as it is. Returns (arguments, errors), each error one line."""
    expanded: list[str] = []
    errors: list[str] = []
    for argument in arguments:
        suffix = Path(argument).suffix.lower()
        if suffix not in PATH_LIST_EXTENSIONS or "://" in argument or not Path(argument).is_file():
            expanded.append(argument)
            continue
        try:
            entries = _parquet_paths(argument) if suffix == ".parquet" else _text_paths(argument)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            errors.append(f"'{argument}': cannot read the list of paths: {' '.join(str(exc).split())}")
            continue
        if not entries:
            errors.append(f"'{argument}': the list of paths is empty")
        base = Path(argument).parent
        expanded += [e if "://" in e or Path(e).is_absolute() else str(base / e) for e in entries]
    return expanded, errors


def _text_paths(path: str) -> list[str]:
    lines = (line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _parquet_paths(path: str) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading a Parquet list needs pyarrow (pip install 'superres[ray]')") from None
    table = pq.read_table(path)
    if "path" in table.column_names:
        column = table.column("path")
    elif table.num_columns == 1:
        column = table.column(0)
    else:
        raise ValueError(f"no 'path' column (columns: {', '.join(table.column_names)})")
    return [str(value) for value in column.to_pylist() if value]


def _display_rgb8(image: ImageData) -> np.ndarray:
    """8-bit RGB for looking at: grey widened, 16-bit rounded, alpha over a light checkerboard."""
    rgb = to_float(image.pixels)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    if image.alpha is not None:
        alpha = to_float(image.alpha)[..., None]
        y, x = np.indices(alpha.shape[:2])
        board = np.where(((y // 8 + x // 8) % 2 == 0)[..., None], 1.0, 0.8).astype(np.float32)
        rgb = rgb * alpha + board * (1 - alpha)
    return from_float(rgb, np.uint8)


def compare_image(original: ImageData, upscaled: ImageData, *, scale: int, label: str) -> ImageData:
    """``original`` upscaled by bicubic beside ``upscaled``, each under its label, as 8-bit RGB."""
    from PIL import Image, ImageDraw, ImageFont

    import torch

    from superres.imaging.resize import imresize_torch
    from superres.inference.tiling import bicubic_planes

    colour = bicubic_planes(to_float(original.pixels).transpose(2, 0, 1), scale)
    alpha = None if original.alpha is None else bicubic_planes(to_float(original.alpha)[None], scale)[0]
    if colour.shape[1:] != upscaled.size:  # an output size that is not ``scale`` x: bicubic straight to it
        colour = imresize_torch(torch.from_numpy(to_float(original.pixels).transpose(2, 0, 1).copy()), size=upscaled.size).numpy()
        if alpha is not None:
            alpha = imresize_torch(torch.from_numpy(to_float(original.alpha)[None].copy()), size=upscaled.size).numpy()[0]
        colour, alpha = np.clip(colour, 0, 1), None if alpha is None else np.clip(alpha, 0, 1)
    bicubic = ImageData(
        pixels=from_float(colour.transpose(1, 2, 0), np.uint8),
        alpha=None if alpha is None else from_float(alpha, np.uint8),
    )
    left, right = _display_rgb8(bicubic), _display_rgb8(upscaled)
    height, width = right.shape[:2]
    gap = 4
    text_size = max(12, min(48, width // 20))
    strip = text_size + text_size // 2
    canvas = Image.new("RGB", (2 * width + gap, height + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(left), (0, strip))
    canvas.paste(Image.fromarray(right), (width + gap, strip))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=text_size)
    for x, text in ((0, "bicubic"), (width + gap, label)):
        draw.text((x + text_size // 3, text_size // 4), text, fill=(0, 0, 0), font=font)
    return ImageData(pixels=np.asarray(canvas))
