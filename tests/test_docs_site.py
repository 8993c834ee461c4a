"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing page
or a renamed function in the API reference fails it), with no network, and its generated
pages follow the code."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the docs build needs the docs extra: pip install -e '.[docs]'")
pytest.importorskip("mkdocstrings", reason="the docs build needs the docs extra: pip install -e '.[docs]'")

REPO = Path(__file__).resolve().parent.parent


def _hooks():
    spec = importlib.util.spec_from_file_location("superres_docs_hooks", REPO / "docs_tools" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mkdocs_build_is_strict_clean_and_local(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(REPO / "src"))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index.html", "reference/config/index.html", "reference/rest-api/index.html", "reference/api/index.html", "CHANGELOG/index.html"):
        assert (site / page).is_file(), page
    api = (site / "reference/api/index.html").read_text()
    assert "superres.inference.upscaler.Upscaler" in api and "Upscale one image" not in api
    # Every asset is the site's own: no page loads a script, style sheet, font or picture from elsewhere.
    for html in site.rglob("*.html"):
        text = html.read_text()
        for marker in ('src="http', "fonts.googleapis", "fonts.gstatic", 'rel="stylesheet" href="http'):
            assert marker not in text, f"{html.relative_to(site)} loads {marker}"


def test_config_reference_lists_every_key_with_its_default_and_comment():
    from superres.training.config import TrainConfig

    page = _hooks().config_reference()
    for section, model in TrainConfig.model_fields.items():
        assert f"| `{section}` |" in page
        annotation = model.annotation
        for key in getattr(annotation, "model_fields", {}):
            assert f"| `{section}.{key}` |" in page, f"{section}.{key}"
    assert "| `data.sampling` | `\"area\" \\| \"image\"` | `\"area\"` | Which image a patch comes from" in page
    assert "| `trainer.max_steps` | `int` | `10000` |" in page
    assert "| `data.degradations.second_order.sharpen_target` | `bool` | `false` | The paper trains on an unsharp-masked" in page


def test_field_comments_reads_the_comment_above_and_the_one_beside_a_field():
    hooks = _hooks()

    class Example:
        # Two lines above
        # belong to a.
        a: int = 1
        b: int = 2  # beside b
        c: int = 3

        def method(self):  # not a field
            pass

    assert hooks.field_comments(Example) == {"a": "Two lines above belong to a.", "b": "beside b"}


def test_rest_reference_comes_from_the_app():
    page = _hooks().rest_api_reference()
    from superres import __version__

    assert "| `POST` | `/v1/upscale` | Upscale one image |" in page
    assert f"app version\n{__version__}" in page or f"app version {__version__}" in page
    assert '"openapi": "3.1.0"' in page and "| `ensemble` | `boolean` | no | `false` |" in page
