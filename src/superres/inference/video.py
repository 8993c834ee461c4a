"""Video: stream the frames of a file through an :class:`Upscaler` with PyAV, in bounded memory.

Frames are decoded, upscaled a batch at a time and encoded at once, so memory holds one batch
whatever the length. The output keeps the source's frame timestamps (so its frame rate,
variable or not, and its time base) and its audio streams, copied packet for packet (the
output container is of the source's kind, so it accepts their codecs). The video is encoded
with H.264 (libx264, CRF 18) when PyAV's bundled FFmpeg has it, else MPEG-4 Part 2.

Limits: the output is 8-bit 4:2:0 (the pixel format every player reads), so a frame with an
odd upscaled width or height loses its last column or row (an odd ``--width``/``--height``
asked for a video is refused instead); subtitle, data and attachment
streams and rotation metadata are not carried over; a WebM source is written as Matroska,
since WebM allows neither H.264 nor MPEG-4.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from superres.atomic import atomic_path
from superres.errors import SuperresError
from superres.extras import require

if TYPE_CHECKING:
    from superres.inference.upscaler import Upscaler

__all__ = ["VIDEO_EXTENSIONS", "VideoResult", "is_video", "upscale_video", "video_output_suffix"]

#: Lower-case extensions, with the dot, that ``superres upscale`` treats as video.
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"})

_FRAMES_PER_BATCH = 8
_CRF = 18


@dataclass
class VideoResult:
    """What :func:`upscale_video` wrote."""

    path: Path
    frames: int
    frame_rate: Fraction | None
    size: tuple[int, int]  # (height, width) of the output frames
    video_codec: str
    audio: list[str]  # the codecs of the audio streams copied


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video file extension."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def video_output_suffix(path: str | os.PathLike) -> str:
    """The extension an upscaled copy of the video ``path`` is written with."""
    suffix = Path(path).suffix.lower()
    return ".mkv" if suffix == ".webm" else suffix


def upscale_video(
    upscaler: Upscaler,
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    frames_per_batch: int = _FRAMES_PER_BATCH,
    crf: int = _CRF,
    progress: bool = True,
) -> VideoResult:
    """Upscale the first video stream of ``source`` into ``destination`` (written atomically,
    :mod:`superres.atomic`), copying the audio.

    ``frames_per_batch`` frames are upscaled together; ``progress`` shows a tqdm bar in
    frames per second. Raises :class:`SuperresError` for a file that cannot be decoded or
    written.
    """
    av = require("av", extra="video", purpose="video")

    source, destination = Path(source), Path(destination)
    if not destination.parent.is_dir():
        raise SuperresError(f"cannot write '{destination}': folder '{destination.parent}' does not exist")
    try:
        # The temporary name keeps the extension: PyAV picks the container format from it.
        with atomic_path(destination, suffix=f".tmp{destination.suffix}") as temp:
            with av.open(str(source)) as container:
                if not container.streams.video:
                    raise SuperresError(f"cannot read '{source}': no video stream")
                with av.open(str(temp), "w") as output:
                    result = _transcode(upscaler, container, output, source, frames_per_batch, crf, progress)
    except av.error.FFmpegError as exc:
        raise SuperresError(f"cannot upscale '{source}': {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise SuperresError(f"cannot upscale '{source}': {exc.strerror or exc}") from None
    result.path = destination
    return result


def _transcode(upscaler, container, output, source: Path, frames_per_batch: int, crf: int, progress: bool) -> VideoResult:
    av = require("av", extra="video", purpose="video")

    video_in = container.streams.video[0]
    video_in.thread_type = "AUTO"
    height, width = upscaler.output_size(video_in.codec_context.height, video_in.codec_context.width)
    output_size = getattr(upscaler, "output", None)
    asked = [] if output_size is None else [side for side in (output_size.width, output_size.height) if side is not None]
    if any(side % 2 for side in asked):
        # 4:2:0 halves the chroma both ways: an asked odd side could only come out one short.
        raise SuperresError(f"cannot upscale '{source}': a video's width and height must be even (4:2:0), not {output_size.label}")
    width, height = width // 2 * 2, height // 2 * 2
    rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)

    codec = "libx264" if "libx264" in av.codecs_available and "h264" in output.supported_codecs else "mpeg4"
    video_out = output.add_stream(codec, rate=rate)
    video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
    # Timestamps are carried from the source, so the encoder counts in the source's time base.
    video_out.codec_context.time_base = video_in.time_base
    video_out.time_base = video_in.time_base
    if codec == "libx264":
        video_out.options = {"crf": str(crf), "preset": "medium"}
    else:
        video_out.options = {"qscale": "2"}  # MPEG-4 Part 2 at near its best quality
        video_out.codec_context.flags |= av.codec.context.Flags.qscale

    audio = {}  # source audio stream -> output stream, packets copied as they are
    for stream in container.streams.audio:
        name = stream.codec_context.name
        if name not in output.supported_codecs:
            raise SuperresError(f"cannot upscale '{source}': its {name} audio cannot go into {output.format.name}")
        audio[stream] = output.add_stream_from_template(stream)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=video_in.frames or None, unit="frame", desc=source.name, leave=False)
    pending: list = []
    written = 0

    def flush() -> int:
        arrays = [frame.to_ndarray(format="rgb24") for frame in pending]
        upscaled = upscaler.upscale_frames(arrays)
        for frame, pixels in zip(pending, upscaled):
            out_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels[:height, :width]), format="rgb24")
            out_frame.pts = frame.pts
            out_frame.time_base = frame.time_base
            output.mux(video_out.encode(out_frame))
        if bar is not None:
            bar.update(len(pending))
        count = len(pending)
        pending.clear()
        return count

    try:
        next_pts = 0
        frame_ticks = 1 / (rate * video_in.time_base) if video_in.time_base else 1
        for packet in container.demux(video_in, *audio):
            if packet.stream is video_in:
                for frame in packet.decode():
                    if frame.pts is None:  # some AVI files: number the frames at the nominal rate
                        frame.pts = round(next_pts)
                    next_pts = frame.pts + frame_ticks
                    pending.append(frame)
                    if len(pending) >= frames_per_batch:
                        written += flush()
            elif packet.stream in audio and packet.dts is not None:  # dts None: the demuxer's final empty packet
                packet.stream = audio[packet.stream]
                output.mux(packet)
        written += flush()
        output.mux(video_out.encode(None))
    finally:
        if bar is not None:
            bar.close()
    audio_codecs = [stream.codec_context.name for stream in audio]
    return VideoResult(Path(), written, rate, (height, width), codec, audio_codecs)
