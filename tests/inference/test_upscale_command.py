"""``superres upscale`` over files, folders and globs: output names, no input ever overwritten,
one bad file not stopping the rest, --skip-existing, --compare and the demo run."""

from __future__ import annotations

import numpy as np
import pytest

from superres.cli import main
from superres.imaging import ImageData, read_image, write_image
from superres.inference import DEFAULT_MODEL
from superres.inference.batch import collect_inputs, plan_jobs
from superres.models import pretrained_path

BICUBIC_X2 = ["-m", "bicubic", "-s", "2"]


def _image(path, size=(12, 16), seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return write_image(path, ImageData(pixels=pixels))


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    _image(folder / "a.png")
    _image(folder / "b.jpg", seed=1)
    _image(folder / "trip" / "c.png", seed=2)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_recursion_into_an_output_folder(photos, tmp_path, capsys):
    out = tmp_path / "out"
    # notes.txt is skipped, and said so: in the summary and (1) in the exit code (issue 15).
    assert main(["upscale", str(photos), "-o", str(out), *BICUBIC_X2]) == 1
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a_x2.png", "b_x2.jpg", "trip/c_x2.png"]
    assert read_image(out / "trip" / "c_x2.png").size == (24, 32)
    captured = capsys.readouterr()
    assert captured.out.count("wrote") == 3
    assert "notes.txt': unsupported type (.txt)" in captured.err and "1 skipped, 0 failed" in captured.err


def test_outputs_beside_the_inputs_with_a_glob_a_format_and_a_suffix(photos, capsys):
    assert main(["upscale", str(photos / "*.png"), "--format", "webp", "--quality", "80", "--suffix=-big", *BICUBIC_X2]) == 0
    assert (photos / "a-big.webp").is_file() and not (photos / "b-big.webp").exists()
    assert read_image(photos / "a-big.webp").format == "WEBP"


def test_a_corrupt_file_does_not_stop_the_batch(photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "out"
    assert main(["upscale", str(photos), str(tmp_path / "missing.png"), "-o", str(out), *BICUBIC_X2]) == 1
    assert sorted(p.name for p in out.rglob("*.*")) == ["a_x2.png", "b_x2.jpg", "c_x2.png"]
    errors = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("superres: failed ")]
    assert len(errors) == 2
    assert any("broken.png" in line for line in errors) and any("missing.png" in line for line in errors)


def test_an_input_is_never_overwritten(photos, capsys):
    before = (photos / "a.png").read_bytes()
    # An empty suffix beside the input would write onto it.
    assert main(["upscale", str(photos / "a.png"), "--suffix", "", *BICUBIC_X2]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (photos / "a.png").read_bytes() == before
    # Nor when another input is exactly what an output would be called.
    _image(photos / "a_x2.png", seed=5)
    kept = (photos / "a_x2.png").read_bytes()
    assert main(["upscale", str(photos / "a.png"), str(photos / "a_x2.png"), *BICUBIC_X2]) == 1
    assert (photos / "a_x2.png").read_bytes() == kept
    assert (photos / "a_x2_x2.png").is_file()  # the other input still ran


def test_two_inputs_claiming_one_output_are_refused(tmp_path):
    _image(tmp_path / "x.png")
    _image(tmp_path / "x.bmp")
    inputs, errors = collect_inputs([str(tmp_path)])
    jobs, refused = plan_jobs(inputs, suffix="_x2", output_dir=tmp_path / "out", image_format="png")
    assert len(jobs) == 1 and len(refused) == 1 and "would also be written" in refused[0]


def test_skip_existing_and_the_output_folder_is_not_searched(photos, capsys):
    out = photos / "upscaled"  # inside the input folder: a second run must not upscale it
    (photos / "notes.txt").unlink()  # the exit codes below are then about the images alone
    assert main(["upscale", str(photos), "-o", str(out), *BICUBIC_X2]) == 0
    stamp = (out / "a_x2.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["upscale", str(photos), "-o", str(out), "--skip-existing", *BICUBIC_X2]) == 0
    output = capsys.readouterr().out
    assert output.count("skipped") == 3 and "wrote" not in output
    assert (out / "a_x2.png").stat().st_mtime_ns == stamp
    assert not list(out.rglob("*_x2_x2*"))


def test_compare_writes_bicubic_beside_the_model(photos, tmp_path):
    out = tmp_path / "out"
    assert main(["upscale", str(photos / "a.png"), "-o", str(out), "--compare", *BICUBIC_X2]) == 0
    compare = read_image(out / "a_x2_compare.png")
    upscaled = read_image(out / "a_x2.png")
    assert compare.size[1] == 2 * upscaled.size[1] + 4 and compare.size[0] > upscaled.size[0]  # two panels, a label strip


def test_transparency_and_16_bits_survive_the_command(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, (10, 12, 1), dtype=np.uint16)
    alpha = np.full((10, 12), 30000, dtype=np.uint16)
    write_image(tmp_path / "deep.png", ImageData(pixels=pixels, alpha=alpha))
    assert main(["upscale", str(tmp_path / "deep.png"), *BICUBIC_X2]) == 0
    out = read_image(tmp_path / "deep_x2.png")
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == (20, 24, 1) and np.all(out.alpha == 30000)


def test_the_demo_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if not pretrained_path(DEFAULT_MODEL, 4).is_file():
        assert main(["upscale"]) == 1
        assert f"default model '{DEFAULT_MODEL}' has no shipped weights" in capsys.readouterr().err
    assert main(["upscale", *BICUBIC_X2]) == 0
    assert sorted(p.name for p in (tmp_path / "superres-demo").iterdir()) == ["demo_x2.png", "demo_x2_compare.png"]
    assert read_image(tmp_path / "superres-demo" / "demo_x2.png").size == (288, 384)


def _looped(tmp_path):
    """A tree with a symlink cycle (loop/sub/back -> loop) and a second link to one folder."""
    loop = tmp_path / "loop"
    (loop / "sub").mkdir(parents=True)
    _image(loop / "top.png")
    _image(loop / "sub" / "deep.png", seed=1)
    (loop / "sub" / "back").symlink_to(loop, target_is_directory=True)
    (loop / "again").symlink_to(loop / "sub", target_is_directory=True)
    return loop


@pytest.mark.parametrize("form", ["glob", "folder"])
def test_a_symlink_cycle_is_followed_once_whatever_the_input_form(tmp_path, form):
    import subprocess
    import sys

    loop = _looped(tmp_path)
    argument = str(loop / "**" / "*.png") if form == "glob" else str(loop)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "superres", "upscale", argument, "-o", str(out), *BICUBIC_X2],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.rglob("*.png")) == ["deep_x2.png", "top_x2.png"]
    assert done.stdout.count("wrote") == 2  # each real file once, however many paths lead to it


def test_globs_match_as_the_shell_does(photos):
    from superres.inference.batch import collect_inputs

    (photos / ".hidden.png").write_bytes((photos / "a.png").read_bytes())
    names = lambda pattern: [p.relative_to(photos).as_posix() for p, _ in collect_inputs([str(photos / pattern)])[0]]  # noqa: E731
    assert names("*.png") == ["a.png"]  # not into sub-folders, not hidden files
    assert names("**/*.png") == ["a.png", "trip/c.png"]
    assert names("*/*.png") == ["trip/c.png"]
    assert names("[ab].*") == ["a.png", "b.jpg"]


@pytest.mark.parametrize("where", ["the input folder", "its parent"])
def test_an_output_folder_that_holds_the_inputs_skips_only_our_outputs(photos, capsys, where):
    out = photos if where == "the input folder" else photos.parent
    (photos / "notes.txt").unlink()  # reported as skipped since issue 15 (exit 1): this test is about our outputs
    for _ in range(2):  # the second run finds the first run's outputs beside the inputs
        assert main(["upscale", str(photos), "-o", str(out), *BICUBIC_X2]) == 0
    captured = capsys.readouterr()
    assert "no images or videos" not in captured.err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_x2*"))
    assert written == ["a_x2.png", "b_x2.jpg", "trip/c_x2.png"]  # no a_x2_x2.png
    assert captured.out.count("wrote") == 6
