"""The challenge-session flow over HTTP for the tests: API keys, create, fetch, film, upload,
poll the result, read and verify the signed token.

Clips are ``examples/astronaut.jpg`` "filmed" under the issued colours by
:func:`facelive.challenge.simulate.simulate_live_clip` (the realistic live simulation: the head
turns a little, the screen's light follows the face's shape and falls off with distance).
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient

from facelive.challenge.sequence import Challenge
from facelive.challenge.simulate import simulate_live_clip
from facelive.server.auth import hash_key
from helpers import EXAMPLE

KEY, KEY2 = "site-key-1", "site-key-2"
DIGESTS = (hash_key(KEY), hash_key(KEY2))
COLOUR_REASON = "colour response does not follow the challenge"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def jpegs(frames: list[np.ndarray], quality: int = 85) -> list[bytes]:
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
            for f in frames]


def upload_files(frames: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("frames", (f"frame-{i:03d}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]


def create(c: TestClient, key: str = KEY, **body: Any) -> dict[str, Any]:
    r = c.post("/v1/sessions", headers=auth(key), json=body or None)
    assert r.status_code == 201, r.text
    return r.json()


def fetch(c: TestClient, s: dict[str, Any]) -> Challenge:
    r = c.get(f"/v1/sessions/{s['session_id']}/challenge", headers=auth(s["client_token"]))
    assert r.status_code == 200, r.text
    return Challenge.from_dict(r.json())


def upload(c: TestClient, s: dict[str, Any], frames: list[bytes], ts: list[float],
           nonce: str, token: str | None = None) -> Any:
    return c.post(f"/v1/sessions/{s['session_id']}/frames",
                  headers=auth(token or s["client_token"]), files=upload_files(frames),
                  data={"timestamps": json.dumps(ts), "nonce": nonce})


def wait_result(c: TestClient, sid: str, key: str = KEY, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(f"/v1/sessions/{sid}/result", headers=auth(key))
        if r.status_code != 202 or time.monotonic() > deadline:
            return r
        assert r.json()["status"] in ("pending", "verifying")
        assert r.headers["retry-after"] == "1"
        time.sleep(0.1)


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def joserfc_verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify with joserfc directly (any JOSE library would do), not through facelive.audit."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    with warnings.catch_warnings():  # joserfc warns that RFC 9864 deprecates the name EdDSA
        warnings.simplefilter("ignore")
        return dict(jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"]).claims)


def load_astronaut() -> tuple[np.ndarray, Any]:
    """``examples/astronaut.jpg`` at a client's frame size, and its face box."""
    from facelive.face.detection import FaceDetector

    img = cv2.imread(str(EXAMPLE))
    img = cv2.resize(img, (352, 352), interpolation=cv2.INTER_AREA)  # a client's frame size
    det = FaceDetector()
    try:
        box = det.detect(img)
    finally:
        det.close()
    assert box is not None
    return img, box


_VERTICES: dict[str, np.ndarray] = {}


def mesh_vertices(image: np.ndarray, box: Any) -> np.ndarray:
    """Face Mesh vertices of ``image`` in its pixels (computed once per image)."""
    import hashlib

    key = hashlib.sha256(image.tobytes() + repr((image.shape, box)).encode()).hexdigest()
    if key not in _VERTICES:
        from facelive.face.mesh import FaceMesher

        with FaceMesher() as mesher:
            verts, _ = mesher.reconstruct(image, box)
            _VERTICES[key] = mesher.to_image(verts, image.shape, box)
    return _VERTICES[key]


def clip(astronaut: tuple[np.ndarray, Any], ch: Challenge, seed: int = 0,
         **kw: Any) -> tuple[list[bytes], list[float]]:
    """A live clip of ``astronaut`` under ``ch`` (``strength=0``: no response to the screen,
    ``motion_deg=0``: a head held perfectly still), JPEG q85."""
    img, box = astronaut
    frames, ts = simulate_live_clip(img, box, ch, mesh_vertices(img, box), fps=10.0,
                                    jpeg_quality=None, rng=np.random.default_rng(seed), **kw)
    return jpegs(frames), ts


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["error"]["code"] == code, r.text
