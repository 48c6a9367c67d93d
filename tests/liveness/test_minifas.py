"""The MiniFAS test (CelebA-Spoof MiniFASNetV2-SE): the model's input convention is reproduced
(crop, border, interpolation, channel order, scale), its logits read the right way round, and a
golden score on the shipped example."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive import modelstore
from facelive.face.detection import centred_square_crop
from facelive.liveness import Frame
from facelive.liveness.minifas import MiniFASTest
from facelive.types import FaceBox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def minifas() -> MiniFASTest:
    return MiniFASTest()


def test_card_states_the_upstream_convention(minifas):
    card = modelstore.read_json("minifas.json")
    from facelive.training.minifas import CONTEXT, UPSTREAM_CONTEXT

    assert (card["input_size"], card["context"], card["channels"]) == (128, CONTEXT, "rgb")
    assert card["upstream_context"] == UPSTREAM_CONTEXT == 1.5
    assert card["scale"] == pytest.approx(1 / 255) and card["live_index"] == 0
    assert (minifas.size, minifas.context, minifas.rgb) == (128, CONTEXT, True)
    assert 0.0 < minifas.threshold < 1.0
    assert "Apache-2.0" in card["upstream"]["licence"]
    licence = modelstore.read_bytes("minifas.LICENSE").decode()  # checksummed like the model
    assert "Apache License" in licence


def test_crop_is_centred_with_reflected_border(rng):
    img = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    box = FaceBox(2, 5, 40, 30, 0.9)  # near the top-left corner: the square leaves the image
    side = round(1.5 * 40)
    x0 = round(2 + 20 - side / 2)
    y0 = round(5 + 15 - side / 2)
    pad = 50
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")  # = REFLECT_101
    window = padded[pad + y0:pad + y0 + side, pad + x0:pad + x0 + side]
    expected = cv2.resize(window, (128, 128), interpolation=cv2.INTER_LANCZOS4)  # enlarging
    np.testing.assert_array_equal(centred_square_crop(img, box, 1.5, 128), expected)
    # shrinking uses area interpolation
    big = cv2.resize(img, (480, 360), interpolation=cv2.INTER_NEAREST)
    box4 = FaceBox(200, 150, 120, 100, 0.9)
    win = big[200 - 90:200 + 90, 260 - 90:260 + 90]  # centre (260, 200), side 180: inside
    np.testing.assert_array_equal(centred_square_crop(big, box4, 1.5, 128),
                                  cv2.resize(win, (128, 128), interpolation=cv2.INTER_AREA))


def test_crop_outside_image_is_refused(rng):
    img = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        centred_square_crop(img, FaceBox(500, 500, 10, 10, 0.9), 1.5, 128)
    with pytest.raises(ValueError):
        centred_square_crop(img, FaceBox(10, 10, 10, 10, 0.9), 0.0, 128)


def test_rgb_order_and_unit_scale(minifas):
    crop = np.zeros((1, 128, 128, 3), np.uint8)
    crop[..., 0] = 255  # blue in facelive's BGR frames
    x = minifas.preprocess(crop)
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 2], 1.0)  # the network's third (blue) channel
    np.testing.assert_allclose(x[0, :2], 0.0)


def test_live_probability_is_softmax_of_real(minifas, rng):
    crops = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    raw = minifas._session.run(None, {minifas._input: minifas.preprocess(crops)})[0]
    softmax = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(minifas.predict_crops(crops), softmax[:, 0], rtol=1e-5)


def test_no_face_and_wrong_crop(minifas, rng):
    frame = Frame(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert minifas.score(frame).status == "no_face"
    with pytest.raises(ValueError):
        minifas.predict_crops(np.zeros((1, 64, 64, 3), np.uint8))


def test_golden_score_on_the_example():
    """P(live) of the shipped example through the pipeline (detector box, crop at the card's
    context, graph):
    ``facelive check examples/astronaut.jpg --tests minifas --format json``."""
    from facelive.pipeline import Pipeline

    with Pipeline(["minifas"], fusion=None) as pipe:
        result = pipe.check(str(REPO / "examples" / "astronaut.jpg"))
    assert result.tests["minifas"].status == "ok"
    assert result.tests["minifas"].score == pytest.approx(0.987290, abs=1e-5)
