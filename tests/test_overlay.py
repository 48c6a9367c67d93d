"""The live overlay: stream analysis, drawing, and `facelive webcam` on a generated video."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.cli import main
from facelive.overlay import (
    COLOURS,
    StreamFrame,
    analyse_stream,
    draw_overlay,
    margin,
    verdict,
)
from facelive.types import FaceBox, LivenessResult, TestResult
from facelive.video import SmoothedDecision
from helpers import StubPipeline

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


class ListCapture:
    """A stand-in for cv2.VideoCapture over a list of frames."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = list(frames)

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)


def stub() -> StubPipeline:
    """Scores frames by their mean grey level; a frame darker than 10 has no face, one of exactly
    100 has a face but no decision (as when a test has no score under `abstain`)."""
    return StubPipeline(no_face_below=10, undecided_at=100)


def _frames(*levels: int) -> list[np.ndarray]:
    return [np.full((120, 160, 3), v, np.uint8) for v in levels]


def test_stream_smooths_and_resets_on_lost_face():
    pipe = stub()
    out = list(analyse_stream(ListCapture(_frames(200, 200, 60, 0, 60)), pipe, smooth=3))
    assert [f.index for f in out] == [0, 1, 2, 3, 4]
    assert [verdict(f.result, f.smoothed) for f in out] == ["live", "live", "live", "unknown",
                                                            "spoof"]
    # frame 2 alone is spoof, but the mean of (0.78, 0.78, 0.24) stays live: smoothing
    assert out[2].result.decision == "spoof" and out[2].smoothed.live is True
    # the face was lost at frame 3, so frame 4 starts a new stream
    assert out[4].smoothed.frames == 1


def test_a_frame_without_decision_never_shows_the_previous_verdict():
    out = list(analyse_stream(ListCapture(_frames(200, 200, 100, 200)), stub()))
    assert [verdict(f.result, f.smoothed) for f in out] == ["live", "live", "unknown", "live"]


def test_margins_use_each_frames_own_threshold():
    # P(live) 0.3 is live at threshold 0.2 and spoof at 0.5: the margin says so
    def result(decision, score, threshold):
        return LivenessResult(None, decision, score, threshold, {}, None, 0.0, 0.0)

    assert margin(result("live", 0.3, 0.2)) > 0
    assert margin(result("spoof", 0.3, 0.5)) < 0
    assert margin(result("live", 0.1, None)) == 1.0  # all-live rule
    assert margin(result("unknown", None, None)) is None


def test_stream_analyses_every_nth_frame_and_stops():
    pipe = stub()
    out = list(analyse_stream(ListCapture(_frames(*[200] * 7)), pipe, every=3, max_frames=6))
    assert len(out) == 6 and pipe.calls == 2
    assert [f.analysed for f in out] == [True, False, False, True, False, False]
    assert out[1].result is out[0].result  # skipped frames carry the latest result
    with pytest.raises(ValueError):
        next(analyse_stream(ListCapture([]), pipe, every=0))


def test_grey_frames_are_accepted():
    pipe = stub()
    grey = np.full((120, 160), 200, np.uint8)
    (f,) = analyse_stream(ListCapture([grey]), pipe)
    assert f.image.shape == (120, 160, 3)


def test_overlay_draws_the_verdict_colour_and_leaves_the_frame_alone():
    img = np.full((240, 320, 3), 128, np.uint8)
    result = LivenessResult(None, "live", 0.8, 0.5, {"t": TestResult(0.8, "ok", 1.0)},
                            FaceBox(200, 120, 80, 80, 0.9), 1.0, 2.0)
    frame = StreamFrame(0, img, result, True, SmoothedDecision(0.8, True, 1), 4.0)
    out = draw_overlay(frame)
    assert out.shape == img.shape and np.all(img == 128)
    assert tuple(out[160, 280]) == COLOURS["live"]  # the face box's right edge
    assert tuple(out[160, 240]) == (128, 128, 128)  # inside the box: untouched
    spoof = draw_overlay(StreamFrame(0, img, result, True, SmoothedDecision(0.1, False, 1), 4.0))
    assert tuple(spoof[160, 280]) == COLOURS["spoof"]
    empty = draw_overlay(StreamFrame(0, img, None, False, SmoothedDecision(None, None, 0), 0.0))
    assert empty.shape == img.shape  # before the first analysis: text only


def _video(path: Path, frames: list[np.ndarray]) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_webcam_command_on_a_video(tmp_path, capsys, rng):
    face = cv2.resize(cv2.imread(str(EXAMPLE)), (640, 480))
    noise = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(2)]
    src = _video(tmp_path / "in.avi", [face] * 3 + noise)
    out = tmp_path / "out.avi"
    rc = main(["webcam", "--video", str(src), "--tests", "cnn", "--no-window", "--jsonl",
               "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in captured.out.splitlines()]
    assert [x["frame"] for x in lines] == [0, 1, 2, 3, 4]
    assert all(x["face"] is not None for x in lines[:3])
    assert [x["verdict"] for x in lines[3:]] == ["unknown", "unknown"]
    assert lines[3]["reason"] == "no face found"
    assert "5 frames, 5 analysed" in captured.err
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5
    ok, first = cap.read()
    assert ok and first.shape == (480, 640, 3)


@pytest.mark.parametrize("args, message", [
    (["--camera", "99", "--jsonl"], "cannot open camera 99"),
    (["--video", "/nonexistent.avi", "--jsonl"], "is not a file"),
    (["--video", "x.avi", "--no-window"], "no display"),
    (["--video", "x.avi", "--out", "x.gif"], "--out must end in"),
    (["--video", "x.avi", "--jsonl", "--every", "0"], "must be >= 1"),
    (["--video", "x.avi", "--jsonl", "--tests", "nope"], "unknown test"),
])
def test_webcam_usage_errors(args, message, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["webcam", *args]) == 2
    assert message in capsys.readouterr().err


def test_unreadable_video_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF not really a video")
    assert main(["webcam", "--video", str(bad), "--jsonl", "--tests", "cnn"]) == 2
    assert "bad.avi" in capsys.readouterr().err
