"""Where to put the colour-response threshold: scores of matching and non-matching clips (issue 14).

    python experiments/challenge_null.py [--trials 500] [--steps 10] [--gain 0.1]

A signal-level simulation (no images, so it runs in seconds and needs no data): a face's mean
linear RGB under ambient light plus the screen, ``y = rho * (1 + gain * screen(t - latency)) +
noise`` (``rho`` a skin colour), sampled at 12 fps with jitter, scored by
:func:`facelive.challenge.verify.colour_response` against the issued challenge. Cases: ``live``
(latency 50-400 ms), ``other sequence`` (a clip that follows another challenge: a replay from an
earlier session), ``late 1000 ms`` (the right sequence, beyond the 500 ms latency bound) and
``static`` (no response). Prints the distribution of each case's score; the default threshold
(``VerifyParams.colour_threshold`` = 0.5) sits above the largest non-matching score seen.
Real cameras add auto exposure and white balance, so live scores will be lower than here:
recalibrate on recorded sessions.
"""

from __future__ import annotations

import argparse
import random
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--gain", type=float, default=0.1, help="the screen light's share (live)")
    ap.add_argument("--noise", type=float, default=0.003, help="noise of the region's mean")
    args = ap.parse_args(argv)

    import numpy as np

    from facelive.challenge.sequence import new_challenge
    from facelive.challenge.simulate import frame_times
    from facelive.challenge.verify import VerifyParams, _screen_linear, colour_response

    params = VerifyParams()
    rng = np.random.default_rng(0)
    rho = np.array([0.55, 0.38, 0.28])

    def clip(ch, latency: float, gain: float):
        ts = np.array(frame_times(ch.capture_ms, 12.0, 4.0, rng))
        x = np.nan_to_num(_screen_linear(ch, ts - latency, 30.0), nan=0.0)
        return rho * (1 + gain * x) + rng.normal(0, args.noise, x.shape), ts

    cases: dict[str, list[float]] = {"live": [], "other sequence": [], "late 1000 ms": [],
                                     "static": []}
    for i in range(args.trials):
        a = new_challenge(steps=args.steps, rng=random.Random(i))
        b = new_challenge(steps=args.steps, rng=random.Random(10**6 + i))
        for name, (y, ts) in (("live", clip(a, rng.uniform(50, 400), args.gain)),
                              ("other sequence", clip(b, rng.uniform(50, 400), args.gain)),
                              ("late 1000 ms", clip(a, 1000.0, args.gain)),
                              ("static", clip(a, 100.0, 0.0))):
            cases[name].append(colour_response(y, ts, a, params)["score"])
    print(f"{args.trials} trials, {args.steps} steps, gain {args.gain}, noise {args.noise}, "
          f"threshold {params.colour_threshold}\n")
    print("| case | min | median | p99 | max | passes |")
    print("|---|---|---|---|---|---|")
    for name, v in cases.items():
        arr = np.array(v)
        passes = int((arr >= params.colour_threshold).sum())
        print(f"| {name} | {arr.min():.3f} | {np.median(arr):.3f} | "
              f"{np.percentile(arr, 99):.3f} | {arr.max():.3f} | {passes} of {arr.size} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
