"""Routes raise, one handler answers: error bodies, the outcome middleware and its metrics."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import redis.exceptions
from fastapi.testclient import TestClient

from facelive.server.app import create_app
from facelive.server.auth import hash_key
from facelive.server.settings import Settings
from helpers import StubPipeline, jpeg

KEY = "site-key"
OPERATOR = "operator-key"
KEYS: dict[str, Any] = {"api_keys": (hash_key(KEY),), "operator_keys": (hash_key(OPERATOR),)}


def post_image(c: TestClient) -> Any:
    return c.post("/v1/liveness", content=jpeg(64, 64), headers={"content-type": "image/jpeg"})


def metric(c: TestClient, line: str) -> bool:
    return line in c.get("/metrics", headers={"authorization": f"Bearer {OPERATOR}"}).text


def error(r: Any) -> tuple[int, str]:
    assert set(r.json()) == {"error"} and r.json()["error"]["message"]
    return r.status_code, r.json()["error"]["code"]


def test_an_unexpected_error_is_a_500_body_and_counted() -> None:
    # TestClient re-raises what reaches Starlette's outermost handler: the answer must come from
    # the outcome middleware, with the server still serving
    with TestClient(create_app(Settings(), StubPipeline(error=RuntimeError("boom")))) as c:
        assert error(post_image(c)) == (500, "internal_error")
        assert c.get("/healthz").status_code == 200
        assert metric(c, 'facelive_requests_total{outcome="internal_error"} 1.0')


def test_outcomes_are_recorded_once_per_request() -> None:
    with TestClient(create_app(Settings(), StubPipeline())) as c:
        assert post_image(c).json()["decision"] == "live"
        assert error(c.post("/v1/liveness", content=b"",
                            headers={"content-type": "image/jpeg"})) == (400, "empty_body")
        assert error(c.get("/v1/liveness")) == (405, "method_not_allowed")  # not counted
        text = c.get("/metrics").text
    assert 'facelive_requests_total{outcome="live"} 1.0' in text
    assert 'facelive_requests_total{outcome="empty_body"} 1.0' in text
    assert "method_not_allowed" not in text


def test_a_client_that_went_away_is_400_and_counted() -> None:
    app = create_app(Settings(), StubPipeline())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/liveness",
             "raw_path": b"/v1/liveness", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
             "headers": [(b"content-type", b"image/jpeg"), (b"content-length", b"100")]}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 400 and b"client_disconnected" in sent[1]["body"]
    text = app.state.facelive.metrics.render().decode()
    assert 'facelive_requests_total{outcome="client_disconnected"} 1.0' in text


@pytest.mark.parametrize("failure", [redis.exceptions.ConnectionError("connection refused"),
                                     redis.exceptions.TimeoutError("timed out"),
                                     TimeoutError("socket timed out")])
def test_session_store_failures_are_503_by_their_type(failure: Exception,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(Settings(**KEYS), StubPipeline())) as c:
        store = c.app.state.facelive.sessions.store

        def fail(*args: Any, **kwargs: Any) -> None:
            raise failure

        monkeypatch.setattr(store, "get", fail)
        r = c.get("/v1/sessions/s1/result", headers={"authorization": f"Bearer {KEY}"})
        assert error(r) == (503, "store_unavailable") and r.headers["retry-after"] == "1"
        assert metric(c, 'facelive_session_events_total{event="refused_store_unavailable"} 1.0')


def test_other_store_errors_are_not_taken_for_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(Settings(**KEYS), StubPipeline())) as c:

        def fail(*args: Any, **kwargs: Any) -> None:
            raise ValueError("a bug")

        monkeypatch.setattr(c.app.state.facelive.sessions.store, "get", fail)
        r = c.get("/v1/sessions/s1/result", headers={"authorization": f"Bearer {KEY}"})
        assert error(r) == (500, "internal_error")
        assert not metric(c, "refused_internal_error")


def test_session_refusals_are_counted_by_code() -> None:
    with TestClient(create_app(Settings(**KEYS), StubPipeline())) as c:
        assert error(c.post("/v1/sessions")) == (401, "unauthorized")
        r = c.get("/v1/sessions/nope/result", headers={"authorization": f"Bearer {KEY}"})
        assert error(r) == (404, "session_not_found")
        assert metric(c, 'facelive_session_events_total{event="refused_unauthorized"} 1.0')
        assert metric(c, 'facelive_session_events_total{event="refused_session_not_found"} 1.0')
    with TestClient(create_app(Settings(sessions=False), StubPipeline())) as c:
        assert error(c.get("/.well-known/jwks.json")) == (503, "sessions_disabled")
        assert not metric(c, "refused_sessions_disabled")  # the key set is not a session event
