"""MediaPipe is imported through its public package (``facelive.face.detection._import_mediapipe``):
the detector and the mesh use the process's own ``mediapipe.solutions``, whichever imported it
first. Each check runs in a fresh interpreter, so that nothing else imported MediaPipe before."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO


def test_mediapipe_is_the_public_package() -> None:
    """The detector and the mesh use ``mediapipe.solutions`` as any other code in the process
    sees it (no stand-in modules), from a version that still ships the legacy solutions."""
    code = """
from facelive.face.detection import FaceDetector, _import_mediapipe
from facelive.face.mesh import mesh_triangles
det = FaceDetector()
assert mesh_triangles().shape == (854, 3)
import mediapipe as mp
from packaging.version import Version
assert Version("0.10.21") <= Version(mp.__version__) < Version("0.10.30"), mp.__version__
assert _import_mediapipe() is mp.solutions
assert det._mp.face_detection is mp.solutions.face_detection
assert mp.solutions.hands.Hands and mp.solutions.drawing_utils.draw_landmarks
assert mp.tasks.vision.FaceLandmarker and mp.Image
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


def test_mediapipe_imported_first_is_used_as_is() -> None:
    code = """
import mediapipe as mp
from facelive.face.detection import _import_mediapipe
assert _import_mediapipe().face_mesh is mp.solutions.face_mesh
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
