"""``facelive calibrate`` end to end on generated live frames (no research data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive import modelstore
from facelive.cli import main
from facelive.errors import FaceliveError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "astronaut.jpg"


def _live_frames(folder: Path, n: int = 24) -> Path:
    """``n`` variants of the example portrait: exposure, contrast, mirror, small shifts and
    scales, JPEG quality, as one camera's frames of one person would vary."""
    rng = np.random.default_rng(0)
    img = cv2.imread(str(EXAMPLE))
    folder.mkdir(parents=True)
    for i in range(n):
        x = cv2.convertScaleAbs(img, alpha=rng.uniform(0.8, 1.15), beta=rng.uniform(-20, 20))
        if i % 2:
            x = cv2.flip(x, 1)
        s = rng.uniform(0.9, 1.1)
        m = np.float32([[s, 0, rng.uniform(-8, 8)], [0, s, rng.uniform(-8, 8)]])
        x = cv2.warpAffine(x, m, (x.shape[1], x.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        sub = folder / ("a" if i < n // 2 else "b")
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"frame_{i:03d}.jpg"), x,
                    [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 96))])
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("calib")
    live = _live_frames(root / "live")
    out = root / "models"
    rc = main(["calibrate", "--live", str(live), "--out", str(out), "--target-bpcer", "0.1",
               "--quiet"])
    assert rc == 0
    return out, json.loads((out / "calibration.json").read_text())


def test_calibration_writes_a_checksummed_model_folder(calibrated) -> None:
    out, rep = calibrated
    assert rep["n_images"] == 24 and rep["status"] == {"ok": 24}
    for name in ("fusion.json", "cnn.json", "cnn.onnx", "probe.json", "probe.onnx",
                 "minifas.json", "minifas.onnx"):  # the default tests (quality and face3d
        # only with --tests naming them)
        modelstore.read_bytes(name, out)  # listed in out/SHA256SUMS with the right digest
    # networks copied unchanged, thresholds moved
    assert (out / "cnn.onnx").read_bytes() == modelstore.read_bytes("cnn.onnx",
                                                                    modelstore.MODEL_DIR)
    for key, v in {**rep["tests"], **rep["fusion"]}.items():
        assert v["n_live"] == 24, key
        assert v["bpcer_after"] <= 0.1, key  # at most the target share of these frames rejected
    card = json.loads((out / "minifas.json").read_text())
    assert card["calibration"]["target_bpcer"] == 0.1


def test_calibrated_folder_is_used_by_models_option(calibrated, monkeypatch,
                                                    capsys) -> None:
    out, rep = calibrated
    monkeypatch.setenv(modelstore.MODELS_ENV, str(out))
    from facelive.pipeline import Pipeline

    with Pipeline() as pipe:
        full = "+".join(sorted(pipe.test_names))
        assert pipe.threshold == pytest.approx(rep["fusion"][full]["threshold_after"])
        thresholds = {t.name: t.threshold for t in pipe.tests}
    for t, v in rep["tests"].items():
        assert thresholds[t] == pytest.approx(v["threshold_after"])
    monkeypatch.delenv(modelstore.MODELS_ENV)
    rc = main(["--models", str(out), "check", str(EXAMPLE), "--format", "jsonl"])
    assert rc in (0, 1)
    obj = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert obj["threshold"] == pytest.approx(rep["fusion"][full]["threshold_after"])


def test_calibration_refusals(tmp_path: Path) -> None:
    from facelive.calibration import calibrate, live_images

    with pytest.raises(FaceliveError):
        calibrate([EXAMPLE], modelstore.MODEL_DIR)  # never the shipped folder
    with pytest.raises(FaceliveError):
        calibrate([EXAMPLE] * 3, tmp_path / "few")  # too few frames
    with pytest.raises(FaceliveError):
        live_images(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate", "--live", str(empty), "--out", str(tmp_path / "o")]) == 2


def test_named_quality_test_is_restandardised(tmp_path: Path) -> None:
    """The quality test, when named, gets its domain statistics from the live frames too."""
    live = _live_frames(tmp_path / "live")
    out = tmp_path / "models"
    assert main(["calibrate", "--live", str(live), "--out", str(out), "--target-bpcer", "0.1",
                 "--tests", "quality,cnn", "--quiet"]) == 0
    q = json.loads((out / "quality.json").read_text())
    assert q["info"]["calibration"]["target_bpcer"] == 0.1
    rep = json.loads((out / "calibration.json").read_text())
    if json.loads(modelstore.read_bytes("quality.json", modelstore.MODEL_DIR)).get("domain"):
        assert rep["quality_domain"]["restandardised"] is True
        assert q["domain"]["n"] == 24
