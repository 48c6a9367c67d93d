"""Signed liveness results: compact JWS (RFC 7515), EdDSA over Ed25519 (RFC 8037), JWKS (RFC 7517).

A site that relies on facelive must be able to tell a verdict facelive issued from one a tampered
browser made up. The server signs each session's outcome with an Ed25519 key and publishes the
public key as a JWK Set (``GET /.well-known/jwks.json``); anyone can then check a token offline with
any JOSE library, or with ``facelive audit verify TOKEN --jwks FILE|URL``.

>>> signer = ResultSigner.generate()      # a server: ResultSigner.load_or_create("key.pem")
>>> claims = result_claims(session_id="s-1", nonce="n-1", challenge={}, frames_sha256=[],
...                        scores={}, models={}, threshold=None, decision="spoof",
...                        issuer="https://liveness.example.org", audience="3f2a9c01be47")
>>> token = signer.sign_result(claims)
>>> verify_token(token, signer.jwks(), issuer="https://liveness.example.org",
...              audience="3f2a9c01be47", session_id="s-1")["decision"]  # or AuditError
'spoof'

The JOSE work is done by ``joserfc`` (a maintained implementation on top of ``cryptography``);
nothing here is hand-rolled crypto. Tokens use ``"alg": "EdDSA"`` (RFC 8037), which every JOSE
library understands; RFC 9864 (2025) deprecates that name in favour of the fully specified
``"Ed25519"``, which :func:`verify_token` also accepts. Keys are restricted to OKP / Ed25519
whatever the header says.

The claims (``docs/challenge.md`` has the schema): ``iss`` (the server's issuer URL), ``aud``
(the API key id the session was created with), ``sub`` (= ``sid``), ``sid`` (the session id),
``nonce``, ``iat``, ``exp``, ``jti``, ``challenge`` (the issued sequence), ``frames`` (SHA-256 of
every received frame, in order), ``scores`` (each test's and check's score), ``models`` (test and
model versions), ``threshold``, ``decision``, ``reasons`` and ``checks`` (each check's
pass/fail). :func:`verify_token` checks the signature, the algorithm, the key id, ``exp`` and
``iat``, the presence of ``sid``, ``nonce`` and ``decision``, and, when it is given them, the
expected ``iss``, ``aud`` and ``sid``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import time
import warnings
from pathlib import Path
from typing import Any

from facelive.encoding import sha256_hex
from facelive.errors import FaceliveError

__all__ = [
    "AuditError", "ResultSigner", "verify_token", "result_claims", "frame_sha256",
    "load_jwks", "ALGORITHM", "DEFAULT_TTL_S", "DEFAULT_ISSUER", "REQUIRED_CLAIMS",
]

ALGORITHM = "EdDSA"
ACCEPTED_ALGORITHMS = ("EdDSA", "Ed25519")
DEFAULT_TTL_S = 600
"""Default lifetime of a signed result (``exp - iat``), seconds: a relying site checks a token
right after the session, not later."""
DEFAULT_ISSUER = "facelive"
"""The ``iss`` claim when none is configured (``facelive serve --issuer URL`` sets one)."""
REQUIRED_CLAIMS = ("sid", "nonce", "iat", "exp", "decision")
TOKEN_TYPE = "JWT"
MAX_TOKEN_BYTES = 1 << 20



def _registry() -> Any:
    """A joserfc JWS registry that allows only ``EdDSA`` and ``Ed25519``
    (``JWSRegistry(algorithms=...)``), with joserfc's warning about ``EdDSA`` ignored
    (:func:`_ignore_eddsa_warning`)."""
    global _REGISTRY
    _ignore_eddsa_warning()
    if _REGISTRY is None:
        from joserfc.jws import JWSRegistry

        _REGISTRY = JWSRegistry(
            algorithms=[a for a in ACCEPTED_ALGORITHMS if a in JWSRegistry.algorithms])
    return _REGISTRY


_EDDSA_WARNING = r"EdDSA is deprecated"
"""Start of the ``SecurityWarning`` joserfc issues on every use of ``EdDSA`` since RFC 9864."""


def _ignore_eddsa_warning() -> None:
    """Ignore joserfc's RFC 9864 ``SecurityWarning`` about the ``EdDSA`` name, which this module
    keeps on purpose (module docstring: every JOSE library understands it).

    The filter matches that category and message only; every other warning, joserfc's included,
    still shows. It goes first in the list, so it holds under ``-W error`` too, and it is checked
    on every signature or verification because a ``warnings.catch_warnings()`` block (pytest
    runs each test in one) restores the list it started with. It is added only when missing, and
    never removed: toggling filters around a call is not thread-safe."""
    from joserfc.errors import SecurityWarning

    for action, message, category, _module, _lineno in warnings.filters:
        if (action == "ignore" and category is SecurityWarning and message is not None
                and message.pattern == _EDDSA_WARNING):
            return
    warnings.filterwarnings("ignore", message=_EDDSA_WARNING, category=SecurityWarning)


_REGISTRY: Any = None


class AuditError(FaceliveError):
    """A token that does not verify (bad signature, tampered, expired, unknown key...), or a
    signing key that cannot be used."""

    code = "invalid_token"


def frame_sha256(data: bytes) -> str:
    """Hex SHA-256 of one received frame's bytes (as uploaded, before decoding).

    Parameters
    ----------
    data : bytes
        The frame's encoded bytes.

    Returns
    -------
    str
        64 lowercase hex digits.

    Examples
    --------
    >>> frame_sha256(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return sha256_hex(data)


def _check_private_file(path: Path) -> None:
    """Refuse a private key file that others may read or write (POSIX permissions)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IWGRP):
        raise AuditError(f"{path}: private key file is readable or writable by others "
                         f"(mode {mode:o}); chmod 600 it", code="key_error")


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never exists before: O_EXCL) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data)
    finally:
        os.close(fd)


class ResultSigner:
    """An Ed25519 signing key with its key id (RFC 7638 thumbprint unless given).

    Parameters
    ----------
    key : joserfc.jwk.OKPKey
        A private Ed25519 key.
    kid : str, optional
        The key id put in each token's header and in the JWK Set; default: the key's own
        ``kid``, else its RFC 7638 thumbprint.

    Raises
    ------
    AuditError
        When the key is not a private Ed25519 key.
    """

    def __init__(self, key: Any, kid: str | None = None) -> None:
        from joserfc.jwk import OKPKey

        if not isinstance(key, OKPKey) or key.as_dict().get("crv") != "Ed25519":
            raise AuditError("the signing key must be an Ed25519 OKP key", code="key_error")
        if not key.is_private:
            raise AuditError("the signing key has no private part", code="key_error")
        self._key = key
        self.kid = kid or key.kid or key.thumbprint()

    # -- keys ---------------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> ResultSigner:
        """A new random key (in memory only: :meth:`save` it to keep it).

        Returns
        -------
        ResultSigner
        """
        from joserfc.jwk import OKPKey

        return cls(OKPKey.generate_key("Ed25519", private=True))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResultSigner:
        """Load a PEM (PKCS#8) or JWK (JSON) private key file; refuses a file that others can
        read or write.

        Parameters
        ----------
        path : str or os.PathLike
            The key file.

        Returns
        -------
        ResultSigner

        Raises
        ------
        AuditError
            When the file is missing or unreadable, readable or writable by others, or not an
            Ed25519 private key.
        """
        from cryptography.exceptions import UnsupportedAlgorithm
        from joserfc.errors import JoseError
        from joserfc.jwk import OKPKey

        p = Path(path)
        try:
            if not p.is_file():
                raise AuditError(f"{p}: no such key file", code="key_error")
            _check_private_file(p)
            raw = p.read_bytes()
        except OSError as exc:
            raise AuditError(f"{p}: cannot read the key file ({exc.strerror or exc})",
                             code="key_error") from None
        kid = None
        try:
            if raw.lstrip().startswith(b"{"):
                data = json.loads(raw)
                kid = data.get("kid")
                key = OKPKey.import_key(data)
            else:
                key = OKPKey.import_key(raw)
        except (JoseError, UnsupportedAlgorithm, ValueError, TypeError, KeyError) as exc:
            raise AuditError(f"{p}: not an Ed25519 private key ({type(exc).__name__})",
                             code="key_error") from None
        return cls(key, kid)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str], fmt: str | None = None
                       ) -> ResultSigner:
        """Load the key at ``path``, or generate one and save it there (mode 0600).

        Parameters
        ----------
        path : str or os.PathLike
            The key file.
        fmt : {"pem", "jwk"}, optional
            The format of a new file (default: from the name, see :meth:`save`).

        Returns
        -------
        ResultSigner

        Raises
        ------
        AuditError
            When the file cannot be loaded (:meth:`load`) or created (:meth:`save`: its folder
            is missing or not writable).
        """
        p = Path(path)
        if p.exists():
            return cls.load(p)
        signer = cls.generate()
        signer.save(p, fmt)
        return signer

    def save(self, path: str | os.PathLike[str], fmt: str | None = None) -> None:
        """Write the private key to a new file (mode 0600). Refuses to overwrite.

        Parameters
        ----------
        path : str or os.PathLike
            The new file.
        fmt : {"pem", "jwk"}, optional
            PEM (PKCS#8), or a JWK; default: ``"jwk"`` when the name ends in ``.json`` or
            ``.jwk``, else ``"pem"``.

        Raises
        ------
        AuditError
            When the file exists, cannot be written (a missing or read-only folder) or the
            format is unknown.
        """
        p = Path(path)
        fmt = fmt or ("jwk" if p.suffix.lower() in (".json", ".jwk") else "pem")
        if fmt == "jwk":
            d = dict(self._key.as_dict(private=True))
            d["kid"] = self.kid
            data = (json.dumps(d, indent=1) + "\n").encode()
        elif fmt == "pem":
            data = self._key.as_pem(private=True)
        else:
            raise AuditError(f"unknown key format {fmt!r} (pem, jwk)", code="key_error")
        try:
            _write_private(p, data)
        except FileExistsError:
            raise AuditError(f"{p} exists; not overwriting a key", code="key_error") from None
        except OSError as exc:
            where = "its folder does not exist" if isinstance(
                exc, (FileNotFoundError, NotADirectoryError)) else exc.strerror or str(exc)
            raise AuditError(f"{p}: cannot create the key file ({where})",
                             code="key_error") from None

    def derive(self, purpose: str) -> ResultSigner:
        """Another Ed25519 key, derived from this one for ``purpose`` (HKDF-SHA256 of the private
        key with ``info = "facelive signing key: " + purpose``, RFC 5869, by ``cryptography``).

        Every process holding the same key file derives the same key, and neither key can be
        computed from the other's public part; the demo signs its tokens with
        ``derive("demo")``, whose public key is never in the production JWK Set.

        Parameters
        ----------
        purpose : str
            What the key is for (any text; different texts give unrelated keys).

        Returns
        -------
        ResultSigner
            The derived key, with its RFC 7638 thumbprint as ``kid``.
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        from joserfc.jwk import OKPKey

        seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"facelive signing key: {purpose}".encode()).derive(
            self._key.private_key.private_bytes_raw())
        key = OKPKey.import_key(Ed25519PrivateKey.from_private_bytes(seed))
        return ResultSigner(key, key.thumbprint())

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (with ``kid``, ``alg`` and ``use``).

        Returns
        -------
        dict
        """
        d = dict(self._key.as_dict(private=False))
        d.update(kid=self.kid, alg=ALGORITHM, use="sig")
        return d

    def jwks(self) -> dict[str, Any]:
        """The JWK Set (RFC 7517) to publish at ``/.well-known/jwks.json``: public part only.

        Returns
        -------
        dict
            ``{"keys": [public JWK]}``.
        """
        return {"keys": [self.public_jwk()]}

    # -- signing ------------------------------------------------------------------------------
    def sign_result(self, payload: dict[str, Any], *, ttl_s: float = DEFAULT_TTL_S,
                    now: float | None = None) -> str:
        """Sign ``payload`` as a compact JWS (EdDSA over Ed25519).

        Parameters
        ----------
        payload : dict
            The claims, typically :func:`result_claims`; ``iat`` and ``exp`` (= ``iat + ttl_s``)
            are added unless present, and a random ``jti``.
        ttl_s : float, optional
            Seconds from ``iat`` to ``exp``.
        now : float, optional
            Unix time to use as ``iat`` (default: the clock).

        Returns
        -------
        str
            The token: three base64url parts separated by dots.
        """
        from joserfc import jwt

        claims = dict(payload)
        iat = int(time.time() if now is None else now)
        claims.setdefault("iat", iat)
        claims.setdefault("exp", int(claims["iat"] + ttl_s))
        claims.setdefault("jti", secrets.token_urlsafe(12))
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": TOKEN_TYPE}
        return jwt.encode(header, claims, self._key, registry=_registry())


def load_jwks(source: str | os.PathLike[str] | dict[str, Any], timeout_s: float = 5.0
              ) -> dict[str, Any]:
    """A JWK Set from a dict, a JSON file, or an ``http(s)://`` URL (fetched with a timeout).

    Parameters
    ----------
    source : str, os.PathLike or dict
        A JWK Set itself, a JSON file, or an ``http://`` / ``https://`` URL.
    timeout_s : float, optional
        Timeout of the HTTP request.

    Returns
    -------
    dict
        The JWK Set (``{"keys": [...]}``).

    Raises
    ------
    AuditError
        When the source cannot be read or is not a JWK Set.
    """
    if isinstance(source, dict):
        return source
    s = os.fspath(source)
    try:
        if s.startswith(("http://", "https://")):
            from urllib.request import urlopen

            with urlopen(s, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only
                data = json.loads(resp.read(MAX_TOKEN_BYTES))
        else:
            data = json.loads(Path(s).read_text())
    except (OSError, ValueError) as exc:
        raise AuditError(f"cannot read the JWK Set from {s}: {exc}", code="jwks_error") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise AuditError(f"{s} is not a JWK Set (no \"keys\" list)", code="jwks_error")
    return data


def verify_token(token: str | bytes, jwks: dict[str, Any], *, issuer: str | None = None,
                 audience: str | None = None, session_id: str | None = None,
                 now: float | None = None, leeway_s: float = 0.0) -> dict[str, Any]:
    """Check ``token`` against the JWK Set and return its claims.

    A relying site passes all of ``issuer``, ``audience`` and ``session_id``: a token that
    verifies is then this server's verdict on the site's own session, not one issued to
    another site (``aud``) or for another user's session (``sid``).

    Parameters
    ----------
    token : str or bytes
        A compact JWS, as :meth:`ResultSigner.sign_result` makes.
    jwks : dict
        The JWK Set of the signing keys (``GET /.well-known/jwks.json``, :func:`load_jwks`).
    issuer : str, optional
        The expected ``iss`` (the server's ``--issuer`` URL); not checked when None.
    audience : str, optional
        The expected ``aud`` (the site's API key id, returned as ``aud`` by
        ``POST /v1/sessions``); a token whose ``aud`` is a list must contain it; not checked
        when None.
    session_id : str, optional
        The expected ``sid`` (the session the site created); not checked when None.
    now : float, optional
        Unix time to check ``exp`` and ``iat`` against (default: the clock).
    leeway_s : float, optional
        Clock skew allowed on ``exp`` and ``iat``.

    Returns
    -------
    dict
        The claims (see the module docstring). The caller still reads what ``decision`` says.

    Raises
    ------
    AuditError
        When the token is malformed, uses another algorithm, names a key not in the set (or not
        Ed25519), fails its signature (any changed byte), has expired, was issued in the
        future, lacks one of :data:`REQUIRED_CLAIMS`, or has another ``iss``, ``aud`` or
        ``sid`` than the one given.
    """
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet, OKPKey

    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise AuditError("not a compact JWS (three dot-separated parts)")
    keys = []
    for k in jwks.get("keys", []) if isinstance(jwks, dict) else []:
        if isinstance(k, dict) and k.get("kty") == "OKP" and k.get("crv") == "Ed25519":
            pub = {f: k[f] for f in ("kty", "crv", "x", "kid") if f in k}
            try:
                keys.append(OKPKey.import_key(pub))
            except (JoseError, ValueError, TypeError, KeyError):  # not a usable key: skipped
                continue
    if not keys:
        raise AuditError("the JWK Set has no Ed25519 key")
    try:
        tok = jwt.decode(token, KeySet(keys), registry=_registry())
    except JoseError as exc:
        raise AuditError(f"token does not verify: {exc.error}: {exc.description or ''}".rstrip(
            ": ")) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise AuditError(f"token does not verify: {type(exc).__name__}") from None
    if tok.header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise AuditError(f"unexpected algorithm {tok.header.get('alg')!r}")
    claims = dict(tok.claims)
    missing = [c for c in REQUIRED_CLAIMS if c not in claims]
    if missing:
        raise AuditError(f"token lacks claims: {', '.join(missing)}")
    t = time.time() if now is None else float(now)
    try:
        exp, iat = float(claims["exp"]), float(claims["iat"])
    except (TypeError, ValueError):
        raise AuditError("exp and iat must be numbers") from None
    if t >= exp + leeway_s:
        raise AuditError(f"token expired at {int(exp)} (now {int(t)})")
    if iat > t + leeway_s + 60:
        raise AuditError(f"token issued in the future ({int(iat)} > {int(t)})")
    _expect(claims, "iss", issuer, "issuer")
    _expect(claims, "aud", audience, "audience (API key id)")
    _expect(claims, "sid", session_id, "session")
    return claims


def _expect(claims: dict[str, Any], name: str, expected: str | None, what: str) -> None:
    """Raise :class:`AuditError` unless claim ``name`` is ``expected`` (or, for a list, holds
    it); nothing to check when ``expected`` is None."""
    if expected is None:
        return
    got = claims.get(name)
    ok = expected in got if isinstance(got, list) else got == expected
    if not ok:
        raise AuditError(f"token is for another {what}: {name} is {got!r}, expected "
                         f"{expected!r}", code=f"wrong_{name}")


def result_claims(
    *,
    session_id: str,
    nonce: str,
    challenge: dict[str, Any],
    frames_sha256: list[str],
    scores: dict[str, float | None],
    models: dict[str, Any],
    threshold: float | None,
    decision: str,
    reasons: list[str] | None = None,
    checks: dict[str, Any] | None = None,
    issuer: str = DEFAULT_ISSUER,
    audience: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of a session's signed result (``iat``/``exp``/``jti`` are added when signing).

    Parameters
    ----------
    session_id : str
        The session (claims ``sid`` and ``sub``).
    nonce : str
        The challenge's single-use nonce.
    challenge : dict
        The issued sequence (:meth:`facelive.challenge.Challenge.to_dict`).
    frames_sha256 : list of str
        One hex digest per received frame, in upload order (:func:`frame_sha256`).
    scores : dict
        Each test's and check's score (``None`` where there is none).
    models : dict
        The tests' and models' versions (``Pipeline.info()``).
    threshold : float or None
        The passive tests' threshold.
    decision : {"live", "spoof", "unknown"}
        The outcome.
    reasons : list of str, optional
        Why the decision is not ``live``.
    checks : dict, optional
        Each check's pass/fail and ``weak``.
    issuer : str, optional
        The ``iss`` claim (the server's issuer URL).
    audience : str, optional
        The ``aud`` claim (the API key id the session was created with); absent when None.
    extra : dict, optional
        More claims; they never replace the ones above.

    Returns
    -------
    dict
        The claims, ready for :meth:`ResultSigner.sign_result`.

    Raises
    ------
    ValueError
        When ``decision`` is not one of the three.
    """
    if decision not in ("live", "spoof", "unknown"):
        raise ValueError(f"decision must be live, spoof or unknown, got {decision!r}")
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": session_id,
        "sid": session_id,
        "nonce": nonce,
        "challenge": challenge,
        "frames": list(frames_sha256),
        "scores": dict(scores),
        "models": models,
        "threshold": threshold,
        "decision": decision,
        "reasons": list(reasons or []),
        "checks": dict(checks or {}),
    }
    if audience is not None:
        claims["aud"] = audience
    if extra:
        for k, v in extra.items():
            claims.setdefault(k, v)
    return claims
