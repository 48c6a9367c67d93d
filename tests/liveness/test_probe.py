"""The probe test: shipped ONNX model, shared crop, the folded linear model, ONNX vs torch (no-face
handling and the checksum check: tests/test_cnn.py, for both crop networks)."""

from __future__ import annotations

import numpy as np
import pytest

from facelive import modelstore
from facelive.liveness import Frame
from facelive.liveness.probe import ProbeTest
from facelive.types import FaceBox


@pytest.fixture(scope="module")
def probe() -> ProbeTest:
    return ProbeTest()


def test_card_and_model_load(probe):
    info = probe.info()
    assert info["name"] == "probe" and info["needs_face"] is True
    card = modelstore.read_json("probe.json")
    assert probe.size == card["input_size"] == 224 and probe.context == 2.0
    assert 0.0 < probe.threshold < 1.0
    assert card["n_features"] == 1280 and card["recipe"]["C"] > 0
    assert "research use only" in card["licence"]


def test_shares_the_cnn_crop(probe, rng):
    from facelive.liveness.cnn import CNNTest

    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frame = Frame(img, face=FaceBox(120, 80, 60, 70, 0.9))
    res = probe.score(frame)
    assert res.status == "ok" and 0.0 <= res.score <= 1.0
    crops = [k for k in frame.cache if k.startswith("crop:")]
    assert len(crops) == 1
    cnn = CNNTest()
    assert (cnn.context, cnn.size) == (probe.context, probe.size)  # one crop serves both
    cnn.score(frame)
    assert [k for k in frame.cache if k.startswith("crop:")] == crops


def test_registered_as_a_test():
    from facelive.liveness.registry import available_tests, load_test

    assert "probe" in available_tests()
    assert isinstance(load_test("probe"), ProbeTest)


torch = pytest.importorskip("torch", reason="the probe's training needs the [train] extra")


def test_balanced_weights_give_every_stratum_the_same_total():
    from facelive.fusion.model import balanced_weights

    strata = ["a/1"] * 6 + ["a/0"] * 2 + ["b/1"] * 1 + ["b/0"] * 3
    w = balanced_weights(strata)
    assert w.mean() == pytest.approx(1.0)
    totals = {s: w[np.array(strata) == s].sum() for s in set(strata)}
    assert np.allclose(list(totals.values()), 3.0)


def test_folded_linear_model_equals_scaler_plus_logistic_regression(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from facelive.fusion.model import balanced_weights
    from facelive.training.linear_probe import fit_linear, predict_linear

    x = rng.normal(size=(200, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, -2, 0, 1]
    y = (x[:, 0] + 0.1 * x[:, 1] + rng.normal(size=200) > 0.5).astype(int)
    strata = [f"d{i % 2}/{v}" for i, v in enumerate(y)]
    w, b = fit_linear(x, y, strata, C=0.1)
    sc = StandardScaler().fit(x)
    ref = LogisticRegression(C=0.1, max_iter=5000).fit(
        sc.transform(x), y, sample_weight=balanced_weights(strata))
    np.testing.assert_allclose(predict_linear(x, w, b),
                               ref.predict_proba(sc.transform(x))[:, 1], atol=1e-6)


@pytest.mark.slow
def test_exported_graph_matches_torch_and_the_test_reads_it(tmp_path, rng):
    """A probe exported from random linear weights: ONNX Runtime and torch agree, and the test
    loads the files written beside a checksum list."""
    import onnxruntime as ort

    from facelive.training.probe import ProbeFeatures, ProbeNet, export_onnx

    feats = ProbeFeatures(224)
    net = ProbeNet(feats, rng.normal(size=1280) * 0.01, 0.1).eval()
    x = rng.normal(size=(2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    data = export_onnx(net)
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)
    card = dict(modelstore.read_json("probe.json"), threshold=0.5)
    modelstore.write_bytes("probe.onnx", data, tmp_path)
    modelstore.write_json("probe.json", card, tmp_path)
    test = ProbeTest(tmp_path / "probe.onnx")
    crops = rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    with torch.no_grad():
        want = net(torch.from_numpy(test.preprocess(crops))).numpy()[:, 1]
    np.testing.assert_allclose(test.predict_crops(crops), want, atol=1e-4)


@pytest.mark.slow
def test_int8_feature_graph_stays_close_to_float(probe, tmp_path, rng):
    """The INT8 quantisation used by experiments/probe_int8_check.py: a loadable graph whose
    features follow the float ones (calibrated and evaluated on the same random crops)."""
    import onnxruntime as ort

    from facelive.training.probe import ProbeFeatures, export_onnx, quantize_probe_graph

    path = tmp_path / "features.onnx"
    path.write_bytes(export_onnx(ProbeFeatures(64), 64, output="features"))
    preprocess = probe.preprocess  # the shipped probe's normalisation (any crop size)
    crops = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    data = quantize_probe_graph(path, crops, preprocess, prefix="/")
    f8 = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"input": preprocess(crops)})[0]
    f32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": preprocess(crops)})[0]
    assert f8.shape == f32.shape == (4, 1280)
    assert np.corrcoef(f8.ravel(), f32.ravel())[0, 1] > 0.9
