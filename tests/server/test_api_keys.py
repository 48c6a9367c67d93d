"""API keys (Bearer tokens checked against SHA-256 digests) and rate limits per client address
and per key."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from facelive.errors import FaceliveError
from facelive.server import auth
from facelive.server.settings import Settings
from helpers import jpeg
from helpers.server import error_code, post_image, stub_client

KEY = "correct horse battery staple"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()


def test_api_keys_protect_liveness_info_and_metrics() -> None:
    operator = {"authorization": "Bearer operator"}
    with stub_client(api_keys=(DIGEST,), operator_keys=(auth.hash_key("operator"),)) as c:
        for r in (post_image(c, jpeg()), post_image(c, jpeg(), authorization="Bearer wrong"),
                  post_image(c, jpeg(), authorization=f"Basic {KEY}"),
                  c.get("/v1/info"), c.get("/metrics")):
            assert r.status_code == 401 and error_code(r) == "unauthorized", r.text
            assert r.headers["www-authenticate"].startswith("Bearer")
        auth_header = {"authorization": f"Bearer {KEY}"}
        assert post_image(c, jpeg(), **auth_header).status_code == 200
        assert post_image(c, jpeg(), **operator).status_code == 401  # not a tenant key
        assert c.get("/v1/info", headers=operator).status_code == 200
        metrics = c.get("/metrics", headers=operator)
        assert metrics.status_code == 200
        assert 'facelive_requests_total{outcome="unauthorized"} 4.0' in metrics.text
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_api_keys_file(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    other = auth.hash_key("other")
    f.write_text(f"# operators\n{DIGEST}  -\n\n{other}\n")
    keys = auth.ApiKeys.from_settings((), str(f))
    assert len(keys) == 2 and keys.check(KEY) == DIGEST[:12] and keys.check("other")
    assert keys.check("nope") is None and keys.check(None) is None
    with stub_client(api_keys_file=str(f)) as c:
        assert post_image(c, jpeg(), authorization="Bearer other").status_code == 200
    f.write_text("not-a-digest\n")
    with pytest.raises(FaceliveError, match="keys:1: not a SHA-256"):
        auth.ApiKeys.from_settings((), str(f))
    with pytest.raises(FaceliveError, match="cannot read"):
        auth.ApiKeys.from_settings((), str(tmp_path / "missing"))
    with pytest.raises(FaceliveError, match="FACELIVE_API_KEYS"):
        Settings.from_env({"FACELIVE_API_KEYS": "secret-key-in-clear"})


def test_hash_key_command(capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    assert auth.main([]) == 0
    assert capsys.readouterr().out.strip() == DIGEST
    assert auth.main(["--new"]) == 0
    out = capsys.readouterr().out.split()
    assert auth.hash_key(out[1]) == out[3]


def test_rate_limit_per_address_and_key() -> None:
    with stub_client(address_rate=0.01, address_burst=2) as c:
        assert [post_image(c, jpeg()).status_code for _ in range(2)] == [200, 200]
        r = post_image(c, jpeg())
        assert r.status_code == 429 and error_code(r) == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
    with stub_client(api_keys=(DIGEST, auth.hash_key("k2")), key_rate=0.01, key_burst=1) as c:
        assert post_image(c, jpeg(), authorization=f"Bearer {KEY}").status_code == 200
        assert post_image(c, jpeg(), authorization=f"Bearer {KEY}").status_code == 429
        assert post_image(c, jpeg(), authorization="Bearer k2").status_code == 200  # own bucket


def test_client_bucket() -> None:
    assert auth.client_bucket("2001:db8:1:2:aaaa::1") == auth.client_bucket("2001:db8:1:2::9")
    assert auth.client_bucket("2001:db8:1:3::1") != auth.client_bucket("2001:db8:1:2::1")
    assert auth.client_bucket("::ffff:1.2.3.4") == "1.2.3.4"
    assert auth.client_bucket("\x1b[0m") == "unknown" == auth.client_bucket(None)


def test_parse_bearer() -> None:
    assert auth.parse_bearer("Bearer abc") == "abc" and auth.parse_bearer("bearer  abc ") == "abc"
    assert auth.parse_bearer("Basic abc") is None and auth.parse_bearer("Bearer") is None
    assert auth.parse_bearer(None) is None and auth.parse_bearer("Bearer " + "x" * 5000) is None
