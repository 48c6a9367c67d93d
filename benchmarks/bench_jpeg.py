"""Benchmark: JPEG decoding, facelive's loader against the decoders on the package registries.

    python benchmarks/bench_jpeg.py [--repeat 30] [--quality 90]

Encodes the benchmark frames (``benchmarks/_frames.py``) as JPEG at 320x240, 640x480 and
1280x720 (OpenCV, ``--quality``), then decodes each to a BGR uint8 array with:
``facelive.imageio.decode_image`` (what ``facelive check`` and the server use: header and
size checks, EXIF orientation, decode, BGR conversion) with its simplejpeg path and with Pillow
only (as before), Pillow alone, OpenCV ``imdecode``,
simplejpeg and PyTurboJPEG (the last two only when installed; PyTurboJPEG also needs the
``libturbojpeg`` shared library). Times are thread CPU ms (decoding is single-threaded, so this is
robust to other processes on a shared machine): median and p10-p90 per size, over frames and
repeats. Also checks that every decoder returns the same pixels as ``decode_image`` (max abs
difference).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def decoders() -> dict[str, Callable[[bytes], object]]:
    import cv2
    import numpy as np
    from PIL import Image

    import facelive.imageio as imageio
    from facelive.imageio import decode_image

    def pillow_path(data: bytes) -> object:
        saved, imageio._simplejpeg = imageio._simplejpeg, None
        try:
            return decode_image(data)
        finally:
            imageio._simplejpeg = saved

    out: dict[str, Callable[[bytes], object]] = {
        "facelive decode_image, Pillow path (before)": pillow_path,
        "facelive decode_image (now)": decode_image,
        "Pillow (open + load + asarray)": lambda b: np.asarray(Image.open(io.BytesIO(b))),
        "OpenCV imdecode": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR),
    }
    try:
        import simplejpeg

        out["simplejpeg decode_jpeg (BGR)"] = lambda b: simplejpeg.decode_jpeg(
            b, colorspace="BGR")
    except ImportError:
        pass
    try:
        from turbojpeg import TurboJPEG

        tj = TurboJPEG()
        out["PyTurboJPEG decode (BGR)"] = tj.decode
    except (ImportError, RuntimeError, OSError):
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--frames", type=int, default=3, help="frames per source")
    ap.add_argument("--quality", type=int, default=90)
    args = ap.parse_args(argv)
    import cv2
    import numpy as np
    from _frames import describe, frame_set, machine_line, stats

    cv2.setNumThreads(1)
    decs = decoders()
    sizes = ((320, 240), (640, 480), (1280, 720))
    print(f"frames:\n{describe(frame_set(args.frames))}")
    print(f"JPEG quality {args.quality}; thread CPU ms per decode; {machine_line()}")
    print("| decoder | " + " | ".join(f"{w}x{h} median (p10-p90)" for w, h in sizes)
          + " | max abs diff vs decode_image |")
    print("|---|" + "---|" * (len(sizes) + 1))
    blobs = {}
    for w, h in sizes:
        blobs[(w, h)] = [cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY,
                                                        args.quality])[1].tobytes()
                         for f in frame_set(args.frames, w, h)]
    times: dict[str, dict[tuple[int, int], list[float]]] = {d: {s: [] for s in sizes}
                                                           for d in decs}
    diffs = dict.fromkeys(decs, 0)
    ref = decs["facelive decode_image, Pillow path (before)"]
    for size, bs in blobs.items():
        for b in bs:
            want = ref(b)
            for name, fn in decs.items():
                got = np.asarray(fn(b))
                if got.shape == want.shape:
                    diff = int(np.abs(got.astype(int) - want.astype(int)).max())
                else:
                    diff = -1  # e.g. RGB order: reported as a mismatch
                if name.startswith("Pillow"):
                    got = got[..., ::-1]
                    diff = int(np.abs(got.astype(int) - want.astype(int)).max())
                diffs[name] = max(diffs[name], diff)
        for _ in range(args.repeat):
            for b in bs:
                for name, fn in decs.items():  # interleaved: load hits every decoder alike
                    c0 = time.thread_time()
                    fn(b)
                    times[name][size].append((time.thread_time() - c0) * 1e3)
    for name in decs:
        cells = []
        for s in sizes:
            st = stats(times[name][s])
            cells.append(f"{st['median']:.2f} ({st['p10']:.2f}-{st['p90']:.2f})")
        print(f"| {name} | " + " | ".join(cells) + f" | {diffs[name]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
