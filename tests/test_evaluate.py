"""Evaluation harness: evaluate_scores, the scoring loop, `facelive evaluate` (fake pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import facelive.pipeline
from facelive.cli import main
from facelive.datasets import Sample, open_dataset
from facelive.evaluation import evaluate_scores, run_evaluation
from facelive.evaluation.evaluate import video_scores
from facelive.types import FaceBox, LivenessResult, TestResult


class FakePipeline:
    """P(live) = mean grey level / 255; images darker than 20 get no decision."""

    threshold = 0.5
    test_names = ["fake"]

    def __init__(self, tests=None, **kw) -> None:
        self.calls = 0

    def check(self, image: np.ndarray) -> LivenessResult:
        self.calls += 1
        m = float(image.mean()) / 255
        if m < 20 / 255:
            return LivenessResult(None, "unknown", None, None, {}, None, 0.0, 1.0,
                                  reason="no face found")
        return LivenessResult(None, "live" if m >= self.threshold else "spoof", m,
                              self.threshold, {"fake": TestResult(m, "ok", 1.0)},
                              FaceBox(0, 0, 40, 40, 0.9), 0.0, 1.0)

    def close(self) -> None:
        pass


def _jpg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 40, 3), value, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])


def _replay_tree(root: Path) -> None:
    """Replay-Attack frame folders: 2 live videos, 1 print + 1 mobile video, 2 frames each."""
    for split, shift in (("devel", 0), ("test", 10)):
        for v, vals in (("client001_session01_webcam_authenticate_controlled_1", (200, 90)),
                        ("client002_session01_webcam_authenticate_adverse_1", (180, 170))):
            for i, val in enumerate(vals):
                _jpg(root / split / "real" / v / f"frame_{i:05d}.jpg", val - shift)
        for v, vals in (("attack_print_client001_session01_highdef_photo_adverse", (60, 140)),
                        ("attack_mobile_client002_session01_mobile_video_adverse", (100, 10))):
            for i, val in enumerate(vals):
                _jpg(root / split / "attack" / "fixed" / v / f"frame_{i:05d}.jpg", val)


def _s(label: str, group: str, atype: str | None = None) -> Sample:
    return Sample(key=f"{group}-{id(label)}", label=label, attack_type=atype, subject="s",
                  group=group, split="test")


def test_evaluate_scores_frame_and_video() -> None:
    samples = [_s("live", "v1"), _s("live", "v1"), _s("spoof", "a1", "print"),
               _s("spoof", "a1", "print"), _s("spoof", "a2", "mobile")]
    scores = [0.9, 0.3, 0.4, 0.7, None]
    m = evaluate_scores(scores, samples, 0.5)
    assert m["threshold"] == 0.5
    assert m["frame"]["BPCER"] == 0.5 and m["frame"]["APCER"] == {"mobile": None, "print": 0.5}
    assert m["frame"]["n_no_decision"] == 1
    # video level: v1 -> 0.6 (live, accepted), a1 -> 0.55 (accepted), a2 -> no decision
    v = m["video"]
    assert v["n_live"] == 1 and v["n_spoof"] == 1 and v["n_no_decision"] == 1
    assert v["BPCER"] == 0.0 and v["APCER"]["print"] == 1.0
    assert video_scores(scores, samples)[0] == pytest.approx([0.6, 0.55, None])
    assert evaluate_scores([0.1], [_s("live", "x")], 0.5)["video"] is None
    with pytest.raises(ValueError):
        evaluate_scores([0.1, 0.2], [_s("live", "x")], 0.5)
    with pytest.raises(ValueError):
        evaluate_scores([0.1, 0.2], [_s("live", "x"), _s("spoof", "x", "print")], 0.5)
    with pytest.raises(ValueError):
        evaluate_scores([0.1], [_s("live", "x")], float("nan"))


def test_run_evaluation_writes_outputs(tmp_path: Path) -> None:
    _replay_tree(tmp_path / "ra")
    ds = open_dataset("replay-attack", tmp_path / "ra", split="test")
    ref = open_dataset("replay-attack", tmp_path / "ra", split="devel")
    pipe = FakePipeline()
    out = tmp_path / "out"
    res = run_evaluation(ds, pipe, out, threshold_from=ref, progress=False)
    assert pipe.calls == 16  # 8 test + 8 devel frames
    files = {p.name for p in out.iterdir()}
    assert {"metrics.json", "report.md", "scores.csv", "roc.png", "det.png", "hist.png",
            "roc_video.png", "det_video.png", "hist_video.png"} <= files
    m = json.loads((out / "metrics.json").read_text())
    for level in ("frame", "video"):
        for key in ("APCER", "APCER_max", "BPCER", "ACER", "EER", "AUC", "n_live", "n_spoof",
                    "n_no_decision", "HTER"):
            assert key in m[level]
    # devel frame scores: live {200,90,180,170}/255, attacks {60,140,100}/255 (+ 10: no decision)
    # FAR == FRR never; closest: t=140 (FAR 1/3, FRR 1/4) -> midpoint (140+100)/2
    assert m["threshold"] == pytest.approx(120 / 255, abs=2e-3)
    assert m["threshold_source"] == "EER threshold of devel"
    assert m["frame"]["n_no_decision"] == 1 and m["errors"] == {"no face found": 1}
    assert m["frame"]["n_live"] == 4 and set(m["frame"]["APCER"]) == {"print", "mobile"}
    assert m["video"]["n_live"] == 2 and m["video"]["n_spoof"] == 2
    assert m["timing"]["n_timed"] == 8 and m["timing"]["per_image_ms_p90"] is not None
    assert res["frame"] == m["frame"]
    report = (out / "report.md").read_text()
    assert "| APCER print (%) |" in report and "![roc.png](roc.png)" in report
    assert len((out / "scores.csv").read_text().strip().splitlines()) == 9
    # same split as reference: scored once
    pipe2 = FakePipeline()
    run_evaluation(ref, pipe2, tmp_path / "o2", threshold_from=ref, progress=False, plots=False)
    assert pipe2.calls == 8


def test_run_evaluation_reports_unreadable_samples(tmp_path: Path) -> None:
    _jpg(tmp_path / "f" / "live" / "a.jpg", 200)
    _jpg(tmp_path / "f" / "spoof" / "print" / "b.jpg", 50)
    (tmp_path / "f" / "spoof" / "print" / "c.jpg").write_bytes(b"")
    ds = open_dataset("folder", tmp_path / "f")
    res = run_evaluation(ds, FakePipeline(), tmp_path / "out", progress=False)
    assert res["threshold_source"] == "shipped" and res["video"] is None
    assert res["errors"] == {"empty_image": 1} and res["frame"]["n_no_decision"] == 1
    assert res["frame"]["ACER"] == 0.0


def test_cli_evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(facelive.pipeline, "Pipeline", FakePipeline)
    _replay_tree(tmp_path / "ra")
    out = tmp_path / "out"
    rc = main(["evaluate", "--dataset", "replay-attack", "--root", str(tmp_path / "ra"),
               "--split", "test", "--tests", "fake", "--threshold", "0.5", "--out", str(out),
               "--quiet"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["threshold"] == 0.5 and "frame" in printed and "video" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["threshold_source"] == "given" and m["tests"] == ["fake"]
    assert m["command"].startswith("facelive evaluate --dataset replay-attack")
    assert m["timing"]["model_load_s"] >= 0
    # usage errors exit 2
    assert main(["evaluate", "--dataset", "replay-attack", "--root", str(tmp_path / "nope"),
                 "--out", str(out)]) == 2
    assert main(["evaluate", "--dataset", "replay-attack", "--root", str(tmp_path / "ra"),
                 "--threshold-from", "devel", "--out", str(out)]) == 2
    assert main(["evaluate", "--dataset", "nuaa", "--root", str(tmp_path / "ra"),
                 "--frame-step", "3", "--out", str(out)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--dataset", "casia", "--root", ".", "--out", str(out)])
    assert exc.value.code == 2


@pytest.mark.data
def test_evaluate_shared_replay_devel_subset(shared_data: Path, tmp_path: Path) -> None:
    ds = open_dataset("replay-attack", shared_data / "replay-attack", split="devel")
    res = run_evaluation(ds, FakePipeline(), tmp_path, progress=False, plots=False, limit=40)
    assert res["n_samples"] == 40 and res["n_groups"] == 8  # whole videos of 5 frames
    assert res["frame"]["n_live"] + res["frame"]["n_spoof"] + res["frame"]["n_no_decision"] == 40


def test_comparison_table_rows_and_columns() -> None:
    from facelive.evaluation import comparison_table

    samples = [_s("live", "a"), _s("spoof", "b", "print"), _s("spoof", "c", "mobile")]
    r = evaluate_scores([0.9, 0.7, 0.1], samples, 0.5)
    table = comparison_table([("run", r)], show_threshold=True, show_no_decision=True)
    head, rule, row = table.splitlines()
    assert head.startswith("| evaluation | threshold | APCER mobile | APCER print | APCER max")
    assert rule.count("---") == head.count("|") - 1
    # print accepted (0.7 >= 0.5), mobile rejected; ACER = (100 + 0) / 2; scores separate: EER 0
    assert row == ("| run | 0.5000 | 0.0% | 100.0% | 100.0% | 0.0% | 50.0% | 0.0% | 1.000 "
                   "| 1/2 | 0 |")
    assert comparison_table([("run", r)], "video").count("\n") == 1  # no video level: header only


def test_conditions_transform_samples() -> None:
    from facelive.evaluation.conditions import CONDITIONS, parse_conditions, transformed, web_client

    img = (np.random.default_rng(0).random((480, 1280, 3)) * 255).astype(np.uint8)
    s = Sample("k", "live", None, "s", "k", "devel", loader=lambda: img)
    assert transformed([s], "original")[0] is s
    assert transformed([s], "scale0.5")[0].load().shape == (240, 640, 3)
    assert transformed([s], "scale2")[0].load().shape == (960, 2560, 3)
    assert web_client(img).shape == (240, 640, 3)  # at most 640 px on the long side
    j = transformed([s], "jpeg70")[0].load()
    assert j.shape == img.shape and not np.array_equal(j, img)
    phone = transformed([s], "phone")[0].load()
    assert phone.shape == (720, 1920, 3)  # 1920 px on the long side
    portrait = transformed([s], "phone-portrait")[0].load()
    assert portrait.shape == (1920, 1080, 3)  # upright after the EXIF rotation
    column = img[:, (1280 - 270) // 2:(1280 - 270) // 2 + 270]
    upright = cv2.resize(column, (1080, 1920), interpolation=cv2.INTER_CUBIC)
    # same orientation as the scene (a wrong rotation would not match at all)
    assert np.abs(portrait.astype(int) - upright).mean() < 25
    assert parse_conditions(None) == list(CONDITIONS) == parse_conditions("all")
    assert parse_conditions("web, jpeg85") == ["web", "jpeg85"]
    with pytest.raises(ValueError):
        parse_conditions("jpeg50")


def test_decision_flips() -> None:
    from facelive.evaluation.conditions import decision_flips

    assert decision_flips([0.9, 0.1, None, 0.6], [0.8, 0.7, None, None], 0.5) == 0.5
    assert decision_flips([], [], 0.5) is None


def test_cli_evaluate_conditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(facelive.pipeline, "Pipeline", FakePipeline)
    _replay_tree(tmp_path / "ra")
    out = tmp_path / "out"
    rc = main(["evaluate", "--dataset", "replay-attack", "--root", str(tmp_path / "ra"),
               "--split", "test", "--tests", "fake", "--conditions", "original,jpeg70,scale2",
               "--out", str(out), "--quiet"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["original", "jpeg70", "scale2"]
    res = json.loads((out / "conditions.json").read_text())
    assert res["threshold"] == 0.5 and res["command"].startswith("facelive evaluate")
    frame = res["conditions"]["original"]["decision"]["frame"]
    assert frame["n_live"] == 4 and frame["n_no_decision"] == 1  # one attack frame too dark
    table = (out / "conditions.md").read_text()
    assert "| jpeg70 | decision (fused) | 0.5000 |" in table
    assert (out / "conditions.png").stat().st_size > 0
    assert res["conditions"]["original"]["decision"]["flips"] == 0.0
    assert 0.0 <= res["conditions"]["jpeg70"]["decision"]["flips"] <= 1.0
    assert main(["evaluate", "--dataset", "replay-attack", "--root", str(tmp_path / "ra"),
                 "--conditions", "jpeg50", "--out", str(out)]) == 2
    assert main(["evaluate", "--dataset", "replay-attack", "--root", str(tmp_path / "ra"),
                 "--split", "test", "--conditions", "--threshold-from", "devel",
                 "--out", str(out)]) == 2
