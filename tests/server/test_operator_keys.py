"""The operator key: ``/metrics`` and ``/v1/info`` (what every tenant's traffic adds up to) are
read with a key of their own, never with a tenant's API key."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelive.errors import FaceliveError
from facelive.server.auth import hash_key
from helpers.server import error_code, stub_client

TENANT, OTHER_TENANT, OPERATOR = "tenant-key", "other-tenant-key", "operator-key"
OPS = ("/metrics", "/v1/info")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_a_tenant_key_is_403_and_the_operator_key_reads() -> None:
    with stub_client(api_keys=(hash_key(TENANT), hash_key(OTHER_TENANT)),
                     operator_keys=(hash_key(OPERATOR),)) as c:
        for path in OPS:
            for key in (TENANT, OTHER_TENANT):
                r = c.get(path, headers=bearer(key))
                assert r.status_code == 403 and error_code(r) == "forbidden", r.text
            for headers in ({}, bearer("wrong"), {"authorization": f"Basic {OPERATOR}"}):
                r = c.get(path, headers=headers)
                assert r.status_code == 401 and error_code(r) == "unauthorized", r.text
                assert r.headers["www-authenticate"].startswith("Bearer")
            assert c.get(path, headers=bearer(OPERATOR)).status_code == 200
        assert "facelive_requests_total" in c.get("/metrics", headers=bearer(OPERATOR)).text
        # the probes stay open; the operator key opens nothing of a tenant's
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.post("/v1/sessions", headers=bearer(OPERATOR)).status_code == 401


def test_without_an_operator_key_they_close_once_api_keys_exist() -> None:
    with stub_client(api_keys=(hash_key(TENANT),)) as c:
        for path in OPS:
            for headers in ({}, bearer(TENANT)):
                r = c.get(path, headers=headers)
                assert r.status_code == 403 and error_code(r) == "forbidden", r.text
                assert "FACELIVE_OPERATOR_KEYS" in r.json()["error"]["message"]
    with stub_client() as c:  # no key of any kind: a service open to everyone, these too
        for path in OPS:
            assert c.get(path).status_code == 200
    with stub_client(operator_keys=(hash_key(OPERATOR),)) as c:  # open API, closed operations
        for path in OPS:
            assert c.get(path).status_code == 401
            assert c.get(path, headers=bearer(OPERATOR)).status_code == 200


def test_operator_keys_file_and_refusals(tmp_path: Path) -> None:
    f = tmp_path / "operators"
    f.write_text(f"# operators\n{hash_key(OPERATOR)}  -\n", encoding="utf-8")
    with stub_client(api_keys=(hash_key(TENANT),), operator_keys_file=str(f)) as c:
        assert c.get("/metrics", headers=bearer(OPERATOR)).status_code == 200
        assert c.get("/metrics", headers=bearer(TENANT)).status_code == 403
    with pytest.raises(FaceliveError, match="also an API key"):
        stub_client(api_keys=(hash_key(TENANT),), operator_keys=(hash_key(TENANT),))
    f.write_text("not a digest\n", encoding="utf-8")
    with pytest.raises(FaceliveError, match="not a SHA-256"):
        stub_client(operator_keys_file=str(f))


def test_the_operator_keys_are_never_a_flag() -> None:
    from facelive.commands.serve import flag

    assert flag("operator_keys") is None
    assert flag("operator_keys_file") == "--operator-keys-file"
