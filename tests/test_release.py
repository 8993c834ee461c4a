"""Release plumbing: the version written once, the changelog that follows it, and the one
helper that turns a missing optional dependency into a one-line error naming its extra."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import superres
from superres.cli import main
from superres.extras import MissingExtraError, install_command, require, require_installed

REPO = Path(__file__).resolve().parent.parent


def test_version_is_written_once_and_the_changelog_leads_with_it(capsys):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", superres.__version__)
    headings = re.findall(r"^## (\d+\.\d+\.\d+)\b", (REPO / "CHANGELOG.md").read_text(), flags=re.M)
    assert headings and headings[0] == superres.__version__
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"superres {superres.__version__}"


def test_require_returns_the_module_or_names_the_pip_command():
    assert require("json", extra="train") is __import__("json")
    with pytest.raises(MissingExtraError) as error:
        require("superres_no_such_module", extra="video", purpose="video")
    message = str(error.value)
    assert message == "video needs the 'superres_no_such_module' package, which is not installed: pip install 'superres[video]'"
    assert isinstance(error.value, ImportError) and error.value.name == "superres_no_such_module"
    assert install_command("serve") == "pip install 'superres[serve]'"


def test_require_installed_looks_without_importing(tmp_path, monkeypatch):
    # A module that takes seconds to import (Ray Data) is checked now and imported later.
    (tmp_path / "superres_slow_probe.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    require_installed("superres_slow_probe", "json", extra="ray")
    assert "superres_slow_probe" not in sys.modules
    with pytest.raises(MissingExtraError, match=r"^--engine ray needs the 'superres_no_such_module' package, which is not installed: pip install 'superres\[ray\]'$"):
        require_installed("json", "superres_no_such_module", extra="ray", purpose="--engine ray")


def test_a_broken_dependency_of_an_installed_module_is_not_blamed_on_the_extra(tmp_path, monkeypatch):
    # An installed package whose own import fails on something else: that error is the useful one.
    (tmp_path / "superres_broken_pkg.py").write_text("import superres_missing_inner\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as error:
        require("superres_broken_pkg", extra="train")
    assert not isinstance(error.value, MissingExtraError) and error.value.name == "superres_missing_inner"


def test_every_extra_named_in_the_code_exists_and_all_gathers_them():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = set()
    for path in (REPO / "src" / "superres").rglob("*.py"):
        text = path.read_text()
        named |= set(re.findall(r"require(?:_installed)?\([^)]*extra=\"(\w+)\"", text)) | set(re.findall(r"install_command\(['\"](\w+)['\"]\)", text))
    assert named and named <= set(extras), named - set(extras)
    everything = re.fullmatch(r"superres\[([\w,]+)\]", extras["all"][0]).group(1).split(",")
    # spandrel pulls a CUDA torch; ray is a cluster runtime: both stay out of [all], in [test].
    assert named - {"spandrel", "ray"} <= set(everything)
    assert "superres[all,docs]" in extras["test"] and "superres[ray]" in extras["test"]


def test_import_superres_stays_cheap():
    # The package's top level imports no optional part (and not even PyTorch) until asked.
    code = "import sys, superres, superres.cli; print(' '.join(sorted(m for m in ('torch', 'lightning', 'fastapi', 'onnx', 'av', 'matplotlib', 'yaml', 'pydantic') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
