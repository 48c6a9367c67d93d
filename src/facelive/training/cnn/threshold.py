"""The CNN test's operating point: ``facelive train cnn-threshold`` (also the last step of
``facelive train cnn``).

Scores Replay-Attack devel end to end (detection + crop + ONNX network on the original frames,
:func:`facelive.training.cnn.evaluate.score_samples_e2e`; a frame without a face counts as
rejected) and writes the frame-level EER threshold of those scores, rounded to 6 decimals, into
the model's card (``cnn.json``, checksum updated). Devel is the only set thresholds are tuned on.
Works without torch: it only needs the exported ONNX model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facelive.datasets import Sample


def devel_samples(replay_root: str | Path) -> list[Sample]:
    """Replay-Attack devel, as :func:`facelive.training.cnn.data.list_samples` lists it."""
    from facelive.training.cnn.data import list_samples

    return list_samples(None, Path(replay_root), ra_splits=("devel",))


def score_devel(test: Any, samples: Sequence[Sample], *, progress: bool = True
                ) -> tuple[Any, float]:
    """End-to-end P(live) of ``samples`` (NaN: no face) and the detector's confidence cut."""
    from facelive.face.detection import FaceDetector
    from facelive.training.cnn.evaluate import score_samples_e2e

    with FaceDetector() as det:
        if not progress:
            return score_samples_e2e(samples, test, det), det.min_confidence
        from rich.progress import Progress

        with Progress() as prog:
            task = prog.add_task("RA devel (end to end)", total=len(samples))

            def update(i: int, n: int) -> None:
                prog.update(task, completed=i)

            return score_samples_e2e(samples, test, det, update), det.min_confidence


def train_cnn_threshold(replay_root: str | Path | None = None, *, model: Path | None = None,
                        out_dir: Path | None = None, threads: int = 1,
                        samples: Sequence[Sample] | None = None,
                        progress: bool = True) -> dict[str, Any]:
    """Set the CNN model's threshold at the EER point of its end-to-end Replay-Attack devel
    scores; returns the report.

    ``model``: an ``.onnx`` file with its ``.json`` card beside it (default: the model the
    runtime would load, see :func:`facelive.modelstore.find_folder`). The card is rewritten in
    the model's folder, or, with ``out_dir``, the model and the new card are written there
    (the model's folder is then left alone). ``samples`` replaces the devel listing of
    ``replay_root`` (tests, other tuning sets).
    """
    from facelive import modelstore
    from facelive.liveness.cnn import CARD_FILE, MODEL_FILE, CNNTest
    from facelive.training.cnn.evaluate import report as metrics_report

    if samples is None:
        if replay_root is None:
            raise ValueError("give replay_root or samples")
        samples = devel_samples(replay_root)
    if model is None:
        folder, onnx_name, card_name = modelstore.find_folder(MODEL_FILE), MODEL_FILE, CARD_FILE
    else:
        folder, onnx_name = Path(model).parent, Path(model).name
        card_name = Path(model).with_suffix(".json").name
    test = CNNTest(folder / onnx_name, threads=threads)
    scores, min_conf = score_devel(test, samples, progress=progress)
    devel = metrics_report(samples, scores)  # threshold: the frame-level EER point
    card = modelstore.read_json(card_name, folder)
    previous = card.get("threshold")
    card["threshold"] = round(float(devel["threshold"]), 6)
    target = folder if out_dir is None else Path(out_dir)
    if out_dir is not None:
        modelstore.write_bytes(onnx_name, modelstore.read_bytes(onnx_name, folder), target)
    card_path = modelstore.write_json(card_name, card, target)
    return {
        "model": "cnn",
        "onnx": str(target / onnx_name),
        "card": str(card_path),
        "threshold": card["threshold"],
        "previous_threshold": previous,
        "threshold_from": "Replay-Attack devel, frame-level EER point (no face = rejected)",
        "face_min_confidence": min_conf,
        "ra_devel": devel,
        "info": {k: card.get(k) for k in ("name", "version", "context", "input_size")},
    }


def card_markdown(report: dict[str, Any], command: str) -> str:
    """A CNN card section with the numbers of ``facelive train cnn`` / ``cnn-threshold`` (the full
    card, with the cross-dataset study, is ``docs/model-cards/cnn.md``)."""
    from facelive.evaluation import comparison_table

    info = report["info"]
    rows = [(f"RA devel, end to end (threshold {report['threshold']:.4f})", report["ra_devel"])]
    hist = report.get("history") or []
    history = "".join(
        f"| {h['epoch']} | {h['loss']:.4f} | {h.get('eer_ra_devel', float('nan')):.4f} | "
        f"{h['seconds']} |\n" for h in hist)
    training = "" if not hist else f"""
Training ({report.get("device", "?")}; `{report.get("train_config")}`):

| epoch | loss | RA devel EER (cached crops) | seconds |
|---|---|---|---|
{history}"""
    return f"""# Model card section: `cnn` {info.get("version")}, `{Path(report["onnx"]).name}`

Operating point: live when P(live) >= **{report["threshold"]:.4f}**: {report["threshold_from"]};
face detector confidence cut {report["face_min_confidence"]}, {report["ra_devel"]["no_face"]} devel
frames without a face. Input {info.get("input_size")} px, crop context {info.get("context")}.
The full card, with the cross-dataset study: `docs/model-cards/cnn.md`.

**Reproduce:**

    {command}

{comparison_table(rows)}

Video level:

{comparison_table(rows, "video")}
{training}"""
