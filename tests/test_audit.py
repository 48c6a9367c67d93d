"""Signed results: compact JWS, EdDSA/Ed25519, JWKS; tampering and expiry detected."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facelive.audit import (
    AuditError,
    ResultSigner,
    frame_sha256,
    load_jwks,
    result_claims,
    verify_token,
)
from facelive.challenge.sequence import new_challenge


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def signer() -> ResultSigner:
    return ResultSigner.generate()


@pytest.fixture(scope="module")
def claims() -> dict:
    ch = new_challenge()
    return result_claims(
        session_id="sess-1", nonce=ch.nonce, challenge=ch.to_dict(),
        frames_sha256=[frame_sha256(b"frame-%d" % i) for i in range(3)],
        scores={"colour": 0.91, "passive": 0.83, "passive.cnn": 0.7, "planarity": 0.004},
        models={"tests": [{"name": "cnn", "version": "2"}], "fusion": "lda"},
        threshold=0.19, decision="live", reasons=[],
        checks={"timing": True, "colour": True, "passive": True})


def test_round_trip_and_claims(signer, claims) -> None:
    token = signer.sign_result(claims, ttl_s=600)
    assert token.count(".") == 2
    header = json.loads(_b64d(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": signer.kid, "typ": "JWT"}
    got = verify_token(token, signer.jwks())
    for k, v in claims.items():
        assert got[k] == v
    assert got["exp"] - got["iat"] == 600 and got["jti"]
    assert got["sid"] == got["sub"] == "sess-1"
    assert len(got["frames"]) == 3 and all(len(h) == 64 for h in got["frames"])


def test_eddsa_name_warns_nothing_and_other_warnings_still_show() -> None:
    """joserfc warns on every use of ``EdDSA`` (RFC 9864); that warning alone is ignored, even
    under ``-W error``, and any other ``SecurityWarning`` still shows."""
    code = """
import warnings
from joserfc.errors import SecurityWarning
from facelive.audit import ResultSigner, verify_token
signer = ResultSigner.generate()
claims = {"sid": "s", "nonce": "n", "decision": "live"}
for _ in range(2):
    assert verify_token(signer.sign_result(claims), signer.jwks())["sid"] == "s"
try:
    warnings.warn("another one", SecurityWarning)
except SecurityWarning:
    print("ok")
"""
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(src)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    res = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, env=env, timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


def test_jwks_is_public_only(signer) -> None:
    jwks = signer.jwks()
    (key,) = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert key["kid"] == signer.kid and key["use"] == "sig"
    assert "d" not in key


def test_verifies_with_plain_cryptography(signer, claims) -> None:
    """An independent Ed25519 check (RFC 8037 over the RFC 7515 signing input)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    token = signer.sign_result(claims)
    h, p, s = token.split(".")
    pub = Ed25519PublicKey.from_public_bytes(_b64d(signer.jwks()["keys"][0]["x"]))
    pub.verify(_b64d(s), f"{h}.{p}".encode("ascii"))  # raises when invalid
    assert json.loads(_b64d(p))["decision"] == "live"


def test_any_changed_payload_byte_breaks_it(signer, claims) -> None:
    token = signer.sign_result(claims)
    h, p, s = token.split(".")
    raw = _b64d(p)
    for i in range(len(raw)):  # every byte of the decoded payload
        changed = bytearray(raw)
        changed[i] ^= 0x01
        with pytest.raises(AuditError):
            verify_token(f"{h}.{_b64e(bytes(changed))}.{s}", signer.jwks())
    for i in range(len(p)):  # every character of the encoded payload
        c = "A" if p[i] != "A" else "B"
        with pytest.raises(AuditError):
            verify_token(f"{h}.{p[:i]}{c}{p[i + 1:]}.{s}", signer.jwks())


def test_forged_decision_header_and_signature_fail(signer, claims) -> None:
    token = signer.sign_result(claims)
    h, p, s = token.split(".")
    forged = json.loads(_b64d(p))
    forged["decision"] = "live" if claims["decision"] != "live" else "spoof"
    with pytest.raises(AuditError):
        verify_token(f"{h}.{_b64e(json.dumps(forged).encode())}.{s}", signer.jwks())
    sig = bytearray(_b64d(s))
    sig[0] ^= 0x80
    with pytest.raises(AuditError):
        verify_token(f"{h}.{p}.{_b64e(bytes(sig))}", signer.jwks())
    none_header = _b64e(json.dumps({"alg": "none", "kid": signer.kid}).encode())
    with pytest.raises(AuditError):
        verify_token(f"{none_header}.{p}.", signer.jwks())
    with pytest.raises(AuditError):
        verify_token("not-a-token", signer.jwks())


def test_hmac_with_the_public_key_is_refused(signer, claims) -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    secret = OctKey.import_key(signer.jwks()["keys"][0]["x"])
    token = jwt.encode({"alg": "HS256", "kid": signer.kid}, {**claims, "iat": int(time.time()),
                                                            "exp": int(time.time()) + 60}, secret)
    with pytest.raises(AuditError):
        verify_token(token, signer.jwks())


def test_other_key_and_expiry(signer, claims) -> None:
    other = ResultSigner.generate()
    with pytest.raises(AuditError):
        verify_token(other.sign_result(claims), signer.jwks())
    old = signer.sign_result(claims, ttl_s=60, now=time.time() - 120)
    with pytest.raises(AuditError, match="expired"):
        verify_token(old, signer.jwks())
    assert verify_token(old, signer.jwks(), now=time.time() - 100)["sid"] == "sess-1"
    with pytest.raises(AuditError, match="lacks"):
        verify_token(signer.sign_result({"sid": "x"}), signer.jwks())
    with pytest.raises(AuditError):
        verify_token(signer.sign_result(claims), {"keys": []})


def test_key_files(tmp_path, signer, claims) -> None:
    pem = tmp_path / "key.pem"
    created = ResultSigner.load_or_create(pem)
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    again = ResultSigner.load_or_create(pem)
    assert again.kid == created.kid
    token = again.sign_result(claims)
    assert verify_token(token, created.jwks())["decision"] == "live"
    jwk = tmp_path / "key.jwk"
    created.save(jwk)
    assert stat.S_IMODE(jwk.stat().st_mode) == 0o600
    assert ResultSigner.load(jwk).kid == created.kid
    with pytest.raises(AuditError, match="not overwriting"):
        created.save(pem)
    os.chmod(pem, 0o644)
    with pytest.raises(AuditError, match="readable or writable by others"):
        ResultSigner.load(pem)
    bad = tmp_path / "bad.pem"
    bad.write_text("nonsense")
    os.chmod(bad, 0o600)
    with pytest.raises(AuditError):
        ResultSigner.load(bad)


def test_load_jwks(tmp_path, signer) -> None:
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(signer.jwks()))
    assert load_jwks(f) == signer.jwks()
    f.write_text("{}")
    with pytest.raises(AuditError):
        load_jwks(f)


def test_result_claims_refuses_a_bad_decision() -> None:
    with pytest.raises(ValueError):
        result_claims(session_id="s", nonce="n", challenge={}, frames_sha256=[], scores={},
                      models={}, threshold=None, decision="maybe")


def test_cli(tmp_path, claims, capsys) -> None:
    from facelive.cli import main

    key = tmp_path / "signing.pem"
    assert main(["audit", "keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["audit", "jwks", "--key", str(key)]) == 0
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(capsys.readouterr().out)
    token = ResultSigner.load(key).sign_result(claims)
    assert main(["audit", "verify", token, "--jwks", str(jwks_file)]) == 0
    assert json.loads(capsys.readouterr().out)["sid"] == "sess-1"
    tf = tmp_path / "token.txt"
    tf.write_text(token + "\n")
    assert main(["audit", "verify", f"@{tf}", "--jwks", str(jwks_file)]) == 0
    capsys.readouterr()
    h, p, s = token.split(".")
    assert main(["audit", "verify", f"{h}.{p}x.{s}", "--jwks", str(jwks_file)]) == 1
    assert main(["audit", "verify", token, "--jwks", str(tmp_path / "missing.json")]) == 2
    old = ResultSigner.load(key).sign_result(claims, ttl_s=10, now=time.time() - 100)
    assert main(["audit", "verify", old, "--jwks", str(jwks_file)]) == 1
    assert main(["audit", "verify", old, "--jwks", str(jwks_file), "--ignore-expiry"]) == 0


def test_report_claims_sign_and_verify(signer) -> None:
    """A verifier report's claims (``ChallengeReport.claims``) round-trip through a token."""
    from facelive.challenge.verify import ChallengeReport

    ch = new_challenge()
    report = ChallengeReport(
        decision="spoof", reasons=["colour response does not follow the challenge"],
        mode="flash", weak=False, nonce=ch.nonce, frames=2,
        timing={"passed": True}, faces={"passed": True}, continuity={"passed": True},
        colour={"passed": False, "score": 0.1}, passive={"passed": True, "score": 0.9,
                                                         "threshold": 0.19, "tests": {"cnn": 0.8}},
        planarity={"residual": 0.004, "used_in_decision": False},
        frames_sha256=[frame_sha256(b"a"), frame_sha256(b"b")])
    claims = report.claims("sess-9", ch, models={"tests": []})
    got = verify_token(signer.sign_result(claims), signer.jwks())
    assert got["decision"] == "spoof" and got["nonce"] == ch.nonce and got["sid"] == "sess-9"
    assert got["scores"] == {"colour": 0.1, "passive": 0.9, "passive.cnn": 0.8,
                             "planarity": 0.004}
    assert got["checks"]["colour"] is False and got["checks"]["weak"] is False
    assert got["threshold"] == 0.19 and got["challenge"] == ch.to_dict()
    assert got["frames"] == report.frames_sha256


def test_verify_checks_iss_aud_and_sid_when_given(signer) -> None:
    claims = result_claims(session_id="s-1", nonce="n", challenge={}, frames_sha256=[],
                           scores={}, models={}, threshold=None, decision="live",
                           issuer="https://liveness.example.org", audience="3f2a9c01be47")
    token = signer.sign_result(claims)
    good = {"issuer": "https://liveness.example.org", "audience": "3f2a9c01be47",
            "session_id": "s-1"}
    assert verify_token(token, signer.jwks(), **good)["aud"] == "3f2a9c01be47"
    for name, wrong, code in (("issuer", "https://other.example.org", "wrong_iss"),
                              ("audience", "demo", "wrong_aud"),
                              ("session_id", "s-2", "wrong_sid")):
        with pytest.raises(AuditError, match="token is for another") as info:
            verify_token(token, signer.jwks(), **{**good, name: wrong})
        assert info.value.code == code and repr(wrong) in str(info.value)
    no_aud = signer.sign_result({**claims, "aud": None})
    with pytest.raises(AuditError, match="another audience"):
        verify_token(no_aud, signer.jwks(), audience="3f2a9c01be47")
    listed = signer.sign_result({**claims, "aud": ["x", "3f2a9c01be47"]})
    assert verify_token(listed, signer.jwks(), audience="3f2a9c01be47")["sid"] == "s-1"
    with pytest.raises(TypeError):  # keyword-only
        verify_token(token, signer.jwks(), "https://liveness.example.org")  # type: ignore[misc]


def test_default_lifetime_is_ten_minutes(signer, claims) -> None:
    got = verify_token(signer.sign_result(claims), signer.jwks())
    assert got["exp"] - got["iat"] == 600


def test_key_file_errors_are_one_clear_message(tmp_path) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    for path, reason in ((tmp_path / "missing" / "k.pem", "its folder does not exist"),
                         (tmp_path / "a-file" / "k.pem", "its folder does not exist"),
                         (tmp_path / "a-dir", "no such key file")):
        with pytest.raises(AuditError, match=reason) as info:
            ResultSigner.load_or_create(path)
        assert info.value.code == "key_error" and str(path) in str(info.value)
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.pem"
        ResultSigner.generate().save(locked)
        locked.chmod(0)
        with pytest.raises(AuditError, match="cannot read the key file"):
            ResultSigner.load(locked)


def test_derived_keys_are_stable_and_apart(tmp_path) -> None:
    pem = tmp_path / "k.pem"
    a = ResultSigner.load_or_create(pem)
    b = ResultSigner.load(pem)
    assert a.derive("demo").jwks() == b.derive("demo").jwks()
    assert a.derive("demo").kid not in (a.kid, a.derive("other").kid)
    token = a.derive("demo").sign_result({"sid": "s", "nonce": "n", "decision": "live"})
    with pytest.raises(AuditError):
        verify_token(token, a.jwks())
    assert verify_token(token, b.derive("demo").jwks())["sid"] == "s"


def test_cli_checks_issuer_audience_and_session(tmp_path, capsys) -> None:
    from facelive.cli import main

    signer = ResultSigner.generate()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(signer.jwks()))
    token = signer.sign_result(result_claims(
        session_id="s-1", nonce="n", challenge={}, frames_sha256=[], scores={}, models={},
        threshold=None, decision="live", issuer="https://liveness.example.org",
        audience="3f2a9c01be47"))
    base = ["audit", "verify", token, "--jwks", str(jwks_file)]
    good = ["--issuer", "https://liveness.example.org", "--audience", "3f2a9c01be47",
            "--session", "s-1"]
    assert main(base + good) == 0
    assert json.loads(capsys.readouterr().out)["sid"] == "s-1"
    for flag, wrong, said in (("--issuer", "https://x.example", "another issuer"),
                              ("--audience", "demo", "another audience (API key id)"),
                              ("--session", "s-2", "another session")):
        args = list(good)
        args[args.index(flag) + 1] = wrong
        assert main(base + args) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("facelive audit: error: token is for another") and said in err
        assert "\n" not in err
