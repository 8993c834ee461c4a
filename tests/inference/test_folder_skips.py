"""A folder run names every file it did not upscale and why, in its summary and its exit code."""

from __future__ import annotations

import numpy as np

from superres.cli import main
from superres.imaging import ImageData, write_image
from superres.inference.batch import collect_inputs


def _folder(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write_image(folder / "a.png", ImageData(pixels=np.zeros((6, 5, 3), np.uint8)))
    write_image(folder / "b.gif", ImageData(pixels=np.full((6, 5, 3), 90, np.uint8)))
    (folder / "notes.txt").write_text("not a picture")
    (folder / "sub" / "layers.psd").write_bytes(b"8BPS")
    (folder / "sub" / "README").write_text("no extension")
    (folder / ".DS_Store").write_bytes(b"\x00")
    (folder / "sub" / "broken.gif").write_bytes(b"GIF89a\x05\x00\x05\x00 cut short")
    return folder


def test_collect_inputs_lists_the_files_of_other_types(tmp_path):
    skipped: list[str] = []
    found, errors = collect_inputs([str(_folder(tmp_path))], skipped=skipped)
    assert sorted(p.name for p, _ in found) == ["a.png", "b.gif", "broken.gif"] and errors == []
    assert sorted(skipped) == sorted(
        [
            f"'{tmp_path / 'in' / 'notes.txt'}': unsupported type (.txt)",
            f"'{tmp_path / 'in' / 'sub' / 'README'}': unsupported type (no extension)",
            f"'{tmp_path / 'in' / 'sub' / 'layers.psd'}': unsupported type (.psd)",
        ]
    )


def test_the_command_reports_skipped_and_unreadable_files_and_fails(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "-m", "bicubic", "-s", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("superres: skipped") == 3 and "notes.txt': unsupported type (.txt)" in err
    assert "superres: failed cannot read" in err and "broken.gif" in err
    assert "superres: 3 skipped, 1 failed (listed above)" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file()) == ["a_x2.png", "b_x2.gif"]
