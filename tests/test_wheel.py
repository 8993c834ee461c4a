"""The built wheel stands alone: installed (not editable) into a fresh virtual environment,
without the source tree or the test environment's packages, it upscales the bundled demo image
with its bundled weights, lists the models and serves the web page from its own static files.

By default the core wheel is tested, with the web app's extra added for the page, and the
core is checked to be lean (no Lightning, FastAPI, ONNX, PyAV or matplotlib) with a one-line
error naming the pip command for each missing part. ``SUPERRES_WHEEL_EXTRAS=all`` tests the
wheel installed with ``[all]`` instead (``.ci/run`` does both). pip takes PyTorch from its
configured index or find-links; nothing else is needed from outside this repository.
"""

from __future__ import annotations

import os
import socket
import re
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

import superres

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXTRAS = os.environ.get("SUPERRES_WHEEL_EXTRAS", "").strip()
OPTIONAL = ("lightning", "tensorboard", "fastapi", "uvicorn", "onnx", "onnxruntime", "av", "matplotlib", "yaml", "pydantic", "pydicom", "rasterio")


def _clean_env() -> dict[str, str]:
    """This process's environment without what would let the venv see the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(args, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)


def _check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """``python -m build``: an sdist and a wheel of this checkout."""
    pytest.importorskip("build", reason="python -m build needs the 'build' package: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("dist")
    _check(_run([sys.executable, "-m", "build", "--outdir", out, REPO], cwd=REPO))
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> dict[str, Path]:
    """A fresh virtual environment (no system site-packages) with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel-venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(root / "venv")
    bin_dir = root / "venv" / ("Scripts" if os.name == "nt" else "bin")
    requirement = f"{built['wheel']}[{EXTRAS}]" if EXTRAS else str(built["wheel"])
    started = time.perf_counter()
    # --no-compile: byte-compiling PyTorch's thousands of modules is most of pip's CPU time here,
    # and Python compiles what the test imports on first use anyway.
    _check(_run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-compile", requirement], cwd=root, timeout=1800))
    print(f"\nwheel {built['wheel'].name}: {built['wheel'].stat().st_size / 1e6:.2f} MB; "
          f"pip install {'[' + EXTRAS + ']' if EXTRAS else 'core'}: {time.perf_counter() - started:.0f} s")
    work = root / "work"
    work.mkdir()
    return {"bin": bin_dir, "work": work}


def test_the_wheel_carries_weights_static_files_and_the_demo(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for required in (
        "superres/assets/demo.png",
        "superres/models/weights/swiftrep_x4.safetensors",
        "superres/serve/static/index.html",
        "superres/serve/static/app.js",
        "superres/py.typed",  # its annotations are its users' too (PEP 561)
        "superres/serve/routes/upscale.py",
    ):
        assert required in names
    assert not any(name.startswith(("tests/", "docs/", "src/")) for name in names)
    with tarfile.open(built["sdist"]) as sdist_file:
        sdist = {Path(n).name for n in sdist_file.getnames()}
    assert {"pyproject.toml", "README.md", "demo.png"} <= sdist


def test_installed_wheel_runs_from_its_own_files(installed):
    bin_dir, work = installed["bin"], installed["work"]
    where = _check(_run([bin_dir / "python", "-c", "import superres; print(superres.__file__)"], cwd=work)).strip()
    assert Path(where).resolve().is_relative_to((bin_dir.parent).resolve()), where
    assert _check(_run([bin_dir / "superres", "--version"], cwd=work)).strip() == f"superres {superres.__version__}"

    _check(_run([bin_dir / "superres", "upscale"], cwd=work))
    from PIL import Image

    with Image.open(work / "superres-demo" / "demo_x4.png") as result:
        assert result.size == (768, 576)  # the bundled 192x144 demo, x4 by the bundled weights
    assert (work / "superres-demo" / "demo_x4_compare.png").is_file()

    listing = _check(_run([bin_dir / "superres", "models"], cwd=work)).splitlines()
    header = re.split(r"\s{2,}", listing[0].strip())
    swiftrep = re.split(r"\s{2,}", next(line for line in listing if line.startswith("swiftrep ")).strip())
    assert swiftrep[header.index("pretrained")] == "x2 x3 x4"  # the shipped weights, found inside the package


@pytest.mark.skipif(bool(EXTRAS), reason="the core's missing extras are checked on the core wheel only")
def test_core_is_lean_and_names_each_missing_extra(installed):
    bin_dir, work = installed["bin"], installed["work"]
    present = _check(_run([bin_dir / "python", "-c", f"import importlib.util as u; print(' '.join(m for m in {OPTIONAL!r} if u.find_spec(m)))"], cwd=work))
    assert present.strip() == ""
    (work / "clip.mp4").write_bytes(b"\x00" * 64)  # never opened: the missing extra is named first
    for args, extra in (
        (["serve"], "serve"),
        (["train", "recipe.yaml"], "train"),
        (["export-onnx", "fsrcnn", "-s", "2"], "onnx"),
        (["explain", "missing.png", "--box", "0,0,8,8"], "plot"),
        (["upscale", "clip.mp4"], "video"),
    ):
        result = _run([bin_dir / "superres", *args], cwd=work)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pip install 'superres[{extra}]'" in lines[0], result.stderr


def test_installed_wheel_serves_the_page(installed, built):
    bin_dir, work = installed["bin"], installed["work"]
    if not EXTRAS:
        _check(_run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-compile", f"{built['wheel']}[serve]"], cwd=work))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(bin_dir / "superres"), "serve", "--port", str(port)], cwd=work, env=_clean_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(base + "/", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not start in 120 s"
                time.sleep(0.5)
        assert page.status_code == 200 and "/static/app.js" in page.text
        script = httpx.get(base + "/static/app.js", timeout=10)
        assert script.status_code == 200 and len(script.content) > 1000
        models = httpx.get(base + "/v1/models", timeout=60).json()
        assert "swiftrep" in str(models)
    finally:
        server.terminate()
        server.wait(timeout=30)
