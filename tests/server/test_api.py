"""The liveness web service (facelive.server): API, limits, errors, metrics, OpenAPI, settings."""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
import threading
import time
import zlib
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facelive.commands.serve import add_arguments, from_args
from facelive.errors import FaceliveError
from facelive.server.app import API_VERSION, create_app, load_pipeline
from facelive.server.settings import Settings
from facelive.types import REASON_CODES, SCHEMA_VERSION, FaceBox, LivenessResult, TestResult
from helpers import ConstantTest, FixedDetector, StubPipeline

# -- helpers -------------------------------------------------------------------------------


def jpeg(w: int = 160, h: int = 120, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_header_claiming(w: int, h: int) -> bytes:
    """A valid-looking PNG declaring w x h with a few bytes of pixel data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


# a detector that sees two faces (a photo held beside a live face)
TWO_FACES = FixedDetector([FaceBox(10, 10, 60, 60, 0.95), FaceBox(90, 10, 40, 40, 0.9)])


@pytest.fixture
def fake() -> StubPipeline:
    return StubPipeline()


@pytest.fixture
def client(fake: StubPipeline) -> TestClient:
    app = create_app(Settings(max_body_bytes=200_000, max_pixels=4_000_000), pipeline=fake)
    with TestClient(app) as c:
        yield c


def assert_error(r: Any, status: int, code: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


# -- happy paths ---------------------------------------------------------------------------


def test_multipart_upload(client: TestClient, fake: StubPipeline) -> None:
    r = client.post("/v1/liveness", files={"image": ("f.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] in ("live", "spoof") and body["tests"]["stub"]["status"] == "ok"
    assert body["face"]["w"] == 80 and fake.shapes == [(120, 160, 3)]


def test_multipart_with_other_fields_first(client: TestClient) -> None:
    r = client.post("/v1/liveness", data={"note": "x" * 100},
                    files={"image": ("f.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text


def test_base64_json_and_data_url(client: TestClient, fake: StubPipeline) -> None:
    b64 = base64.b64encode(jpeg(seed=1)).decode()
    r1 = client.post("/v1/liveness", json={"image": b64})
    r2 = client.post("/v1/liveness", json={"image": "data:image/jpeg;base64," + b64})
    assert r1.status_code == r2.status_code == 200, (r1.text, r2.text)
    assert r1.json()["score"] == r2.json()["score"]
    assert fake.calls == 2


def test_raw_image_body(client: TestClient) -> None:
    r = client.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text


def test_health_ready_info_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["tests"] == ["stub"]
    info = client.get("/v1/info").json()
    assert info["limits"]["max_body_bytes"] == 200_000
    page = client.get("/")
    assert page.status_code == 200 and 'id="verdict"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "getUserMedia" in js.text


# -- bad inputs: all 4xx with a JSON error, and the service keeps serving --------------------

BAD_REQUESTS = [
    ("text/plain", dict(content=b"hello", headers={"content-type": "text/plain"}), 415,
     "unsupported_media_type"),
    ("no content type", dict(content=b"\xff\xd8\xff"), 415, "unsupported_media_type"),
    ("xml", dict(content=b"<a/>", headers={"content-type": "application/xml"}), 415, None),
    ("empty raw body", dict(content=b"", headers={"content-type": "image/jpeg"}), 400,
     "empty_body"),
    ("empty json body", dict(content=b"", headers={"content-type": "application/json"}), 400,
     "empty_body"),
    ("malformed json", dict(content=b'{"image": ', headers={"content-type": "application/json"}),
     400, "invalid_json"),
    ("json list", dict(json=[1, 2]), 422, "missing_field"),
    ("json without image", dict(json={"img": "abc"}), 422, "missing_field"),
    ("json image not a string", dict(json={"image": 12}), 422, "invalid_field"),
    ("bad base64", dict(json={"image": "not base64!!"}), 400, "invalid_base64"),
    ("empty base64", dict(json={"image": ""}), 400, "empty_image"),
    ("base64 of text", dict(json={"image": base64.b64encode(b"just text").decode()}), 422,
     "unsupported_image"),
    ("multipart without boundary",
     dict(content=b"abc", headers={"content-type": "multipart/form-data"}), 400,
     "invalid_multipart"),
    ("multipart garbage",
     dict(content=b"garbage" * 10, headers={"content-type": "multipart/form-data; boundary=xyz"}),
     422, None),
    ("multipart wrong field", dict(files={"photo": ("f.jpg", b"abc", "image/jpeg")}), 422,
     "missing_field"),
    ("multipart empty file", dict(files={"image": ("f.jpg", b"", "image/jpeg")}), 400,
     "empty_image"),
    ("random bytes", dict(files={"image": ("f.jpg", bytes(range(256)) * 4, "image/jpeg")}), 422,
     "unsupported_image"),
    ("truncated jpeg", dict(files={"image": ("f.jpg", jpeg()[:600], "image/jpeg")}), 422,
     "truncated_image"),
    ("png header claiming 50000x50000",
     dict(content=png_header_claiming(50_000, 50_000), headers={"content-type": "image/png"}),
     413, "image_too_large"),
    ("tiny image", dict(files={"image": ("f.jpg", jpeg(8, 8), "image/jpeg")}), 422,
     "image_too_small"),
    ("oversized upload (Content-Length)",
     dict(content=b"\0" * 300_000, headers={"content-type": "image/jpeg"}), 413,
     "body_too_large"),
    ("oversized multipart", dict(files={"image": ("f.jpg", b"\0" * 300_000, "image/jpeg")}), 413,
     "body_too_large"),
]


@pytest.mark.parametrize("name,kwargs,status,code", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_specific_4xx(client: TestClient, fake: StubPipeline, name: str,
                                     kwargs: dict[str, Any], status: int, code: str | None) -> None:
    r = client.post("/v1/liveness", **kwargs)
    if code is None:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert_error(r, r.status_code)
    else:
        assert_error(r, status, code)
    assert fake.calls == 0  # nothing bad reached the pipeline
    ok = client.post("/v1/liveness", files={"image": ("f.jpg", jpeg(), "image/jpeg")})
    assert ok.status_code == 200 and client.get("/healthz").status_code == 200


def test_streamed_oversized_body_is_cut_off(client: TestClient) -> None:
    sent = {"n": 0}

    def chunks():  # no Content-Length: chunked transfer, counted while streaming
        for _ in range(100):
            sent["n"] += 1
            yield b"\0" * 10_000

    r = client.post("/v1/liveness", content=chunks(), headers={"content-type": "image/jpeg"})
    assert_error(r, 413, "body_too_large")


def test_pixel_limit_is_configurable(fake: StubPipeline) -> None:
    app = create_app(Settings(max_pixels=10_000), pipeline=fake)
    with TestClient(app) as c:
        assert_error(c.post("/v1/liveness", content=jpeg(160, 120),
                            headers={"content-type": "image/jpeg"}), 413, "image_too_large")
        assert c.post("/v1/liveness", content=jpeg(64, 64),
                      headers={"content-type": "image/jpeg"}).status_code == 200


def test_unknown_route_and_method_are_json_errors(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/v1/liveness"), 405, "method_not_allowed")


def test_pipeline_exception_is_500_and_service_survives() -> None:
    with TestClient(create_app(Settings(), pipeline=StubPipeline(error=RuntimeError("boom"))),
                    raise_server_exceptions=False) as c:
        assert_error(c.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"}),
                     500, "internal_error")
        assert c.get("/healthz").status_code == 200


# -- back-pressure -------------------------------------------------------------------------


def test_back_pressure_503_with_retry_after() -> None:
    gate = threading.Event()
    fake = StubPipeline(gate=gate)
    app = create_app(Settings(max_concurrency=2, retry_after_s=3), pipeline=fake)
    state = app.state.facelive
    with TestClient(app) as c:
        results: list[int] = []

        def post() -> None:
            results.append(c.post("/v1/liveness", content=jpeg(),
                                  headers={"content-type": "image/jpeg"}).status_code)

        threads = [threading.Thread(target=post) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while state.in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state.in_flight == 2
        t0 = time.monotonic()
        r = c.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
        assert time.monotonic() - t0 < 2.0  # refused at once, not queued
        assert_error(r, 503, "overloaded")
        assert r.headers["retry-after"] == "3"
        assert c.get("/healthz").status_code == 200  # the event loop stays responsive
        gate.set()
        for t in threads:
            t.join(10)
        assert results == [200, 200]
        assert state.in_flight == 0
        metrics = c.get("/metrics").text
        assert 'facelive_requests_total{outcome="overloaded"} 1.0' in metrics


# -- metrics and OpenAPI -------------------------------------------------------------------


def test_metrics(client: TestClient) -> None:
    client.post("/v1/liveness", files={"image": ("f.jpg", jpeg(), "image/jpeg")})
    client.post("/v1/liveness", content=b"", headers={"content-type": "image/jpeg"})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    decision = "live" if 'outcome="live"' in text else "spoof"
    assert f'facelive_requests_total{{outcome="{decision}"}} 1.0' in text
    assert 'facelive_requests_total{outcome="empty_body"} 1.0' in text
    assert 'facelive_request_duration_seconds_bucket{le="0.25",outcome="empty_body"}' in text
    assert 'facelive_test_duration_seconds_count{test="stub"} 1.0' in text
    assert "facelive_ready 1.0" in text and "facelive_requests_in_flight 0.0" in text


def test_metrics_registry_is_per_app(fake: StubPipeline) -> None:
    a, b = create_app(Settings(), pipeline=fake), create_app(Settings(), pipeline=fake)
    assert a.state.facelive.metrics.registry is not b.state.facelive.metrics.registry


def test_openapi_documents_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/liveness"]["post"]
    assert {"200", "400", "413", "415", "422", "500", "503"} <= set(post["responses"])
    assert "ErrorResponse" in str(post["responses"]["413"])
    assert {"multipart/form-data", "application/json"} <= set(post["requestBody"]["content"])
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]


def test_openapi_result_schema_is_the_typed_result(client: TestClient) -> None:
    """The 200 schema of /v1/liveness is generated from facelive.types.LivenessResult."""
    spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/v1/liveness"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LivenessResult"}
    schemas = spec["components"]["schemas"]
    result = schemas["LivenessResult"]
    fields = {f.name for f in dataclasses.fields(LivenessResult)}
    file_result = LivenessResult.failed("a.jpg", "unreadable", "truncated_image", 1.0)
    assert set(result["properties"]) == fields == set(file_result.to_dict()) == {
        "schema_version", "path", "decision", "score", "threshold", "reason", "reason_code",
        "face_count", "tests", "face", "face_ms", "ms", "error", "error_code"}
    # every key is always written, except path (only for a file: never null)
    assert set(result["required"]) == fields - {"path"}
    assert result["properties"]["path"]["type"] == "string"
    assert result["properties"]["schema_version"]["const"] == SCHEMA_VERSION == "2"
    assert result["properties"]["decision"]["enum"] == ["live", "spoof", "unknown"]
    codes = result["properties"]["reason_code"]["anyOf"][0]["enum"]
    assert codes == list(REASON_CODES) and {"no_face", "multiple_faces", "unreadable_image",
                                            "test_error", "test_timeout",
                                            "missing_scores"} <= set(codes)
    tests = result["properties"]["tests"]
    assert tests["additionalProperties"] == {"$ref": "#/components/schemas/TestResult"}
    test_schema = schemas["TestResult"]
    assert test_schema["properties"]["status"]["enum"] == ["ok", "no_face", "error", "timeout"]
    assert set(test_schema["properties"]) == {f.name for f in dataclasses.fields(TestResult)}
    assert set(test_schema["required"]) == {"verdict", "score", "threshold", "status", "ms"}
    assert test_schema["properties"]["verdict"]["anyOf"][0]["enum"] == ["live", "spoof"]
    assert {"$ref": "#/components/schemas/FaceBox"} in result["properties"]["face"]["anyOf"]
    assert set(schemas["FaceBox"]["properties"]) == {"x", "y", "w", "h", "confidence"}
    assert not {"TestOutcome", "FaceBoxModel"} & set(schemas)  # no duplicate models
    assert all(p.get("description") for p in result["properties"].values())


def test_openapi_is_versioned_and_says_one_image_is_not_presence(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == API_VERSION == f"{SCHEMA_VERSION}.0.0"
    post = spec["paths"]["/v1/liveness"]["post"]
    result = spec["components"]["schemas"]["LivenessResult"]
    for text in (post["description"], result["description"]):
        assert "does not prove presence" in text.replace("\n", " ")
        assert "challenge" in text and "integration-web.md" in text
        assert "multiple_faces" in text


def test_upload_result_has_no_path(client: TestClient) -> None:
    r = client.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
    body = r.json()
    assert r.status_code == 200 and "path" not in body
    assert body["schema_version"] == SCHEMA_VERSION and body["reason_code"] is None
    assert body["tests"]["stub"]["verdict"] == body["decision"]


@pytest.mark.parametrize("missing", ["abstain", "available"])
def test_several_faces_answer_the_same_in_the_library_and_the_api(missing: str) -> None:
    """Several faces: ``unknown`` with ``multiple_faces`` and the face count, from
    ``Pipeline.check`` and from ``POST /v1/liveness`` alike (even when the fusion could decide
    on the tests that need no face)."""
    from facelive.fusion import FusionModel
    from facelive.fusion.model import fit_linear
    from facelive.pipeline import Pipeline

    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.5
    p = np.clip(np.column_stack([np.where(y, 0.8, 0.2)] * 2) + rng.normal(0, 0.1, (200, 2)),
                0.01, 0.99)
    models = {("face",): fit_linear(p[:, :1], y, ("face",)),
              ("face", "whole"): fit_linear(p, y, ("face", "whole")),
              ("whole",): fit_linear(p[:, 1:], y, ("whole",))}
    tests = [ConstantTest("face", 0.9, needs_face=True),
             ConstantTest("whole", 0.9, needs_face=False)]
    with Pipeline(tests, fusion=FusionModel(("face", "whole"), models, missing),
                  detector=TWO_FACES, parallel=False) as pipe:
        image = np.asarray(Image.open(io.BytesIO(jpeg())))[:, :, ::-1].copy()
        lib = pipe.check(image).to_dict()
        with TestClient(create_app(Settings(), pipeline=pipe)) as c:
            api = c.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
    assert api.status_code == 200, api.text
    for body in (lib, api.json()):
        assert (body["decision"], body["reason_code"], body["face_count"]) == (
            "unknown", "multiple_faces", 2)
        assert body["reason"] == "multiple faces (2)" and body["face"] is None
        assert body["score"] is None and body["threshold"] is None and "path" not in body
        assert body["tests"]["whole"]["verdict"] == "live"  # scored, but never decides alone
    assert {k: v for k, v in api.json().items() if "ms" not in k and k != "tests"} == {
        k: v for k, v in lib.items() if "ms" not in k and k != "tests"}


def test_body_is_the_results_json_object(fake: StubPipeline) -> None:
    """The answer is exactly LivenessResult.to_dict() (the `facelive check` JSON object)."""
    seen: list[LivenessResult] = []

    class Recording(StubPipeline):
        def check(self, source: Any, path: str | None = None) -> LivenessResult:
            seen.append(super().check(source, path))
            return seen[-1]

    with TestClient(create_app(Settings(), pipeline=Recording())) as c:
        r = c.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json() == seen[0].to_dict()
    assert list(r.json()) == list(seen[0].to_dict())  # key order too


@pytest.mark.parametrize("code,status", [("truncated_image", 422), ("image_too_large", 413),
                                         ("empty_image", 400), ("detection_error", 422),
                                         (None, 422)])
def test_error_result_status_from_error_code(code: str | None, status: int) -> None:
    """A pipeline result with ``error`` set: the status and code come from its ``error_code``."""

    class Failing(StubPipeline):
        def check(self, source: Any, path: str | None = None) -> LivenessResult:
            if code is None:  # error without error_code: answered as invalid_image
                return LivenessResult(path=path, decision="unknown", score=None, threshold=None,
                                      tests={}, face=None, face_ms=0.0, ms=1.0,
                                      error="cannot use this image")
            return LivenessResult.failed(path, "cannot use this image", code, 1.0)

    app = create_app(Settings(), pipeline=Failing())
    with TestClient(app) as c:
        r = c.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
        assert_error(r, status, code or "invalid_image")
        assert r.json()["error"]["message"] == "cannot use this image"
        assert f'facelive_requests_total{{outcome="{code or "invalid_image"}"}} 1.0' in c.get(
            "/metrics").text


# -- readiness and model loading -------------------------------------------------------------


def test_missing_models_not_ready_when_allowed() -> None:
    s = Settings(tests=("no-such-test",), allow_missing_models=True)
    with TestClient(create_app(s)) as c:
        r = c.get("/readyz")
        assert_error(r, 503, "not_ready")
        assert "no-such-test" in r.json()["error"]["message"]
        assert_error(c.post("/v1/liveness", content=jpeg(),
                            headers={"content-type": "image/jpeg"}), 503, "not_ready")
        assert c.get("/healthz").status_code == 200
        assert "facelive_ready 0.0" in c.get("/metrics").text


def test_missing_models_refuse_to_start() -> None:
    app = create_app(Settings(tests=("no-such-test",)))
    with pytest.raises(RuntimeError, match="cannot load the models"):
        with TestClient(app):
            pass


def test_real_pipeline_with_a_stub_test(shared_data: Any) -> None:
    """The real Pipeline (real face detection) behind the API, with a constant-score test."""
    from facelive.pipeline import Pipeline

    frame = sorted((shared_data / "nuaa" / "ClientRaw").rglob("*.jpg"))[0].read_bytes()
    with Pipeline([ConstantTest()]) as pipe, TestClient(create_app(Settings(), pipeline=pipe)) as c:
        r = c.post("/v1/liveness", files={"image": ("f.jpg", frame, "image/jpeg")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == "live" and body["face"] is not None
        assert set(body) == set(pipe.check(frame).to_dict())  # what `facelive check` prints
        noise = c.post("/v1/liveness", content=jpeg(), headers={"content-type": "image/jpeg"})
        assert noise.json()["decision"] == "unknown" and noise.json()["reason"] == "no face found"
        assert noise.json()["reason_code"] == "no_face" and noise.json()["face_count"] == 0


def test_default_pipeline_end_to_end(shared_data: Any) -> None:
    """The shipped models behind the API (skips while the models are not in the repo yet)."""
    try:
        pipe = load_pipeline(Settings())
    except FaceliveError as exc:
        pytest.skip(f"default models unavailable: {exc.message}")
    live = sorted((shared_data / "nuaa" / "ClientRaw").rglob("*.jpg"))[0]
    with pipe, TestClient(create_app(Settings(), pipeline=pipe)) as c:
        assert c.get("/readyz").status_code == 200
        r = c.post("/v1/liveness", files={"image": ("f.jpg", live.read_bytes(), "image/jpeg")})
        assert r.status_code == 200, r.text
        body, expected = r.json(), pipe.check(live).to_dict()
        assert body["decision"] in ("live", "spoof", "unknown")
        assert expected.pop("path") == str(live) and "path" not in body  # an upload has none
        assert set(body) == set(expected) and set(body["tests"]) == set(expected["tests"])
        assert body["decision"] == expected["decision"]


# -- settings and the serve command --------------------------------------------------------


def test_settings_from_env_and_flags() -> None:
    env = {"FACELIVE_PORT": "9000", "FACELIVE_MAX_BODY_BYTES": "2MB", "FACELIVE_TESTS": "quality",
           "FACELIVE_ALLOW_MISSING_MODELS": "yes", "FACELIVE_THRESHOLD": "0.4"}
    s = Settings.from_env(env)
    assert (s.port, s.max_body_bytes, s.tests, s.allow_missing_models, s.threshold) == (
        9000, 2 * 1024 * 1024, ("quality",), True, 0.4)
    assert Settings.from_env(s.to_env()) == s
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    s2 = from_args(p.parse_args(["--port", "9100", "--tests", "quality,cnn"]), env)
    assert s2.port == 9100 and s2.tests == ("quality", "cnn")
    assert s2.max_body_bytes == 2 * 1024 * 1024


@pytest.mark.parametrize("env", [{"FACELIVE_PORT": "http"}, {"FACELIVE_WORKERS": "0"},
                                 {"FACELIVE_ALLOW_MISSING_MODELS": "maybe"},
                                 {"FACELIVE_THRESHOLD": "2"}])
def test_bad_settings_are_usage_errors(env: dict[str, str]) -> None:
    with pytest.raises(FaceliveError) as info:
        Settings.from_env(env)
    assert info.value.code == "usage"


def test_settings_read_the_environment_under_keyword_arguments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELIVE_PORT", "9001")
    monkeypatch.setenv("FACELIVE_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("FACELIVE_ROOT_PATH", "  ")  # blank: unset
    s = Settings()
    assert (s.port, s.cors_origins, s.root_path) == (
        9001, ("https://a.example", "https://b.example"), "")
    assert Settings(port=9002).port == 9002 and Settings.from_env({}).port == 8000
    monkeypatch.setenv("FACELIVE_WORKERS", "0")
    with pytest.raises(FaceliveError, match="invalid FACELIVE_WORKERS='0': workers must be"):
        Settings()
    with pytest.raises(FaceliveError, match="invalid settings: port must be greater than or equal"):
        Settings(port=0, workers=1)


def test_serve_command_errors(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from facelive import cli
    from facelive.server import app as app_module

    monkeypatch.setenv("FACELIVE_MAX_CONCURRENCY", "zero")
    assert cli.main(["serve"]) == 2
    assert "FACELIVE_MAX_CONCURRENCY" in capsys.readouterr().err
    monkeypatch.delenv("FACELIVE_MAX_CONCURRENCY")
    assert cli.main(["serve", "--tests", "no-such-test"]) == 2

    def missing(settings: Settings) -> None:
        raise FaceliveError("cannot load the models: model file quality.json is missing",
                            code="model_error")

    # the models load in the pipeline processes (start_workers), or in the server process with
    # --pipeline-workers 0 (load_pipeline): either failure stops the command
    monkeypatch.setattr(app_module, "start_workers", missing)
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "quality.json is missing" in err and "--allow-missing-models" in err
    monkeypatch.setattr(app_module, "load_pipeline", missing)
    assert cli.main(["serve", "--pipeline-workers", "0"]) == 1
    err = capsys.readouterr().err
    assert "quality.json is missing" in err and "--allow-missing-models" in err
