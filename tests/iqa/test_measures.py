"""Tests of facelive.iqa: hand-computed values, invariants, finiteness, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import facelive.iqa as q
from facelive.errors import ImageError
from facelive.iqa.edges import corner_count, edge_map
from facelive.iqa.measures import WORKING_PRECISION_MEASURES
from facelive.iqa.noreference import JQI_ALPHA, JQI_BETA, JQI_FLOOR, jqi_features
from facelive.iqa.pixel import laplacian

FULL_REF = ["mse", "psnr", "snr", "sc", "md", "ad", "nae", "ramd", "lmse", "nxc", "mas", "mams",
            "ted", "tcd", "sme", "spe", "gme", "gpe", "ssim", "vif", "rred"]
NO_REF = ["jqi", "hlfi", "biqi", "niqe"]

R = np.array([[1.0, 2.0], [3.0, 4.0]])
D = np.array([[1.0, 1.0], [1.0, 5.0]])  # R - D = [[0, 1], [2, -1]]


def textured(h: int = 48, w: int = 64, colour: bool = True, seed: int = 0) -> np.ndarray:
    """A smooth random texture with edges (BGR uint8)."""
    rng = np.random.default_rng(seed)
    small = rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img[h // 4 : h // 2, w // 4 : w // 2] = 230.0
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return img if colour else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


# ---------------------------------------------------------------- conventions


def test_names_and_order() -> None:
    assert q.MEASURE_NAMES == (
        "MSE", "PSNR", "SNR", "SC", "MD", "AD", "NAE", "RAMD", "LMSE", "NXC", "MAS", "MAMS",
        "TED", "TCD", "SME", "SPE", "GME", "GPE", "SSIM", "VIF", "RRED", "JQI", "HLFI", "BIQI",
        "NIQE")
    m = q.measures(textured())
    assert tuple(m) == q.MEASURE_NAMES
    for name in q.MEASURE_NAMES:
        assert callable(getattr(q, name.lower()))


def test_grey_is_bt601_float() -> None:
    img = textured()
    g = q.to_grey(img)
    assert g.dtype == np.float64
    # OpenCV rounds (with 14-bit fixed-point weights) to uint8
    assert np.abs(g - cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)).max() <= 0.51
    assert q.to_grey(np.array([[[10, 20, 30]]], np.uint8))[0, 0] == pytest.approx(
        0.114 * 10 + 0.587 * 20 + 0.299 * 30)


def test_blurred_is_3x3_gaussian_sigma_half_symmetric() -> None:
    x = np.random.default_rng(1).random((5, 6)) * 255
    k1 = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * 0.25))
    k1 /= k1.sum()
    p = np.pad(x, 1, mode="symmetric")
    expect = sum(k1[i] * k1[j] * p[i : i + 5, j : j + 6] for i in range(3) for j in range(3))
    np.testing.assert_allclose(q.blurred(x), expect, rtol=1e-12, atol=1e-9)
    # uint8 input is not computed in uint8
    assert q.blurred(np.full((4, 4), 200, np.uint8)).dtype == np.float64


# ---------------------------------------------------------------- hand-computed values


def test_pixel_measures_by_hand() -> None:
    assert q.mse(R, D) == pytest.approx(1.5)
    assert q.psnr(R, D) == pytest.approx(10 * math.log10(255**2 / 1.5))
    assert q.snr(R, D) == pytest.approx(10 * math.log10(30 / (4 * 1.5)))
    assert q.sc(R, D) == pytest.approx(30 / 28)
    assert q.md(R, D) == 2.0
    assert q.ad(R, D) == pytest.approx(0.5)
    assert q.nae(R, D) == pytest.approx(4 / 10)
    assert q.nxc(R, D) == pytest.approx(26 / 30)
    # L with symmetric border on 2x2: L(R) = [[3, 1], [-1, -3]], L(R - D) = [[3, -3], [-5, 5]]
    np.testing.assert_allclose(laplacian(R), [[3, 1], [-1, -3]])
    assert q.lmse(R, D) == pytest.approx(68 / 20)


def test_ramd_averages_the_r_largest() -> None:
    ref = np.arange(16.0).reshape(4, 4)
    dist = np.zeros((4, 4))
    assert q.ramd(ref, dist) == pytest.approx(np.mean(np.arange(6, 16)))  # R = 10
    assert q.ramd(R, D) == pytest.approx(1.0)  # fewer than R pixels: mean of all |D|


def test_angle_measures_by_hand() -> None:
    red, green = np.array([[[1.0, 0, 0]]]), np.array([[[0, 1.0, 0]]])
    assert q.mas(red, green) == pytest.approx(0.0)
    assert q.mams(red, green) == pytest.approx(1.0)
    assert q.mas(red, 2 * red) == pytest.approx(1.0)
    assert q.mams(red, 2 * red) == pytest.approx(1 / (math.sqrt(3) * 255))
    assert q.mas(np.array([[[1.0, 1.0, 0]]]), red) == pytest.approx(0.5)  # 45 degrees
    zero = np.zeros((1, 1, 3))
    assert q.mas(zero, zero) == 1.0 and q.mas(zero, red) == 0.0


def test_spectral_measures_by_hand() -> None:
    delta = np.array([[1.0, 0.0], [0.0, 0.0]])  # DFT is all ones
    assert q.sme(delta, np.zeros((2, 2))) == pytest.approx(1.0)
    assert q.spe(delta, np.zeros((2, 2))) == pytest.approx(0.0)
    assert q.sme(delta, -delta) == pytest.approx(0.0)
    assert q.spe(delta, -delta) == pytest.approx(math.pi**2)  # phase difference pi


def test_spectral_half_spectrum_equals_full_fft() -> None:
    rng = np.random.default_rng(2)
    for shape in [(5, 7), (6, 8), (7, 6)]:
        a, b = rng.random(shape) * 255, rng.random(shape) * 255
        fa, fb = np.fft.fft2(a), np.fft.fft2(b)
        assert q.sme(a, b) == pytest.approx(np.mean((np.abs(fa) - np.abs(fb)) ** 2))
        d = np.angle(fa) - np.angle(fb)
        d = np.angle(np.exp(1j * d))
        assert q.spe(a, b) == pytest.approx(np.mean(d**2))


def test_gradient_measures_by_hand() -> None:
    ramp = np.tile(np.arange(8.0), (8, 1))
    # Sobel gx = 8 inside, 4 on the two reflected border columns; gy = 0
    assert q.gme(ramp, 2 * ramp) == pytest.approx((6 * 64 + 2 * 16) / 8)
    assert q.gme(ramp, -ramp) == pytest.approx(0.0)
    assert q.gpe(ramp, -ramp) == pytest.approx(math.pi**2)
    assert q.gpe(ramp, ramp.T) == pytest.approx((math.pi / 2) ** 2)


def test_edge_and_corner_measures() -> None:
    step = np.zeros((16, 16))
    step[:, 4:] = 255.0
    from facelive.iqa._common import sobel

    e = edge_map(*sobel(step))
    assert e[:, 3:5].all() and e.sum() == 32  # columns 3 and 4 are edges
    assert q.ted(step, np.zeros((16, 16))) == pytest.approx(32 / 256)
    square = np.zeros((32, 32))
    square[8:24, 8:24] = 255.0
    assert corner_count(*sobel(square)) == 4
    assert q.tcd(square, np.zeros((32, 32))) == 1.0
    assert q.tcd(np.zeros((32, 32)), np.zeros((32, 32))) == 0.0


def test_jqi_by_hand() -> None:
    ramp = np.tile(np.arange(32.0), (32, 1))  # horizontal differences 1, vertical 0
    b, a, z = jqi_features(ramp)
    assert (b, a, z) == pytest.approx((0.5, 0.5, 0.0))
    g1, g2, g3 = -0.0239889, 0.0160166, 0.0064286  # published exponents / 10,000
    expect = JQI_ALPHA + JQI_BETA * 0.5**g1 * 0.5**g2 * JQI_FLOOR**g3
    assert q.jqi(ramp) == pytest.approx(expect, rel=1e-5)
    stripes = np.tile([0.0, 10.0], (32, 16))  # every horizontal difference changes sign
    assert jqi_features(stripes)[2] == pytest.approx(0.5)


def test_hlfi_by_hand() -> None:
    assert q.hlfi(np.full((32, 32), 9.0)) == pytest.approx(1.0)  # DC only: all low
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 2.0 - 1.0  # Nyquist only: all high
    assert q.hlfi(checker) == pytest.approx(-1.0)
    x = np.random.default_rng(3).random((24, 40)) * 255
    mag = np.abs(np.fft.fftshift(np.fft.fft2(x)))
    ky = np.abs(np.arange(24) - 12)[:, None]
    kx = np.abs(np.arange(40) - 20)[None, :]
    low = (ky <= 0.15 * 24) & (kx <= 0.15 * 40)
    assert q.hlfi(x) == pytest.approx((mag[low].sum() - mag[~low].sum()) / mag.sum())


def test_ssim_matches_scikit_image() -> None:
    from skimage.metrics import structural_similarity

    x = q.to_grey(textured())
    y = q.blurred(x)
    ref = structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert q.ssim(x, y) == pytest.approx(ref, abs=1e-9)


def test_rred_haar_blocks_by_hand() -> None:
    from facelive.iqa.structural import RRED_SIGMA_N2

    x = np.zeros((6, 6))
    x[::2, ::2] = 2.0  # Haar: every detail coefficient is +-1 -> block variance 0 or 1
    y = np.zeros((6, 6))
    h = 0.5 * np.log(2 * np.pi * np.e * (np.array([1.0, 0.0]) + RRED_SIGMA_N2))
    g = np.log1p(np.array([1.0, 0.0]))
    # 3 subbands x 1 block each; every subband of x is constant +-1 (variance 0) -> all zero
    assert q.rred(x, y) == pytest.approx(0.0)
    x2 = np.zeros((6, 6))
    x2[0:2, 0:2] = [[2.0, 0.0], [0.0, 0.0]]  # one 2x2 cell, the others zero
    # each subband is a 3x3 block holding one +-1 among zeros: variance 1/9 - 1/81
    v = 1 / 9 - 1 / 81
    term = np.log1p(v) * 0.5 * np.log(2 * np.pi * np.e * (v + RRED_SIGMA_N2))
    term0 = g[1] * h[1]
    assert q.rred(x2, y) == pytest.approx(abs(term - term0))


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("name", FULL_REF)
def test_identical_images_give_no_error(name: str) -> None:
    colour = name in ("mas", "mams")
    x = textured(colour=colour).astype(np.float64)
    expected = {"psnr": q.DB_CAP, "snr": q.DB_CAP, "sc": 1.0, "nxc": 1.0, "mas": 1.0,
                "ssim": 1.0, "vif": 1.0}.get(name, 0.0)
    assert getattr(q, name)(x, x.copy()) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["mse", "psnr", "md", "mas", "mams", "ted", "tcd", "sme",
                                  "spe", "gme", "gpe", "ssim", "rred"])
def test_symmetric_measures(name: str) -> None:
    colour = name in ("mas", "mams")
    x = textured(colour=colour).astype(np.float64)
    y = textured(colour=colour, seed=5).astype(np.float64)
    f = getattr(q, name)
    assert f(x, y) == pytest.approx(f(y, x), rel=1e-9, abs=1e-12)
    if not colour:
        assert q.ad(x, y) == pytest.approx(-q.ad(y, x))


def test_db_caps() -> None:
    z = np.zeros((16, 16))
    assert q.psnr(z, z) == q.DB_CAP and q.snr(z, z) == q.DB_CAP
    assert q.snr(z, np.full((16, 16), 255.0)) == -q.DB_CAP
    assert q.psnr(z, np.full((16, 16), 255.0)) == pytest.approx(0.0)
    big = np.full((16, 16), 1e9)
    assert -q.DB_CAP <= q.psnr(z, big) <= q.DB_CAP


def test_blurring_more_increases_error() -> None:
    x = q.to_grey(textured())
    soft = cv2.GaussianBlur(x, (0, 0), 2.0)
    assert q.mse(x, soft) > q.mse(x, q.blurred(x))
    assert q.ssim(x, soft) < q.ssim(x, q.blurred(x))
    assert q.vif(x, soft) < q.vif(x, q.blurred(x))


# ---------------------------------------------------------------- measures() and finiteness


@pytest.mark.parametrize("image", [
    np.full((32, 32, 3), 128, np.uint8),  # flat colour
    np.zeros((16, 16)),  # flat grey, smallest size
    np.full((40, 33), 255.0),
    textured(32, 32),  # 32x32 colour
    textured(32, 32, colour=False),  # 32x32 grey
    textured(241, 319),  # odd size
], ids=["flat-colour", "zeros-16", "white-odd", "tex-32-colour", "tex-32-grey", "odd"])
def test_every_measure_finite(image: np.ndarray) -> None:
    m = q.measures(image)
    assert len(m) == 25
    bad = {k: v for k, v in m.items() if not (isinstance(v, float) and math.isfinite(v))}
    assert not bad


def _flat_and_saturated(h: int, w: int) -> np.ndarray:
    """Texture with a flat block, a saturated block and a black block (zero gradients, masked
    VIF/SSIM pixels), at an odd size."""
    img = textured(h, w).copy()
    img[: h // 3, : w // 3] = 128
    img[h // 2:, w // 2:] = 255
    img[-5:, :7] = 0
    return img


@pytest.mark.parametrize("shape", [(64, 80), (61, 47), (97, 130)])
def test_measures_equal_the_separate_functions(shape: tuple[int, int]) -> None:
    """The shared-intermediate paths inside measures() (e.g. VIF/SSIM of the blurred image as a
    3x3 blur of already filtered moments) give the public functions' values (both float64)."""
    img = textured(*shape) if shape == (64, 80) else _flat_and_saturated(*shape)
    m = q.measures(img, dtype=np.float64)
    grey = q.to_grey(img)
    gb = q.blurred(grey)
    c = img.astype(np.float64)
    for name in FULL_REF:
        a, b = (c, q.blurred(c)) if name in ("mas", "mams") else (grey, gb)
        assert m[name.upper()] == pytest.approx(getattr(q, name)(a, b), rel=1e-9, abs=1e-12)
    for name in NO_REF:
        assert m[name.upper()] == pytest.approx(getattr(q, name)(img), rel=1e-9)
    mg = q.measures(grey, dtype=np.float64)  # grey input: the colour measures see 3 equal channels
    assert mg["MSE"] == pytest.approx(m["MSE"])
    if grey.min() > 0:  # a black pixel vs its non-black blurred copy: a right angle by convention
        assert mg["MAS"] == pytest.approx(1.0)


def test_uint8_input_does_not_wrap() -> None:
    a = np.zeros((16, 16), np.uint8)
    b = np.full((16, 16), 255, np.uint8)
    assert q.mse(a, b) == 255.0**2 and q.ad(a, b) == -255.0


@pytest.mark.parametrize("bad", [
    "not an array", np.zeros((8, 8)), np.zeros((32, 32, 4)), np.zeros((32,)),
    np.full((32, 32), np.nan), np.zeros((0, 32)), np.zeros((32, 32), dtype=complex),
])
def test_bad_input_raises_image_error(bad: object) -> None:
    with pytest.raises(ImageError):
        q.measures(bad)  # type: ignore[arg-type]


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ImageError, match="shape"):
        q.mse(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ImageError, match="grey"):
        q.mse(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


def test_replay_attack_frame(shared_data) -> None:
    from facelive.imageio import load_image

    frame = next((shared_data / "replay-attack" / "devel" / "real").rglob("*.jpg"))
    m = q.measures(load_image(frame))
    assert all(math.isfinite(v) for v in m.values())
    assert 0.9 < m["SSIM"] <= 1.0 and m["MSE"] > 0


def test_haar_details_match_pywavelets() -> None:
    import pywt

    from facelive.iqa.structural import haar_details

    x = np.random.default_rng(4).random((10, 14)) * 255
    for mine, ref in zip(haar_details(x), pywt.dwt2(x, "haar", mode="periodization")[1],
                         strict=True):
        np.testing.assert_allclose(mine, ref, atol=1e-9)


def test_measures_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [textured(48, 64, seed=s) for s in range(4)]
    expected = [q.measures(im) for im in images]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(q.measures, images * 2))
    assert got == expected * 2


# ----------------------------------------------------------------------------------- fast paths
# Each fast path is checked against a plain numpy reference of the same quantity: elementwise to
# a few ulp, and every measure of real frames to 1e-12 relative.


def _reference_phase_diff2(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    d = np.arctan2(im, re)
    return d * d


def _natural_frames() -> list[np.ndarray]:
    from facelive.imageio import load_image
    from facelive.liveness.quality import canonical_frame

    root = Path(__file__).resolve().parents[2]
    astronaut = canonical_frame(load_image(root / "examples" / "astronaut.jpg"))
    return [astronaut, astronaut[:, ::-1].copy(), cv2.GaussianBlur(astronaut, (5, 5), 2.0),
            textured(240, 320, seed=7)]


def test_fast_arccos_matches_numpy() -> None:
    from facelive.iqa.correlation import _arccos

    rng = np.random.default_rng(11)
    c = np.concatenate([1.0 - 10.0 ** rng.uniform(-17, 0, 50_000), rng.uniform(-1, 1, 50_000),
                        [1.0, -1.0, 0.0, 0.995, np.nextafter(0.995, 0.0), 0.5]])
    ref = np.arccos(c)
    got = _arccos(c.copy())
    assert np.array_equal(got == 0.0, ref == 0.0)
    nz = ref > 0
    assert np.max(np.abs(got - ref)[nz] / np.spacing(ref[nz])) <= 4.0


def test_fast_phase_diff2_matches_arctan2() -> None:
    from facelive.iqa.spectral import _phase_diff2

    rng = np.random.default_rng(12)
    re, im = rng.normal(size=(60, 70)) + 0.3, rng.normal(size=(60, 70))
    re.flat[:6] = [0.0, 0.0, -0.0, -0.0, 1e-310, -1e-310]  # zeros of both signs, subnormals
    im.flat[:6] = [0.0, -0.0, 0.0, -0.0, 0.0, 3.0]
    re.flat[6:9], im.flat[6:9] = 0.0, [1.0, -2.0, 1e-300]
    ref = _reference_phase_diff2(re, im)
    got = _phase_diff2(re.copy(), im.copy())
    assert np.array_equal(got == 0.0, ref == 0.0)
    np.testing.assert_allclose(got, ref, rtol=4e-15, atol=0)


def test_opencv_log_matches_log1p() -> None:
    from facelive.iqa.structural import _log1p

    rng = np.random.default_rng(13)
    x = np.concatenate([10.0 ** rng.uniform(-20, 8, 100_000), [0.0, 1.0, 1e-300]])
    got = _log1p(x.copy())
    # absolute error: the rounding of 1 + x (<= 1.1e-16) plus ~1 ulp of the result
    assert np.all(np.abs(got - np.log1p(x)) <= 2.3e-16 + 2.0 * np.spacing(np.log1p(x)))


@pytest.mark.parametrize("index", range(4))
def test_fast_paths_equal_the_reference_measures(index: int, monkeypatch) -> None:
    """All 25 measures with the fast paths vs with the numpy functions they replaced."""
    from facelive.iqa import correlation, spectral, structural

    img = _natural_frames()[index]
    fast = q.measures(img, dtype=np.float64)
    monkeypatch.setattr(correlation, "_arccos", np.arccos)
    monkeypatch.setattr(spectral, "_phase_diff2", _reference_phase_diff2)
    monkeypatch.setattr(structural, "_log1p", lambda x: np.log1p(x, out=x))
    ref = q.measures(img, dtype=np.float64)
    for name in q.MEASURE_NAMES:
        assert fast[name] == pytest.approx(ref[name], rel=1e-12, abs=1e-300), name


def test_measures_subset_equals_full() -> None:
    img = _natural_frames()[0]
    full = q.measures(img)
    some = ["VIF", "MSE", "GME", "HLFI", "BIQI"]
    sub = q.measures(img, some)
    assert list(sub) == [n for n in q.MEASURE_NAMES if n in some]
    assert all(sub[n] == full[n] for n in some)
    for name in q.MEASURE_NAMES:  # each alone: the same number, bit for bit
        assert q.measures(img, name) == {name: full[name]}
    assert q.measures(img, []) == {}
    with pytest.raises(ValueError, match="NOPE"):
        q.measures(img, ["MSE", "NOPE"])


# ---------------------------------------------------------------- float32 working precision
# measures() computes WORKING_PRECISION_MEASURES in float32 by default; docs/iqm.md allows it
# where every measure stays within 1e-4 relative of the float64 reference on natural images.


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _natural_variants() -> dict[str, np.ndarray]:
    """examples/astronaut.jpg at the canonical resolution and degraded / rescaled copies."""
    base = _natural_frames()[0]
    noisy = base + np.random.default_rng(21).normal(0.0, 4.0, base.shape)
    return {
        "astronaut": base,
        "320x240": cv2.resize(base, (320, 240), interpolation=cv2.INTER_AREA),
        "odd-size-crop": base[3:238, 5:226],
        "down-up": cv2.resize(cv2.resize(base, (120, 120), interpolation=cv2.INTER_AREA),
                              (240, 240), interpolation=cv2.INTER_LINEAR),
        "jpeg-q20": _jpeg(base, 20),
        "noisy": np.clip(noisy, 0, 255).astype(np.uint8),
        "overexposed": np.clip(base * 1.8, 0, 255).astype(np.uint8),  # saturated flat areas
        "dark": (base // 6).astype(np.uint8),
        "grey": cv2.cvtColor(base, cv2.COLOR_BGR2GRAY),
    }


@pytest.mark.parametrize("name", list(_natural_variants()))
def test_float32_measures_agree_with_float64(name: str) -> None:
    img = _natural_variants()[name]
    fast = q.measures(img)
    ref = q.measures(img, dtype=np.float64)
    for m in q.MEASURE_NAMES:
        # the floor only matters for values that are 0 up to rounding (AD: ~1e-15, the same
        # float64 value on both paths); every float32 measure here is >= 1e-3 in magnitude
        assert fast[m] == pytest.approx(ref[m], rel=1e-4, abs=1e-12), m
    for m in set(q.MEASURE_NAMES) - WORKING_PRECISION_MEASURES:
        assert fast[m] == ref[m], m  # float64 on both paths: the same number


def test_measures_dtype_is_float32_or_float64() -> None:
    with pytest.raises(ValueError, match="float16"):
        q.measures(textured(), dtype=np.float16)


@pytest.mark.parametrize("shape", [(240, 320), (61, 47), (16, 18)])
def test_float32_dwt2_matches_pywavelets(shape: tuple[int, int]) -> None:
    import pywt

    from facelive.iqa.biqi_model import WAVELET, dwt2

    x = np.random.default_rng(22).random(shape) * 255
    ref = pywt.dwt2(x, WAVELET, mode="periodization")
    got = dwt2(x.astype(np.float32))
    for g, r in zip((got[0], *got[1]), (ref[0], *ref[1]), strict=True):
        assert g.dtype == np.float32 and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=0, atol=2e-6 * np.abs(r).max())
