"""``facelive train niqe`` / ``biqi`` / ``cnn-threshold`` and the shared report/card module."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive import modelstore
from facelive.cli import main
from facelive.iqa import biqi_model, niqe_model
from facelive.iqa._samples import pristine_images
from facelive.training import report as rep

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_images() -> dict[str, np.ndarray]:
    """Two small clean images (enough for the fitting code, seconds to fit)."""
    imgs = pristine_images()
    return {n: cv2.resize(imgs[n], (320, 240), interpolation=cv2.INTER_AREA)
            for n in ("chelsea", "coffee")}


@pytest.fixture
def own_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A model folder the runtime reads first (``FACELIVE_MODELS``), caches cleared around."""
    folder = tmp_path / "models"
    monkeypatch.setenv(modelstore.MODELS_ENV, str(folder))
    niqe_model.load_model.cache_clear()
    biqi_model.load_model.cache_clear()
    yield folder
    niqe_model.load_model.cache_clear()
    biqi_model.load_model.cache_clear()


def _checksum_ok(folder: Path, name: str) -> bool:
    return modelstore.sha256_bytes((folder / name).read_bytes()) == \
        modelstore._read_sums(folder)[name]


def test_train_niqe_on_two_images(two_images, own_models: Path) -> None:
    from facelive.training.niqe import card_markdown, train_niqe

    report = train_niqe(own_models, images=two_images, log=lambda _: None)
    assert report["model"] == "niqe" and report["images"] == ["chelsea", "coffee"]
    assert report["n_patches"] == sum(r["kept"] for r in report["per_image"]) > 0
    assert all(r["scale"] == 1.0 for r in report["per_image"])  # 240 rows: only scale 1 fits
    assert report == rep.jsonable(report)
    assert _checksum_ok(own_models, niqe_model.MODEL_FILE)
    assert report["sha256"] == modelstore._read_sums(own_models)[niqe_model.MODEL_FILE]
    mu, cov = niqe_model.load_model()  # the runtime loader, reading the new folder first
    assert mu.shape == (36,) and cov.shape == (36, 36)
    np.testing.assert_allclose(mu, report["mu"])
    assert np.isfinite(niqe_model.niqe(two_images["chelsea"]))
    card = rep.render_card(card_markdown, report, "facelive train niqe --out X")
    assert "facelive train niqe --out X" in card and str(report["n_patches"]) in card


def test_train_biqi_on_two_images(two_images, own_models: Path) -> None:
    from facelive.training.biqi import LEVELS, card_markdown, train_biqi

    report = train_biqi(own_models, images=two_images, log=lambda _: None)
    per_image = 2 * (1 + sum(len(v) for v in LEVELS.values()))  # two bases, clean + distorted
    assert report["n_images"] == 2 and report["n_samples"] == 2 * per_image
    assert report["held_out"]["folds"] == 2  # at most one fold per image
    assert 0.0 <= report["held_out"]["type_accuracy"] <= 1.0
    assert _checksum_ok(own_models, biqi_model.MODEL_FILE)
    m = biqi_model.load_model()  # the runtime loader: format and shapes checked
    assert m["clf_coef"].shape == (len(biqi_model.CLASSES), biqi_model.N_FEATURES)
    assert modelstore.read_json(biqi_model.MODEL_FILE)["training"].startswith(
        "facelive train biqi")
    assert 0.0 <= biqi_model.biqi(two_images["chelsea"]) <= 100.0
    assert "| jpeg |" in rep.render_card(card_markdown, report, "facelive train biqi")


def test_train_biqi_skips_the_check_with_one_image(two_images, tmp_path: Path) -> None:
    from facelive.training.biqi import train_biqi

    report = train_biqi(tmp_path, images={"chelsea": two_images["chelsea"]}, log=lambda _: None)
    assert report["held_out"] is None and report["n_images"] == 1


def test_facelive_train_niqe_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "models"
    rc = main(["train", "niqe", "--out", str(out), "--report", str(tmp_path / "r.json"),
               "--card", str(tmp_path / "card.md")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_patches"] == 517 and report["file"] == str(out / niqe_model.MODEL_FILE)
    new = modelstore.read_npz(niqe_model.MODEL_FILE, out)  # checksum verified
    shipped = modelstore.read_npz(niqe_model.MODEL_FILE)
    np.testing.assert_allclose(new["mu"], shipped["mu"], rtol=1e-9)
    assert (tmp_path / "card.md").read_text().startswith("# Model card: NIQE")
    printed = capsys.readouterr().out
    assert f"report: {tmp_path / 'r.json'}" in printed
    assert f"card: {tmp_path / 'card.md'}" in printed


def test_out_dir_alias_is_kept(tmp_path: Path) -> None:
    from facelive.cli import build_parser

    args = build_parser().parse_args(["train", "biqi", "--out-dir", str(tmp_path)])
    assert args.out == tmp_path and args.what == "biqi"


def test_every_shipped_model_has_a_train_command() -> None:
    from facelive.cli import build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    commands = set(train._subparsers._group_actions[0].choices)
    assert {"quality", "cnn", "cnn-threshold", "cnn-int8", "probe", "face3d", "fusion", "niqe",
            "biqi", "minifas"} <= commands
    shipped = {f.name for f in modelstore.MODEL_DIR.iterdir()} - {"SHA256SUMS"}
    # cnn-int8 quantises the float CNN (cnn_fp32.*, from `train cnn`, threshold from
    # `train cnn-threshold`) into the shipped default cnn.onnx/cnn.json
    makers = {"quality.json": "quality", "cnn.onnx": "cnn-int8", "cnn.json": "cnn-int8",
              "cnn_fp32.onnx": "cnn", "cnn_fp32.json": "cnn-threshold",
              "probe.onnx": "probe", "probe.json": "probe", "face3d.onnx": "face3d",
              "face3d.json": "face3d", "fusion.json": "fusion",
              "niqe_pristine.npz": "niqe", "biqi.json": "biqi",
              # installed from upstream, not trained: graph, card, licence
              "minifas.onnx": "minifas", "minifas.json": "minifas", "minifas.LICENSE": "minifas"}
    assert shipped <= set(makers)
    assert not (REPO / "scripts").exists()


def test_report_module_writes_report_and_card(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    report = {"x": np.float32(0.5), "a": np.arange(3), "p": tmp_path}

    def template(r: dict, command: str) -> str:
        return f"# card\n\nx = {r['x']:.2f}\n"

    rc = rep.finish(report, report_path=tmp_path / "r" / "report.json", template=template,
                    card_path=tmp_path / "c" / "card.md", summary={"x": report["x"]},
                    command="facelive train thing --flag 'a b'")
    assert rc == 0
    assert json.loads((tmp_path / "r" / "report.json").read_text()) == {
        "x": 0.5, "a": [0, 1, 2], "p": str(tmp_path)}
    card = (tmp_path / "c" / "card.md").read_text()
    assert card.startswith("# card") and "    facelive train thing --flag 'a b'\n" in card
    assert json.loads(capsys.readouterr().out.split("report:")[0]) == {"x": 0.5}
    assert rep.command_line(["train", "niqe", "--out", "a b"]) == "facelive train niqe --out 'a b'"
    with pytest.raises(ValueError):
        rep.finish({}, report_path=None, card_path=tmp_path / "x.md")


def test_cnn_threshold_writes_the_eer_point(tmp_path: Path) -> None:
    from facelive.datasets import Sample
    from facelive.imageio import load_image
    from facelive.liveness.cnn import CNNTest
    from facelive.training.cnn.threshold import card_markdown, train_cnn_threshold

    face = load_image(REPO / "examples" / "astronaut.jpg")
    redone = cv2.flip(cv2.convertScaleAbs(face, alpha=0.6, beta=40), 1)  # still a face
    grey = np.full((240, 320, 3), 128, np.uint8)  # no face: counts as rejected

    def sample(key: str, label: str, img: np.ndarray) -> Sample:
        return Sample(key, label, None if label == "live" else "print", "s1", key, "devel",
                      loader=lambda: img)

    samples = [sample("live", "live", face), sample("redone", "spoof", redone),
               sample("grey", "spoof", grey)]
    before = modelstore.model_path("cnn.json").read_bytes()
    report = train_cnn_threshold(samples=samples, out_dir=tmp_path, progress=False)
    assert modelstore.model_path("cnn.json").read_bytes() == before  # shipped card untouched
    assert report["ra_devel"]["no_face"] == 1
    assert report["threshold"] == round(report["ra_devel"]["threshold"], 6)
    test = CNNTest(tmp_path / "cnn.onnx")  # both files checksum-verified in the new folder
    assert test.threshold == report["threshold"]
    assert report["previous_threshold"] == CNNTest().threshold
    assert "RA devel, end to end" in rep.render_card(card_markdown, rep.jsonable(report), "cmd")


@pytest.mark.parametrize("module, func, argv", [
    ("facelive.training.quality", "train_quality",
     ["quality", "--nuaa", "N", "--replay-attack", "R", "--threshold-rule", "apcer",
      "--target-apcer", "0.2", "--workers", "2"]),
    ("facelive.training.fusion", "train_fusion",
     ["fusion", "--replay-attack", "R", "--fit-on", "in-domain", "--tests", "quality,cnn",
      "--missing", "available", "--folds", "3", "--target-apcer", "0.1"]),
    ("facelive.training.face3d.train", "train_face3d",
     ["face3d", "--nuaa", "N", "--replay-attack", "R", "--epochs", "2", "--no-cross",
      "--train-on", "nuaa+ra"]),
])
def test_liveness_train_commands_share_the_report_path(module: str, func: str, argv: list[str],
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    """quality, fusion and face3d end through facelive.training.report (stub trainings)."""
    import importlib

    if module.endswith("face3d.train"):
        pytest.importorskip("torch")
    mod = importlib.import_module(module)
    calls = []
    frame = {"APCER": {}, "APCER_max": 0.1, "BPCER": 0.2, "ACER": 0.15, "EER": 0.12}

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return {"model": {"threshold": 0.5}, "devel": {"frame": frame},
                "summary": {"threshold": 0.5}, "value": np.float64(1.5)}

    monkeypatch.setattr(mod, func, fake)
    monkeypatch.setattr(mod, "card_markdown", lambda r, c: f"# stub card {r['value']}\n")
    rc = main(["train", *argv, "--report", str(tmp_path / "r.json"),
               "--card", str(tmp_path / "card.md")])
    assert rc == 0 and len(calls) == 1
    assert json.loads((tmp_path / "r.json").read_text())["value"] == 1.5
    card = (tmp_path / "card.md").read_text()
    assert card.startswith("# stub card 1.5") and "**Reproduce:**" in card  # command appended
    assert f"report: {tmp_path / 'r.json'}" in capsys.readouterr().out
    kwargs = calls[0][1]
    if func == "train_quality":
        assert kwargs == {"workers": 2, "out_model": None, "threshold_rule": "apcer",
                          "target_apcer": 0.2}
    elif func == "train_fusion":
        assert calls[0][0][1] == ["quality", "cnn"]
        assert kwargs == {"target_apcer": 0.1, "missing": "available", "folds": 3,
                          "out_model": None, "fit_on": "in-domain"}
    else:
        assert kwargs["epochs"] == 2 and kwargs["cross"] is False
        assert kwargs["train_on"] == "nuaa+ra"
