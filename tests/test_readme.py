"""Every command in the README is exercised: the cheap ones run here, as written, on small
files made for them; each of the others names the test (or the CI step) that runs it, and
that test is checked to contain it. A command added to the README without either fails here,
as does a README over 200 lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()

# Commands run elsewhere: (file, strings that file must contain). Those that train, tune,
# serve or score whole benchmark sets take minutes or run forever; they are run there.
ELSEWHERE = {
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m pytest -q':
        (".ci/run", ['python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m pytest -q']),
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/superres upscale":
        ("tests/test_wheel.py", ['"pip", "install"', '/ "superres", "upscale"]']),
    "superres eval --model swiftrep --data Set5 Set14 --scale 2 3 4":
        ("tests/test_evaluate.py", ['main(["eval", "--model"', '"--scale", "2", "3", "4"', '"swiftrep"']),
    "superres eval -m swiftrep --data Set14 --degrade jpeg40 --niqe":
        ("tests/test_evaluate.py", ['"--degrade"', '"--niqe"']),
    "superres eval -m swiftrep --data my_photos/ --no-reference":
        ("tests/test_evaluate.py", ['"--no-reference"']),
    "superres upscale series/ scene.tif -m espcn -s 2":
        ("tests/inference/test_scientific_command.py", ['main(["upscale", "series/", "scene.tif", "-m", "espcn", "-s", "2"']),
    "superres serve":
        ("tests/test_wheel.py", ['"serve", "--port"']),
    "superres train configs/swiftrep_x2.yaml":
        ("tests/training/test_train.py", ['main(["train", str(config)])']),
    "superres train configs/swiftrep_x2.yaml --set data.batch_size=32":
        ("tests/training/test_tune.py", ['main(["train", str(result.best_config), "--set"']),
    "superres train configs/swiftrep_x2.yaml --resume":
        ("tests/training/test_train.py", ['"--resume"']),
    "superres export runs/swiftrep_x2":
        ("tests/training/test_safe_loading.py", ['"export"']),
    "superres upscale photos/ -o photos_x4/ --engine ray --manifest run.jsonl --skip-existing":
        ("tests/inference/test_ray_batch.py", ['"--engine", "ray"', '"--manifest"', '"--skip-existing"']),
    "superres tune configs/fsrcnn_x2.yaml --trials 20 --search optim.lr=log:1e-4:1e-2":
        ("tests/training/test_tune.py", ['main(["tune"', '"--trials"', '"--search", "optim.lr=log:1e-4:1e-2"']),
}


def readme_commands() -> list[str]:
    """Each command line of the README's bash blocks, without its trailing comment."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = re.split(r"\s+#\s", line.strip())[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_readme_is_short():
    assert len(README.splitlines()) < 200


def test_every_readme_command_runs_here_or_names_its_test():
    ran_here = {c for c in readme_commands() if c.startswith("superres ")} - set(ELSEWHERE)
    assert ran_here <= set(RUN_HERE), f"README commands neither run here nor elsewhere: {sorted(ran_here - set(RUN_HERE))}"
    for command in readme_commands():
        assert command in ELSEWHERE or command in RUN_HERE, command
    for command, (path, needles) in ELSEWHERE.items():
        text = (REPO / path).read_text()
        for needle in needles:
            assert needle in text, f"{path} no longer runs {command!r} (missing {needle!r})"


def test_readme_recipes_exist_and_validate():
    """The configs the README trains and tunes on are real recipes, and --set keys are real keys."""
    pytest.importorskip("lightning", reason="training needs the train extra: pip install -e '.[train]'")
    from superres.training.config import apply_overrides, load_config, read_config_mapping

    for command in readme_commands():
        words = shlex.split(command)
        if words[:2] in (["superres", "train"], ["superres", "tune"]):
            path = REPO / words[2]
            load_config(path)
            if "--set" in words:
                raw = apply_overrides(read_config_mapping(path), words[words.index("--set") + 1:])
                assert raw["data"]["batch_size"] == 32


def _image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    # Smooth content (a small image upscaled) so JPEG and the models see something photo-like.
    small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path)
    return path


def _gif(path: Path) -> Path:
    frames = [Image.fromarray(np.full((20, 24, 3), 60 * i, dtype=np.uint8)).convert("P") for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
    return path


def _clip(path: Path) -> Path:
    av = pytest.importorskip("av", reason="video needs the video extra: pip install -e '.[video]'")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, dtype=np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


# The commands run here: what each needs in the working folder, and what it must write.
RUN_HERE = {
    "superres upscale photo.jpg": (["photo.jpg"], ["photo_x4.jpg"]),
    "superres upscale photos/ -o out/ -s 2 --compare": (["photos/"], ["out/a_x2.png", "out/a_x2_compare.png", "out/sub/b_x2.png"]),
    "superres upscale clip.mp4 -o out/": (["clip.mp4"], ["out/clip_x4.mp4"]),
    "superres models": ([], []),
    "superres export-onnx swiftrep -s 4 -o swiftrep_x4.onnx": ([], ["swiftrep_x4.onnx"]),
    "superres --version": ([], []),
    "superres upscale frame.png -s 1.5": (["frame.png"], ["frame_x1.5.png"]),
    "superres upscale photo.jpg --size 3840x2160": (["photo.jpg"], ["photo_3840x2160.jpg"]),
    "superres upscale photo.jpg -m swiftrep-light": (["photo.jpg"], ["photo_x4.jpg"]),
    "superres upscale photo.jpg -m swiftrep-real": (["photo.jpg"], ["photo_x4.jpg"]),
    "superres upscale photo.jpg -m swiftrep-real-gan --strength 0.5": (["photo.jpg"], ["photo_x4.jpg"]),
    "superres upscale photo.jpg -m compact-real": (["photo.jpg"], ["photo_x4.jpg"]),
    "superres upscale photo.jpg -m realesrgan-x4plus": (["photo.jpg"], ["photo_x4.jpg"]),
    "superres export swiftrep -s 4 --format ncnn -o models/": ([], ["models/swiftrep-x4.param", "models/swiftrep-x4.bin"]),
    "superres upscale photo.png --ensemble": (["photo.png"], ["photo_x4.png"]),
    "superres upscale sprite.gif": (["sprite.gif"], ["sprite_x4.gif"]),
    "superres explain photo.png --box 504,504,16,16": (["photo.png"], ["photo_swiftrep_x4_lam.png", "photo_swiftrep_x4_lam.npy"]),
}

MAKERS = {
    "photo.jpg": lambda d: _image(d / "photo.jpg", 120, 68),
    "photo.png": lambda d: _image(d / "photo.png", 132, 132, seed=1),
    "frame.png": lambda d: _image(d / "frame.png", 40, 30, seed=2),
    "photos/": lambda d: ((d / "photos" / "sub").mkdir(parents=True), _image(d / "photos" / "a.png", 24, 20), _image(d / "photos" / "sub" / "b.png", 20, 24)),
    "sprite.gif": lambda d: _gif(d / "sprite.gif"),
    "clip.mp4": lambda d: _clip(d / "clip.mp4"),
}


@pytest.mark.parametrize("command", list(RUN_HERE))
def test_readme_command_runs_as_written(command, tmp_path, monkeypatch, capsys):
    needs, writes = RUN_HERE[command]
    assert command in readme_commands(), f"{command!r} is no longer in the README: drop it here"
    if "export-onnx" in command:
        pytest.importorskip("onnx", reason="export needs the onnx extra: pip install -e '.[onnx]'")
    if "explain" in command:
        pytest.importorskip("matplotlib", reason="the heatmap needs the plot extra: pip install -e '.[plot]'")
    monkeypatch.chdir(tmp_path)
    for need in needs:
        MAKERS[need](tmp_path)
    words = shlex.split(command)[1:]
    if words == ["--version"]:
        with pytest.raises(SystemExit) as exit_:
            main(words)
        assert exit_.value.code == 0
    else:
        assert main(words) == 0, capsys.readouterr().err
    for output in writes:
        assert (tmp_path / output).exists(), f"{command!r} did not write {output} (has {sorted(p.name for p in tmp_path.rglob('*'))})"
    if "--size 3840x2160" in command:
        with Image.open(tmp_path / "photo_3840x2160.jpg") as result:
            assert result.size == (3840, 2160)


def test_readme_python_runs_as_written():
    block = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    image = Image.fromarray(np.zeros((12, 10, 3), dtype=np.uint8))
    scope = {"image": image}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["big"].size == (40, 48)
