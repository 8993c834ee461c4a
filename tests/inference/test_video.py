"""Video: a tiny synthetic clip with an audio track keeps its frame count, frame rate,
timestamps and audio stream, and frames go through the model a bounded batch at a time."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from superres.cli import main
from superres.errors import SuperresError
from superres.inference import load
from superres.inference.video import is_video, upscale_video, video_output_suffix

FRAMES, WIDTH, HEIGHT, RATE = 12, 32, 24, Fraction(25)


def _make_clip(path, audio_codec="aac") -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=RATE)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = out.add_stream(audio_codec, rate=16000)
        audio.layout = "mono"
        for i in range(FRAMES):
            pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
            pixels[:, : (i + 1) * 2] = (200, 40, 10)  # a bar growing by 2 px a frame
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = int(16000 * FRAMES / RATE)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            chunk.sample_rate = 16000
            chunk.pts = start
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))


def _describe(path):
    """The video stream's rate and size, the audio streams' codec and rate, and the frame
    times, all read while the container is open (PyAV 18 refuses a closed container's streams)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        video = {"rate": stream.average_rate, "size": (stream.codec_context.width, stream.codec_context.height)}
        audio = [(a.codec_context.name, a.rate) for a in container.streams.audio]
        times = [float(frame.time) for frame in container.decode(video=0)]
    return video, audio, times


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    _make_clip(path)
    return path


def test_frames_rate_timestamps_and_audio_are_kept(clip, tmp_path):
    upscaler = load("bicubic", 2)
    calls = []
    original = upscaler.upscale_frames

    def spy(frames):
        calls.append(len(frames))
        return original(frames)

    upscaler.upscale_frames = spy
    result = upscale_video(upscaler, clip, tmp_path / "clip_x2.mp4", frames_per_batch=5, progress=False)
    assert result.frames == FRAMES and result.size == (2 * HEIGHT, 2 * WIDTH)
    assert max(calls) <= 5 and sum(calls) == FRAMES  # bounded batches, whatever the length

    src_video, src_audio, src_times = _describe(clip)
    video, audio, times = _describe(tmp_path / "clip_x2.mp4")
    assert len(times) == FRAMES and times == pytest.approx(src_times)
    assert video == {"rate": RATE, "size": (2 * WIDTH, 2 * HEIGHT)}
    assert audio == [("aac", 16000)]
    assert result.audio == ["aac"]
    # The audio is copied, not re-encoded: the same packets.
    with av.open(str(clip)) as a, av.open(str(tmp_path / "clip_x2.mp4")) as b:
        packets = lambda c: [bytes(p) for p in c.demux(audio=0) if p.size]  # noqa: E731
        assert packets(a) == packets(b)


def test_frames_are_upscaled_in_order(clip, tmp_path):
    upscale_video(load("bicubic", 2), clip, tmp_path / "out.mp4", progress=False)
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    widths = [int((frame[:, :, 0].mean(axis=0) > 100).sum()) for frame in frames]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_not_a_video_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SuperresError, match="cannot upscale"):
        upscale_video(load("bicubic", 2), bad, tmp_path / "out.mp4", progress=False)
    assert list(tmp_path.iterdir()) == [bad]  # no temporary file left behind


def test_video_names():
    assert is_video("a/b.MP4") and not is_video("a.png")
    assert video_output_suffix("x.webm") == ".mkv" and video_output_suffix("x.mov") == ".mov"


def test_upscale_command_on_a_video(clip, tmp_path, capsys):
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "out")]) == 0
    assert "12 frames" in capsys.readouterr().out
    _, audio, times = _describe(tmp_path / "out" / "clip_x2.mp4")
    assert len(times) == FRAMES and len(audio) == 1
