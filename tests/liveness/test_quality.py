"""The quality liveness test: model file, working resolution, resolution robustness, real frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facelive import modelstore
from facelive.errors import ModelError
from facelive.iqa import MEASURE_NAMES
from facelive.liveness import Frame
from facelive.liveness.quality import (
    CANONICAL_SHORT_SIDE,
    QualityModel,
    QualityTest,
    canonical_frame,
    quality_features,
)


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """One synthetic scene (shapes, gradients, fine texture) rendered at 2560x1440, then
    downsampled to ``width`` x ``height`` (cropped to that aspect ratio), as a camera of that
    resolution would see it."""
    rng = np.random.default_rng(seed)
    big_w, big_h = 2560, 1440
    yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float64)
    img = np.zeros((big_h, big_w, 3))
    for c in range(3):
        img[..., c] = 90 + 60 * np.sin(xx / (180 + 40 * c)) * np.cos(yy / 230)
    for _ in range(25):
        cx, cy, r = rng.integers(0, big_w), rng.integers(0, big_h), rng.integers(60, 300)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[mask] = rng.integers(20, 235, 3)
    texture = cv2.GaussianBlur(rng.normal(0, 25, (big_h, big_w)), (0, 0), 2.0)
    img = np.clip(img + texture[..., None], 0, 255).astype(np.uint8)
    aspect = width / height
    if big_w / big_h > aspect:
        cw = round(big_h * aspect)
        img = img[:, (big_w - cw) // 2:(big_w - cw) // 2 + cw]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def test_canonical_frame_sizes() -> None:
    for w, h in ((320, 240), (640, 480), (1280, 720), (480, 640), (100, 60)):
        out = canonical_frame(np.zeros((h, w, 3), np.uint8))
        assert min(out.shape[:2]) == CANONICAL_SHORT_SIDE
        assert abs(out.shape[1] / out.shape[0] - w / h) < 0.02


def test_shipped_model_loads_with_checksum_and_order() -> None:
    t = QualityTest()
    assert t.model.feature_names == tuple(MEASURE_NAMES)
    assert 0.0 < t.threshold < 1.0
    data = json.loads(modelstore.model_path("quality.json").read_text())
    assert data["feature_names"] == list(MEASURE_NAMES)


def test_tampered_model_is_refused(tmp_path) -> None:
    good = modelstore.model_path("quality.json").read_bytes()
    modelstore.write_bytes("quality.json", good, tmp_path)
    assert QualityModel.load(tmp_path / "quality.json").threshold > 0
    (tmp_path / "quality.json").write_bytes(good.replace(b'"threshold"', b'"threshold" ', 1))
    with pytest.raises(ModelError):
        QualityModel.load(tmp_path / "quality.json")


def test_fit_and_predict_roundtrip(rng) -> None:
    x = rng.normal(size=(200, 25))
    y = x[:, 0] + 0.3 * rng.normal(size=200) > 0
    m = QualityModel.fit(x, y)
    p = m.predict_proba(x)
    assert ((p > 0.5) == y).mean() > 0.85
    m2 = QualityModel.from_dict(m.to_dict())
    np.testing.assert_allclose(m2.predict_proba(x), p)


def test_features_finite_on_edge_cases() -> None:
    for img in (np.zeros((32, 32, 3), np.uint8), np.full((240, 320, 3), 200, np.uint8),
                scene(320, 240)):
        f = quality_features(img)
        assert f.shape == (25,) and np.all(np.isfinite(f))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_scene_same_decision_across_resolutions(seed: int) -> None:
    """The thesis's model called every 1280x720 frame live; the canonical working resolution
    makes the decision independent of the camera's resolution."""
    t = QualityTest()
    res = [t.score(Frame(image=scene(w, h, seed))) for w, h in ((320, 240), (640, 480),
                                                                (1280, 720))]
    assert all(r.status == "ok" for r in res)
    decisions = {r.score >= t.threshold for r in res}
    assert len(decisions) == 1, [r.score for r in res]


def _frames(root, pattern: str, n: int) -> list:
    paths = sorted(root.glob(pattern))
    step = max(1, len(paths) // n)
    return paths[::step][:n]


@pytest.mark.data
def test_real_frames_native_and_downscaled(shared_data) -> None:
    """Real 640x480 NUAA frames (live and print) and the same frames as a 320x240 camera would
    deliver them (area downsampling) get the same decision. (Digitally *upscaled* input is a
    different matter: interpolation changes the sharpness statistics the test measures.)"""
    t = QualityTest()
    paths = (_frames(shared_data / "nuaa" / "ClientRaw", "*/*.jpg", 8)
             + _frames(shared_data / "nuaa" / "ImposterRaw", "*/*.jpg", 8))
    for p in paths:
        img = cv2.imread(str(p))
        small = cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)
        s = [t.score(Frame(image=x)).score for x in (img, small)]
        assert (s[0] >= t.threshold) == (s[1] >= t.threshold), (p.name, s)
        assert s[0] == pytest.approx(s[1], abs=1e-6)


@pytest.mark.data
def test_sensible_scores_on_real_devel_frames(shared_data) -> None:
    """Live devel frames score higher than attack frames on average (a real signal, not a
    constant answer)."""
    t = QualityTest()
    root = shared_data / "replay-attack" / "devel"
    live = [t.score(Frame(image=cv2.imread(str(p)))).score
            for p in _frames(root / "real", "*/frame_*.jpg", 30)]
    spoof = [t.score(Frame(image=cv2.imread(str(p)))).score
             for p in _frames(root / "attack", "*/*/frame_*.jpg", 30)]
    assert np.mean(live) > np.mean(spoof)
    assert 0 < np.mean(np.array(spoof) >= t.threshold) < 1 or np.mean(live) > 0.5


# --- per-domain standardisation and sign constraints ---------------------------------------------
def _domains_data(rng, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two capture domains whose measures are shifted and scaled differently; measure 0 points
    the same way in both, measure 1 the opposite way (a domain quirk)."""
    k = len(MEASURE_NAMES)
    dom = np.array(["A"] * n + ["B"] * n)
    y = np.tile(np.arange(n) % 2 == 0, 2)
    x = rng.normal(0, 1, (2 * n, k))
    x[:, 0] += np.where(y, 1.5, -1.5)
    x[:, 1] += np.where(y, 1.0, -1.0) * np.where(dom == "A", 1, -1)
    x[dom == "B"] = x[dom == "B"] * 3 + 10  # another camera: offset and scale
    return x, y, dom


def test_domain_stats_and_calibrated_copy(rng) -> None:
    from facelive.liveness.quality import DomainStats

    x, y, dom = _domains_data(rng)
    st = DomainStats.of(x[(dom == "B") & y])
    z = st.apply(x[(dom == "B") & y])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-9)
    with pytest.raises(ValueError):
        DomainStats.of(x[:1])
    m = QualityModel.fit(x, y, dom)
    assert m.domain is not None and "average of A, B" in m.domain.source
    cal = m.with_domain(x[(dom == "B") & y])  # calibrated on domain B's live frames only
    b = dom == "B"
    from facelive.evaluation import auc

    assert auc(cal.predict_proba(x[b & y]), cal.predict_proba(x[b & ~y])) > 0.8
    assert np.median(cal.predict_proba(x[b & y])) > 0.5 > np.median(cal.predict_proba(x[b & ~y]))
    with pytest.raises(ModelError):
        QualityModel.fit(x, y).with_domain(x[y])


def test_domain_model_roundtrip_and_old_files(rng) -> None:
    x, y, dom = _domains_data(rng)
    m = QualityModel.fit(x, y, dom, method="sign-constrained")
    d = json.loads(json.dumps(m.to_dict()))
    assert "domain" in d
    back = QualityModel.from_dict(d)
    np.testing.assert_allclose(back.predict_proba(x), m.predict_proba(x))
    old = QualityModel.fit(x, y).to_dict()
    assert "domain" not in old and QualityModel.from_dict(old).domain is None
    d["domain"]["scale"][0] = 0.0
    with pytest.raises(ModelError):
        QualityModel.from_dict(d)


def test_sign_constraints_drop_measures_that_flip_between_domains(rng) -> None:
    from facelive.liveness.quality import consistent_signs

    x, y, dom = _domains_data(rng)
    signs = consistent_signs(x, y, dom)
    assert signs[0] == 1 and signs[1] == 0
    m = QualityModel.fit(x, y, dom, method="sign-constrained", l2=0.1)
    assert m.linear.coef[0] > 0 and m.linear.coef[1] == 0
    assert np.all(m.linear.coef * np.where(signs == 0, 1, signs) >= 0)
    assert np.all(m.linear.coef[signs == 0] == 0)
    with pytest.raises(ValueError):
        QualityModel.fit(x, y, method="qda")


def test_scoring_computes_only_the_weighted_measures(monkeypatch):
    """The quality test computes only the measures its model weighs, with the same score."""
    import cv2

    from facelive.iqa import MEASURE_NAMES
    from facelive.liveness import quality as q

    test = q.QualityTest()
    names = test.model.weighted_measures
    assert 0 < len(names) <= len(MEASURE_NAMES)
    zero = [n for n, c in zip(test.model.feature_names, test.model.linear.coef, strict=True)
            if c == 0.0]
    assert set(names) | set(zero) == set(MEASURE_NAMES)
    img = cv2.imread("examples/astronaut.jpg")
    full = float(test.model.predict_proba(q.quality_features(img))[0])
    asked: list[tuple[str, ...]] = []
    from facelive import iqa

    orig = iqa.measures

    def spy(image, names=None):
        asked.append(tuple(names or ()))
        return orig(image, names)

    monkeypatch.setattr(iqa, "measures", spy)
    from facelive.liveness.base import Frame

    assert test.score_frame(Frame(img)) == full  # bit-identical
    assert asked == [names]
