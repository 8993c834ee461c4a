"""Installed size of superres: the core and ``[all]``, each in a fresh virtual environment.

Builds the wheel (``python -m build``), installs it into a new venv (no system site-packages)
once as the core and once with ``[all]``, and measures each venv's site-packages on disk
(what pip put there, PyTorch included; pip itself subtracted). Writes
``docs/benchmarks/install_size.json`` (or ``--out``) and prints a table.

    python benchmarks/install_size.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _tree_bytes(folder: Path) -> int:
    """Bytes on disk of every regular file under ``folder`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                total += path.stat().st_blocks * 512
    return total


def _site_packages(env_dir: Path) -> Path:
    return next(env_dir.glob("lib/python*/site-packages"))


def install(wheel: Path, extras: str, env_dir: Path) -> dict:
    """A fresh venv with ``wheel[extras]``; its site-packages size less that of a bare venv's pip."""
    venv.EnvBuilder(with_pip=True).create(env_dir)
    site = _site_packages(env_dir)
    bare = _tree_bytes(site)
    requirement = f"{wheel}[{extras}]" if extras else str(wheel)
    started = time.perf_counter()
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", requirement], env=_env(), check=True)
    seconds = time.perf_counter() - started
    frozen = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "freeze"], env=_env(), check=True, capture_output=True, text=True).stdout
    torch_bytes = _tree_bytes(site / "torch") if (site / "torch").is_dir() else 0
    return {
        "extras": extras or "core",
        "installed_mb": round((_tree_bytes(site) - bare) / 1e6, 1),
        "torch_mb": round(torch_bytes / 1e6, 1),
        "packages": len([line for line in frozen.splitlines() if line and not line.startswith("superres")]),
        "pip_install_s": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "install_size.json")
    parser.add_argument("--extras", nargs="+", default=["", "all"], help="extras to measure ('' is the core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(REPO)], env=_env(), check=True, capture_output=True)
        wheel = next((tmp / "dist").glob("*.whl"))
        rows = [install(wheel, extras, tmp / f"venv-{extras or 'core'}") for extras in args.extras]
        result = {
            "wheel": wheel.name,
            "wheel_mb": round(wheel.stat().st_size / 1e6, 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "installs": rows,
            "command": "python benchmarks/install_size.py",
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['wheel']}: {result['wheel_mb']} MB")
    print(f"{'install':<8} {'on disk (MB)':>12} {'of which torch':>15} {'packages':>9} {'pip install (s)':>16}")
    for row in rows:
        print(f"{row['extras']:<8} {row['installed_mb']:>12} {row['torch_mb']:>15} {row['packages']:>9} {row['pip_install_s']:>16}")


if __name__ == "__main__":
    main()
