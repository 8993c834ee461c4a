import pytest

from superres.evaluate import evaluate
from superres.models import create, load, read_metadata, save
from superres.zoo_report import measure_zoo, shipped_models, write_report

SHIPPED = shipped_models()


def _tensor_bytes(path) -> bytes:
    data = path.read_bytes()
    return data[8 + int.from_bytes(data[:8], "little") :]  # after safetensors' length-prefixed JSON header


def test_zoo_report_scores_and_records_quality(tmp_path, set5):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = save(create("espcn", scale=2), tmp_path / "espcn_x2.safetensors", arch="espcn", scale=2, hyperparameters={})
    tensors = _tensor_bytes(path)
    rows = measure_zoo([set5], models=[("espcn", 2, path)], threads=1)
    assert _tensor_bytes(path) == tensors  # the scores go into the metadata; the weights stay byte for byte
    (row,) = rows
    expected = evaluate(lambda s: load(path), [set5], [2])[0]
    assert row.scores["Set5"] == pytest.approx((expected.psnr, expected.ssim))
    assert row.bicubic["Set5"][0] == pytest.approx(33.67, abs=0.02)
    assert row.parameters == sum(p.numel() for p in create("espcn", scale=2).parameters())
    assert row.output_mp_per_s > 0
    assert read_metadata(path)["quality"]["Set5"]["psnr"] == pytest.approx(expected.psnr, abs=1e-3)
    report = write_report(rows, [set5], tmp_path / "ZOO.md", command="superres benchmark", threads=1)
    text = report.read_text()
    assert "| espcn | clean | x2 |" in text and "36.83" in text  # ESPCN's published Set5 x2 beside ours


def test_recipe_column_lists_every_stage_first_to_last():
    from superres.models.checkpoint import training_stages
    from superres.zoo_report import _recipe

    training = {
        "config": {"output_dir": "runs/swiftrep_x2_stage2"},
        "iterations": 14000,
        "started_from": {"config": {"output_dir": "runs/swiftrep_x2"}, "iterations": 16000, "started_from": None},
    }
    assert training_stages(training) == [("swiftrep_x2", 16000), ("swiftrep_x2_stage2", 14000)]
    assert _recipe(training_stages(training)) == "swiftrep_x2 (16000) → swiftrep_x2_stage2 (14000)"
    assert _recipe(training_stages({})) == "–"


@pytest.mark.parametrize("name, scale, path", SHIPPED, ids=[f"{name}_x{scale}" for name, scale, _ in SHIPPED])
def test_every_shipped_model_still_scores_what_its_file_records(name, scale, path, set5):
    # A golden test: the Set5 PSNR that `superres benchmark` wrote into the weight file (and the
    # README and docs/MODEL_ZOO.md quote) is what the model gives under the protocol today.
    meta = read_metadata(path)
    assert "quality" in meta, f"{path.name}: run `superres benchmark` after shipping new weights"
    (score,) = evaluate(lambda s: load(path), [set5], [scale])
    assert score.psnr == pytest.approx(meta["quality"]["Set5"]["psnr"], abs=1e-3)
    assert score.ssim == pytest.approx(meta["quality"]["Set5"]["ssim"], abs=1e-4)
    assert meta["training"]["config"]["model"]["scale"] == scale  # trained by a recipe, at this scale
