"""``facelive challenge new | simulate | verify``: exit 0 on a decision, 1 on bad
input, 2 on usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facelive.challenge.sequence import Challenge
from facelive.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    """A challenge and a clip simulated from examples/astronaut.jpg, through the CLI."""
    tmp = tmp_path_factory.mktemp("clip")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["challenge", "new"]) == 0
    seq = tmp / "sequence.json"
    seq.write_text(out.getvalue())
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["challenge", "simulate", "--image", str(REPO / "examples" / "astronaut.jpg"),
                     "--sequence", str(seq), "--out", str(tmp / "frames"), "--fps", "10"]) == 0
    return tmp, seq


def test_new_prints_a_valid_challenge(recorded) -> None:
    _, seq = recorded
    ch = Challenge.from_json(seq.read_text())
    assert ch.mode == "flash" and len(ch.steps) == 10


def test_verify_prints_the_report(recorded, capsys) -> None:
    tmp, seq = recorded
    frames = tmp / "frames"
    code = main(["challenge", "verify", "--frames", str(frames), "--timestamps",
                 str(frames / "timestamps.json"), "--sequence", str(seq), "--no-passive",
                 "--no-curve"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "live", report["reasons"]
    assert report["colour"]["passed"] and "curve" not in report["colour"]
    assert len(report["frames_sha256"]) == report["frames"]


def test_verify_against_another_sequence_is_a_decision(recorded, tmp_path, capsys) -> None:
    tmp, _ = recorded
    other = tmp_path / "other.json"
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as buf:
        main(["challenge", "new"])
    other.write_text(buf.getvalue())
    frames = tmp / "frames"
    code = main(["challenge", "verify", "--frames", str(frames), "--timestamps",
                 str(frames / "timestamps.json"), "--sequence", str(other), "--no-passive"])
    assert code == 0  # a decision (spoof) is not an error
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "spoof"


def test_bad_input_and_usage(recorded, tmp_path, capsys) -> None:
    tmp, seq = recorded
    frames = tmp / "frames"
    stamps = json.loads((frames / "timestamps.json").read_text())
    short = tmp_path / "short.json"
    short.write_text(json.dumps(stamps[:-1]))
    base = ["challenge", "verify", "--frames", str(frames), "--no-passive"]
    assert main(base + ["--timestamps", str(short), "--sequence", str(seq)]) == 1
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert main(base + ["--timestamps", str(junk), "--sequence", str(seq)]) == 1
    assert main(base + ["--timestamps", str(frames / "timestamps.json"),
                        "--sequence", str(junk)]) == 1
    red = json.loads(seq.read_text())
    red["steps"][1]["colour"] = [255, 0, 0]
    redf = tmp_path / "red.json"
    redf.write_text(json.dumps(red))
    assert main(base + ["--timestamps", str(frames / "timestamps.json"),
                        "--sequence", str(redf)]) == 1
    assert main(["challenge", "verify", "--frames", str(tmp_path / "nowhere"), "--timestamps",
                 str(short), "--sequence", str(seq)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["challenge", "verify", "--frames", str(frames)])
    assert exc.value.code == 2
    capsys.readouterr()
