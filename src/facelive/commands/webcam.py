"""``facelive webcam``: live liveness overlay on a camera or a video file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "webcam", help="live overlay of liveness decisions on a camera or video",
        description=("Read a camera (or a video file), run the liveness pipeline on its frames and "
                     "show the smoothed verdict, the face box and each test's score in a window "
                     "(q or Esc quits), write the annotated video (--out) and/or print one JSON "
                     "line per analysed frame (--jsonl). Exit status: 0 at the end of the stream, "
                     "2 for usage errors or a source that cannot be opened."))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    src.add_argument("--video", type=Path, default=None, help="read this video file instead")
    p.add_argument("--tests", default=None,
                   help="comma-separated tests (default: cnn,probe,minifas, fused)")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame (default 1)")
    p.add_argument("--smooth", type=int, default=5,
                   help="smooth the verdict over the last N analysed frames (default 5)")
    p.add_argument("--out", type=Path, default=None, help="write the annotated video (.avi, .mp4)")
    p.add_argument("--jsonl", action="store_true", help="print each analysed frame's result")
    p.add_argument("--no-window", action="store_true", help="do not open a window")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"facelive webcam: error: {message}", file=sys.stderr)
    return 2


def _has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    import cv2

    from facelive.errors import FaceliveError
    from facelive.liveness.registry import parse_test_names, unknown_tests_message
    from facelive.overlay import analyse_stream, draw_overlay, verdict
    from facelive.pipeline import Pipeline

    if args.every < 1 or args.smooth < 1 or (args.max_frames is not None and args.max_frames < 1):
        return _error("--every, --smooth and --max-frames must be >= 1")
    window = not args.no_window and _has_display()
    if not window and args.out is None and not args.jsonl:
        return _error("no display to show a window: use --out FILE and/or --jsonl")
    if args.out is not None and args.out.suffix.lower() not in FOURCC:
        return _error(f"--out must end in {', '.join(FOURCC)}")
    names = parse_test_names(args.tests)
    if args.tests and (problem := unknown_tests_message(names or [])):
        return _error(problem)
    if args.video is not None:
        if not args.video.is_file():
            return _error(f"{args.video} is not a file")
        capture = cv2.VideoCapture(str(args.video))
        source = str(args.video)
    else:
        capture = cv2.VideoCapture(args.camera)
        source = f"camera {args.camera}"
    if not capture.isOpened():
        return _error(f"cannot open {source}")
    try:
        pipe = Pipeline(names)
    except FaceliveError as exc:
        capture.release()
        return _error(f"cannot load the models: {exc}")
    writer: Any = None
    size = (0, 0)
    counts = {"live": 0, "spoof": 0, "unknown": 0}
    frames = analysed = 0
    try:
        with pipe:
            for frame in analyse_stream(capture, pipe, every=args.every, smooth=args.smooth,
                                        max_frames=args.max_frames):
                frames += 1
                v = verdict(frame.result, frame.smoothed)
                counts[v] += 1
                if frame.analysed:
                    analysed += 1
                    if args.jsonl:
                        print(json.dumps({"frame": frame.index, "verdict": v,
                                          "smoothed_margin": frame.smoothed.value,
                                          **frame.result.to_dict()}), flush=True)
                if not window and writer is None and args.out is None:
                    continue
                image = draw_overlay(frame)
                if args.out is not None:
                    if writer is None:
                        fps = capture.get(cv2.CAP_PROP_FPS) or 15.0
                        h, w = image.shape[:2]
                        writer = cv2.VideoWriter(
                            str(args.out),
                            cv2.VideoWriter_fourcc(*FOURCC[args.out.suffix.lower()]),
                            fps if 1 <= fps <= 240 else 15.0, (w, h))
                        if not writer.isOpened():
                            return _error(f"cannot write {args.out}")
                        size = (w, h)
                    if image.shape[1::-1] != size:  # a camera may change resolution mid-stream
                        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                    writer.write(image)
                if window:
                    cv2.imshow("facelive", image)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if window:
            cv2.destroyAllWindows()
    print(f"{source}: {frames} frames, {analysed} analysed; verdicts: "
          + ", ".join(f"{k} {n}" for k, n in counts.items()), file=sys.stderr)
    if frames == 0:
        return _error(f"no frame could be read from {source}")
    return 0
