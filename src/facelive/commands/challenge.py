"""``facelive challenge``: draw a screen-colour challenge, verify a filmed clip against it,
simulate a clip from a still face, or run the injection attack suite (see ``docs/challenge.md``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# facelive.challenge.attacks.TIERS (not imported here: it loads OpenCV; a test keeps them equal)
ATTACK_TIERS = ("recorded", "tint", "still", "video", "informed", "live")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "challenge",
        help="screen-colour challenges: new, verify, simulate, attack",
        description="Server-issued screen-colour challenges. Exit status of verify: 0 "
                    "when the clip got a decision (live, spoof or unknown: read the JSON), 1 on "
                    "bad input (unreadable frames or JSON, counts that differ), 2 usage.",
    )
    csub = p.add_subparsers(dest="challenge_command", metavar="ACTION", required=True)

    n = csub.add_parser("new", help="print a new random challenge (JSON)")
    n.add_argument("--mode", choices=("flash", "steady"), default="flash",
                   help="steady: the non-flash mode (one colour; much weaker, opt-in)")
    n.add_argument("--steps", type=int, default=10, help="colour steps (flash mode)")
    n.set_defaults(func=run_new)

    v = csub.add_parser(
        "verify", help="verify a clip against a challenge; prints the report (JSON)",
        description="Verify frames filmed while a challenge played. Frames are read from DIR in "
                    "file-name order (name them so they sort: frame_0001.jpg ...); the "
                    "timestamps file is a JSON list of ms since the challenge started (or an "
                    "object with \"timestamps_ms\"), one per frame.")
    v.add_argument("--frames", required=True, metavar="DIR", help="folder of frame images")
    v.add_argument("--timestamps", required=True, metavar="FILE.json")
    v.add_argument("--sequence", required=True, metavar="FILE.json",
                   help="the challenge as issued (facelive challenge new / the session's)")
    v.add_argument("--tests", default=None,
                   help="passive tests to pool over the clip (default: the pipeline's)")
    v.add_argument("--no-passive", action="store_true",
                   help="skip the passive tests (the report marks them skipped)")
    v.add_argument("--elapsed-ms", type=float, default=None,
                   help="the server's own time from issuing the challenge to receiving the "
                        "frames (checks that the clip is not longer than that)")
    v.add_argument("--colour-threshold", type=float, default=None)
    v.add_argument("--latency-max-ms", type=float, default=None)
    v.add_argument("--no-curve", action="store_true", help="omit the latency search curve")
    v.set_defaults(func=run_verify)

    s = csub.add_parser("simulate", help="film a face under a challenge (synthetic clip)")
    s.add_argument("--image", required=True)
    s.add_argument("--sequence", required=True, metavar="FILE.json")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="writes frame_NNNN.jpg and timestamps.json here")
    s.add_argument("--latency-ms", type=float, default=150.0)
    s.add_argument("--strength", type=float, default=0.35,
                   help="the screen light's share at the face (0: a static image)")
    s.add_argument("--fps", type=float, default=12.0)
    s.add_argument("--model", choices=("live", "still"), default="live",
                   help="live: the realistic live simulation (the head turns a little, the "
                        "screen's light follows the face's shape; default); still: the still "
                        "image tinted on the face (what an attacker animating a photo sends)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run_simulate)

    a = csub.add_parser(
        "attack", help="run the injection attack suite: each tier's pass rate (a table)",
        description="Verify SESSIONS synthetic clips per tier, each under a new challenge, and "
                    "print how many came out live. Tiers: recorded (a recording under another "
                    "challenge), tint (a still tinted as a whole), still (simulate_clip of a "
                    "still), video (simulate_clip's tint on a moving face), informed (a "
                    "renderer with the live simulation's physics), live (the realistic live "
                    "simulation: not an attack). Faces: --image (default examples/astronaut.jpg) "
                    "and, with --data, one real frame per Replay-Attack devel live video.")
    a.add_argument("--tier", action="append", choices=("all",) + ATTACK_TIERS,
                   default=None,
                   help="repeatable (default: all)")
    a.add_argument("--sessions", type=int, default=20, help="per tier (default 20)")
    a.add_argument("--data", default=None, metavar="DIR",
                   help="the research data folder (../shared/data) for real face frames")
    a.add_argument("--image", action="append", default=None, metavar="PATH",
                   help="a face image to attack and to film (repeatable; default "
                        "examples/astronaut.jpg)")
    a.add_argument("--sources", type=int, default=20, help="at most this many faces")
    a.add_argument("--passive", action="store_true",
                   help="also pool the passive tests (default: the challenge's checks only)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a.set_defaults(func=run_attack)


def _err(msg: str) -> None:
    print(f"facelive challenge: error: {msg}", file=sys.stderr)


def run_new(args: argparse.Namespace) -> int:
    from facelive.challenge.sequence import ChallengeError, new_challenge

    try:
        ch = new_challenge(mode=args.mode, steps=args.steps)
    except ChallengeError as exc:
        _err(str(exc))
        return 2
    print(json.dumps(ch.to_dict(), indent=2))
    return 0


def _read_json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def _timestamps(data: Any) -> list[float]:
    if isinstance(data, dict):
        data = data.get("timestamps_ms", data.get("timestamps"))
    if not isinstance(data, list) or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) for t in data):
        raise ValueError("timestamps must be a JSON list of numbers (ms)")
    return [float(t) for t in data]


def run_verify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from facelive.challenge.sequence import Challenge, ChallengeError
    from facelive.challenge.verify import VerifyParams, verify_challenge
    from facelive.errors import FaceliveError
    from facelive.imageio import iter_image_paths

    for what, path, is_dir in (("--frames", args.frames, True),
                               ("--timestamps", args.timestamps, False),
                               ("--sequence", args.sequence, False)):
        if (Path(path).is_dir() if is_dir else Path(path).is_file()) is False:
            _err(f"{what}: {path} is not a {'folder' if is_dir else 'file'}")
            return 2
    params = VerifyParams()
    if args.colour_threshold is not None:
        params = replace(params, colour_threshold=args.colour_threshold)
    if args.latency_max_ms is not None:
        params = replace(params, latency_max_ms=args.latency_max_ms)
    try:
        challenge = Challenge.from_dict(_read_json(args.sequence))
        stamps = _timestamps(_read_json(args.timestamps))
    except (ValueError, ChallengeError, OSError) as exc:
        _err(str(exc))
        return 1
    paths = iter_image_paths([args.frames])
    if not paths:
        _err(f"no images in {args.frames}")
        return 1
    if len(paths) != len(stamps):
        _err(f"{len(paths)} frames but {len(stamps)} timestamps")
        return 1
    pipeline = None
    if not args.no_passive:
        from facelive.liveness.registry import parse_test_names, unknown_tests_message
        from facelive.pipeline import Pipeline

        names = parse_test_names(args.tests)
        if args.tests and (problem := unknown_tests_message(names or [])):
            _err(problem)
            return 2
        try:
            pipeline = Pipeline(names)
        except FaceliveError as exc:
            _err(f"cannot load the models: {exc}")
            return 1
    try:
        report = verify_challenge([str(p) for p in paths], stamps, challenge, pipeline=pipeline,
                                  params=params, elapsed_ms=args.elapsed_ms)
    except (ValueError, FaceliveError, OSError) as exc:
        _err(str(exc))
        return 1
    finally:
        if pipeline is not None:
            pipeline.close()
    out = report.to_dict()
    if args.no_curve:
        out["colour"].pop("curve", None)
    print(json.dumps(out, indent=2))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from facelive.challenge.sequence import Challenge, ChallengeError
    from facelive.challenge.simulate import simulate_clip, simulate_live_clip
    from facelive.errors import FaceliveError
    from facelive.face.detection import FaceDetector
    from facelive.imageio import load_image

    try:
        challenge = Challenge.from_dict(_read_json(args.sequence))
        image = load_image(args.image)
    except (ValueError, ChallengeError, OSError, FaceliveError) as exc:
        _err(str(exc))
        return 1
    from facelive.face.mesh import FaceMesher, MeshNotFound

    with FaceDetector() as det, FaceMesher() as mesher:
        box = det.detect(image)
        verts = None
        if box is not None and args.model == "live":
            try:
                v, _ = mesher.reconstruct(image, box)
                verts = mesher.to_image(v, image.shape, box)
            except MeshNotFound:
                box = None
    if box is None:
        _err(f"no face in {args.image}")
        return 1
    rng = np.random.default_rng(args.seed)
    if verts is not None:
        frames, stamps = simulate_live_clip(image, box, challenge, verts, fps=args.fps,
                                            latency_ms=args.latency_ms, strength=args.strength,
                                            rng=rng)
    else:
        frames, stamps = simulate_clip(image, box, challenge, fps=args.fps,
                                       latency_ms=args.latency_ms, strength=args.strength, rng=rng)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(out / f"frame_{i:04d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, 92])
    (out / "timestamps.json").write_text(json.dumps(stamps))
    print(f"{len(frames)} frames and timestamps.json written to {out}")
    return 0


def run_attack(args: argparse.Namespace) -> int:
    import time

    from facelive.challenge.attacks import TIERS, load_sources, run_tier
    from facelive.errors import FaceliveError
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher

    tiers = list(TIERS) if not args.tier or "all" in args.tier else list(dict.fromkeys(args.tier))
    if not 1 <= args.sessions <= 10_000:
        _err("--sessions must be 1-10000")
        return 2
    data = Path(args.data) if args.data else None
    if data is not None and not (data / "replay-attack").is_dir():
        _err(f"--data: no replay-attack folder in {data}")
        return 2
    pipeline = None
    if args.passive:
        from facelive.pipeline import Pipeline

        try:
            pipeline = Pipeline()
        except FaceliveError as exc:
            _err(f"cannot load the models: {exc}")
            return 1
    rows = []
    try:
        with FaceDetector() as det, FaceMesher() as mesher:
            sources = load_sources(det, mesher, data, limit=max(1, args.sources),
                                   images=[Path(p) for p in args.image] if args.image else None)
            if not sources:
                _err("no face found in the source images")
                return 1
            for tier in tiers:
                t0 = time.perf_counter()
                res = run_tier(tier, args.sessions, sources, detector=det, mesher=mesher,
                               pipeline=pipeline, seed=args.seed)
                row = res.to_dict()
                row["seconds"] = round(time.perf_counter() - t0, 1)
                rows.append(row)
                if not args.json:
                    print(f"{tier}: {res.live}/{res.sessions} live", file=sys.stderr, flush=True)
    finally:
        if pipeline is not None:
            pipeline.close()
    if args.json:
        print(json.dumps({"sources": len(sources), "rows": rows}, indent=2))
        return 0
    stats = ("colour", "motion", "falloff", "shape")
    print(f"{len(sources)} source faces, {args.sessions} sessions per tier, seed {args.seed}"
          + (", passive tests pooled" if pipeline is not None else ""))
    print("| tier | live | " + " | ".join(f"median {s}" for s in stats)
          + " | reasons (sessions) |")
    print("|---|---|" + "---|" * len(stats) + "---|")
    for r in rows:
        med = r["median_scores"]
        reasons = "; ".join(f"{k} ({v})" for k, v in sorted(r["reasons"].items(),
                                                              key=lambda kv: -kv[1]))
        print(f"| {r['tier']} | {r['live']}/{r['sessions']} | "
              + " | ".join("-" if med.get(s) is None else f"{med[s]:.4g}" for s in stats)
              + f" | {reasons or '-'} |")
    return 0
