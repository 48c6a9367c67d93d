"""`facelive check`: output contract (text, json, jsonl), bad files, exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "astronaut.jpg"
KEYS = {"schema_version", "path", "decision", "score", "threshold", "reason", "reason_code",
        "face_count", "tests", "face", "face_ms", "ms", "error", "error_code"}


def _jsonl(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_jsonl_contract_and_bad_files(tmp_path, capsys) -> None:
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "face.jpg").write_bytes(EXAMPLE.read_bytes())
    (folder / "broken.jpg").write_bytes(EXAMPLE.read_bytes()[:2000])
    (folder / "empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((10, 10, 3), np.uint8))
    rc = main(["check", "--tests", "quality", "--format", "jsonl", str(folder)])
    rows = {Path(r["path"]).name: r for r in _jsonl(capsys)}
    assert rc == 1  # some files failed
    assert set(rows) == {"face.jpg", "broken.jpg", "empty.png", "tiny.png"}
    for r in rows.values():
        assert set(r) == KEYS and r["schema_version"] == "2"  # a file's object has its path
    good = rows["face.jpg"]
    assert good["error"] is None and good["decision"] in ("live", "spoof")
    assert good["reason"] is None and good["reason_code"] is None
    assert good["face_count"] is None  # the quality test needs no face: none was looked for
    assert 0.0 <= good["score"] <= 1.0
    t = good["tests"]["quality"]
    assert t["status"] == "ok" and t["score"] == good["score"] and t["ms"] > 0
    assert t["threshold"] == good["threshold"]  # one test: its own operating point decides
    assert t["verdict"] == good["decision"]
    for name in ("broken.jpg", "empty.png", "tiny.png"):
        assert rows[name]["decision"] == "unknown" and rows[name]["score"] is None
        assert rows[name]["error"] and rows[name]["reason_code"] == "unreadable_image"
        assert rows[name]["error_code"] and rows[name]["tests"] == {}
    assert rows["broken.jpg"]["error_code"] == "truncated_image"


def test_exit_zero_and_json_object(capsys) -> None:
    assert main(["check", "--tests", "quality", "--format", "json", str(EXAMPLE)]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert isinstance(obj, dict) and KEYS <= set(obj)


def test_text_table(capsys) -> None:
    assert main(["check", "--tests", "quality", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "astronaut.jpg" in out and "decision" in out


def test_usage_errors_exit_2() -> None:
    assert main(["check", "--tests", "nonsense", str(EXAMPLE)]) == 2
    with pytest.raises(SystemExit) as e:
        main(["check", "--format", "xml", str(EXAMPLE)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["check"])
    assert e.value.code == 2


def test_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "facelive", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("facelive ")


def test_default_tests_report_face_and_all_scores(capsys) -> None:
    """Default run: every available test's own score next to the fused score, plus the face box."""
    rc = main(["check", "--format", "json", str(EXAMPLE)])
    obj = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(obj["tests"]) == {"cnn", "probe", "minifas"}
    assert obj["face"] is not None and obj["face"]["w"] > 50
    assert obj["decision"] in ("live", "spoof")


def test_two_real_faces_get_no_decision(tmp_path, capsys) -> None:
    """A live face beside a second face (here the example and its mirror image): one person per
    check, so no decision unless --faces largest is asked for."""
    image = cv2.imread(str(EXAMPLE))
    cv2.imwrite(str(tmp_path / "two.png"), np.concatenate([image, image[:, ::-1]], axis=1))
    assert main(["check", "--format", "jsonl", str(tmp_path / "two.png")]) == 0
    (row,) = _jsonl(capsys)
    assert row["decision"] == "unknown" and row["reason"] == "multiple faces (2)"
    assert row["reason_code"] == "multiple_faces" and row["face_count"] == 2
    assert row["face"] is None and row["score"] is None and row["threshold"] is None
    assert main(["check", "--format", "jsonl", "--faces", "largest",
                 str(tmp_path / "two.png")]) == 0
    (row,) = _jsonl(capsys)
    assert row["decision"] in ("live", "spoof") and row["face"] is not None


@pytest.mark.slow
def test_dask_engine_prints_the_single_process_jsonl(tmp_path, capsys) -> None:
    """``--engine dask`` (a local cluster of 2 worker processes, one image per task so that the
    chunks finish out of order) prints the same JSON lines in the same order as the
    single-process run; only the timings (``ms``) may differ."""
    pytest.importorskip("distributed", reason="the scale extra (dask) is not installed")
    folder = tmp_path / "imgs"
    folder.mkdir()
    image = cv2.imread(str(EXAMPLE))
    cv2.imwrite(str(folder / "a_face.jpg"), image)
    cv2.imwrite(str(folder / "b_mirrored.png"), image[:, ::-1])
    cv2.imwrite(str(folder / "c_small.jpg"), cv2.resize(image, None, fx=0.5, fy=0.5))
    cv2.imwrite(str(folder / "d_blank.png"), np.full((240, 320, 3), 128, np.uint8))  # no face
    cv2.imwrite(str(folder / "e_two.jpg"), np.hstack([image, image]))  # two faces: refused
    (folder / "f_broken.jpg").write_bytes(EXAMPLE.read_bytes()[:2000])

    def lines(*engine: str) -> list[dict]:
        rc = main(["check", "--format", "jsonl", str(folder), *engine])
        assert rc == 1  # f_broken.jpg
        rows = _jsonl(capsys)
        for r in rows:
            r.pop("ms"), r.pop("face_ms")
            for t in r["tests"].values():
                t.pop("ms")
        return rows

    local = lines()
    assert [Path(r["path"]).name[0] for r in local] == list("abcdef")
    assert {r["reason_code"] for r in local} >= {"no_face", "multiple_faces", "unreadable_image"}
    assert lines("--engine", "dask", "--workers", "2", "--chunk-size", "1") == local
