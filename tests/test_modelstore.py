"""Model files: checksums, and models re-trained on your own data taking over ($FACELIVE_MODELS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facelive import modelstore
from facelive.cli import main
from facelive.errors import ModelError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


@pytest.fixture
def own_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder with a re-thresholded CNN card and a stricter fusion, as the train
    commands would write it (files + SHA256SUMS)."""
    modelstore.write_bytes("cnn.onnx", modelstore.read_bytes("cnn.onnx"), tmp_path)
    card = modelstore.read_json("cnn.json")
    modelstore.write_json("cnn.json", {**card, "threshold": 0.999}, tmp_path)
    fusion = modelstore.read_json("fusion.json")
    for sub in fusion["subsets"]:
        sub["threshold"] = 0.999999
    modelstore.write_json("fusion.json", fusion, tmp_path)
    # empty = unset; registered with monkeypatch so that teardown also undoes `--models`
    monkeypatch.setenv(modelstore.MODELS_ENV, "")
    return tmp_path


def test_override_folder_takes_over_file_by_file(own_models, monkeypatch):
    from facelive.liveness.cnn import CNNTest
    from facelive.liveness.quality import QualityTest

    shipped = CNNTest().threshold
    monkeypatch.setenv(modelstore.MODELS_ENV, str(own_models))
    assert modelstore.model_dirs() == [own_models, modelstore.MODEL_DIR]
    assert modelstore.find_folder("cnn.onnx") == own_models
    assert modelstore.find_folder("quality.json") == modelstore.MODEL_DIR  # not overridden
    assert CNNTest().threshold == 0.999 != shipped
    assert QualityTest().threshold == pytest.approx(modelstore.read_json(
        "quality.json", modelstore.MODEL_DIR)["threshold"])


def test_override_files_are_checksum_verified(own_models, monkeypatch):
    from facelive.liveness.cnn import CNNTest

    (own_models / "cnn.json").write_text(json.dumps({"threshold": 0.1}))  # edited by hand
    monkeypatch.setenv(modelstore.MODELS_ENV, str(own_models))
    with pytest.raises(ModelError, match="checksum"):
        CNNTest()


def test_check_uses_the_models_option(own_models, capsys):
    assert main(["check", "--tests", "quality,cnn", "--format", "json", str(EXAMPLE)]) == 0
    shipped = json.loads(capsys.readouterr().out)
    assert main(["--models", str(own_models), "check", "--tests", "quality,cnn",
                 "--format", "json", str(EXAMPLE)]) == 0
    own = json.loads(capsys.readouterr().out)
    assert own["threshold"] == pytest.approx(0.999999) != shipped["threshold"]
    assert own["decision"] == "spoof"  # no P(live) reaches the stricter operating point
    assert own["tests"]["cnn"]["score"] == pytest.approx(shipped["tests"]["cnn"]["score"])


def test_models_option_must_be_a_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--models", str(tmp_path / "nope"), "check", str(EXAMPLE)])
    assert exc.value.code == 2 and "not a folder" in capsys.readouterr().err


def test_broken_cards_are_model_errors(tmp_path):
    from facelive.liveness.cnn import CNNTest

    modelstore.write_bytes("cnn.onnx", modelstore.read_bytes("cnn.onnx"), tmp_path)
    modelstore.write_bytes("cnn.json", b"{not json", tmp_path)  # checksum fine, content not
    with pytest.raises(ModelError, match="not valid JSON"):
        CNNTest(tmp_path / "cnn.onnx")
    card = modelstore.read_json("cnn.json")
    modelstore.write_json("cnn.json", {**card, "input_size": "big"}, tmp_path)
    with pytest.raises(ModelError, match="bad value"):
        CNNTest(tmp_path / "cnn.onnx")
    modelstore.write_json("cnn.json", [1, 2], tmp_path)
    with pytest.raises(ModelError, match="not a JSON object"):
        CNNTest(tmp_path / "cnn.onnx")
    (tmp_path / "SHA256SUMS").write_text("garbage\n")
    with pytest.raises(ModelError, match="malformed"):
        CNNTest(tmp_path / "cnn.onnx")
