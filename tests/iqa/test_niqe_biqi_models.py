"""Tests of the NIQE and BIQI models: loading, checksums, behaviour, reproducibility."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import facelive.iqa as q
from facelive import modelstore
from facelive.errors import ModelError
from facelive.iqa import biqi_model as biqi_mod
from facelive.iqa import niqe_model as niqe_mod
from facelive.iqa._ggd import fit_aggd, fit_ggd
from facelive.iqa._samples import pristine_images


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return cv2.resize(pristine_images()["chelsea"], (320, 240), interpolation=cv2.INTER_AREA)


def test_ggd_fit_recovers_shape() -> None:
    from scipy.stats import gennorm

    for beta in (0.8, 1.0, 2.0):
        x = gennorm.rvs(beta, scale=3.0, size=200_000, random_state=0)
        alpha, var = fit_ggd(x)
        assert alpha[0] == pytest.approx(beta, rel=0.03)
        assert var[0] == pytest.approx(np.mean(x * x), rel=1e-9)
    rng = np.random.default_rng(0)  # AGGD, alpha 2: side masses proportional to the scales
    a, eta, lv, rv = fit_aggd(np.concatenate([-np.abs(rng.normal(0, 1, 50000)),
                                              np.abs(rng.normal(0, 2, 100000))]))
    assert a[0] == pytest.approx(2.0, rel=0.05) and lv[0] == pytest.approx(1.0, rel=0.03)
    assert rv[0] == pytest.approx(4.0, rel=0.03) and eta[0] > 0


def test_models_load_cached_and_verified() -> None:
    assert niqe_mod.load_model() is niqe_mod.load_model()
    assert biqi_mod.load_model() is biqi_mod.load_model()
    mu, cov = niqe_mod.load_model()
    assert mu.shape == (36,) and cov.shape == (36, 36) and np.allclose(cov, cov.T)


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    for name in (niqe_mod.MODEL_FILE, biqi_mod.MODEL_FILE):
        shutil.copy(modelstore.model_path(name), tmp_path / name)
    shutil.copy(modelstore.model_path("SHA256SUMS"), tmp_path / "SHA256SUMS")
    modelstore.read_npz(niqe_mod.MODEL_FILE, tmp_path)
    with open(tmp_path / biqi_mod.MODEL_FILE, "ab") as fh:
        fh.write(b" ")
    with pytest.raises(ModelError, match="checksum"):
        modelstore.read_json(biqi_mod.MODEL_FILE, tmp_path)


def test_niqe_prefers_pristine(chelsea: np.ndarray) -> None:
    clean = q.niqe(chelsea)
    blur = q.niqe(cv2.GaussianBlur(chelsea, (0, 0), 3.0))
    noisy = np.clip(chelsea + np.random.default_rng(0).normal(0, 20, chelsea.shape), 0, 255)
    assert clean < blur and clean < q.niqe(noisy)


def test_niqe_patch_size_adapts() -> None:
    assert niqe_mod.patch_size(240, 320) == 96
    assert niqe_mod.patch_size(32, 32) == 16
    assert niqe_mod.patch_size(16, 16) == 8


def test_biqi_ranks_distortion_strength(chelsea: np.ndarray) -> None:
    p, qual = biqi_mod.predict(biqi_mod.biqi_features(q.to_grey(chelsea)))
    assert p.sum() == pytest.approx(1.0) and ((qual >= 0) & (qual <= 100)).all()
    clean = q.biqi(chelsea)
    assert clean < q.biqi(cv2.GaussianBlur(chelsea, (0, 0), 4.0))
    noisy = np.clip(chelsea + np.random.default_rng(0).normal(0, 30, chelsea.shape), 0, 255)
    assert clean < q.biqi(noisy)


def test_train_niqe_reproduces_shipped_model(tmp_path: Path) -> None:
    from facelive.training.niqe import train_niqe

    report = train_niqe(tmp_path, log=lambda _: None)
    assert report["n_patches"] == 517
    new = modelstore.read_npz(niqe_mod.MODEL_FILE, tmp_path)
    mu, cov = niqe_mod.load_model()
    np.testing.assert_allclose(new["mu"], mu, rtol=1e-9)
    np.testing.assert_allclose(new["cov"], cov, rtol=1e-7, atol=1e-12)


@pytest.mark.slow
def test_train_biqi_reproduces_shipped_model(tmp_path: Path) -> None:
    from facelive.training.biqi import train_biqi

    train_biqi(tmp_path, log=lambda _: None)
    new = modelstore.read_json(biqi_mod.MODEL_FILE, tmp_path)
    old = modelstore.read_json(biqi_mod.MODEL_FILE)
    assert {k: v for k, v in new.items() if not isinstance(v, (list, dict))} == \
        {k: v for k, v in old.items() if not isinstance(v, (list, dict))}
    np.testing.assert_allclose(new["classifier"]["coef"], old["classifier"]["coef"], atol=1e-4)
    np.testing.assert_allclose(new["regressors"]["coef"], old["regressors"]["coef"], atol=1e-6)
