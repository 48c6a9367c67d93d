"""``facelive audit``: signing keys, the JWK Set, and offline verification of signed results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="signed results: verify a token, make a key, print the JWK Set",
        description="Signed session results (compact JWS, EdDSA/Ed25519). verify checks the "
                    "signature and exp, and iss, aud and sid when --issuer, --audience and "
                    "--session are given (a relying site gives all three). Exit status of "
                    "verify: 0 the token verifies (its claims are printed), 1 it does not (or "
                    "the JWK Set cannot be read), 2 usage.",
    )
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = asub.add_parser("verify", help="verify a token against a JWK Set; print its claims")
    v.add_argument("token", help="the token, or @FILE to read it from a file ('-': stdin)")
    v.add_argument("--jwks", required=True, metavar="FILE|URL",
                   help="the JWK Set: a JSON file or an http(s) URL (/.well-known/jwks.json)")
    v.add_argument("--issuer", metavar="URL",
                   help="the expected iss claim (the server's --issuer URL)")
    v.add_argument("--audience", metavar="KEY_ID",
                   help="the expected aud claim: your API key id (the 'aud' that "
                        "POST /v1/sessions returns)")
    v.add_argument("--session", metavar="SESSION_ID",
                   help="the expected sid claim: the session you created")
    v.add_argument("--leeway", type=float, default=0.0, help="seconds of clock skew allowed")
    v.add_argument("--ignore-expiry", action="store_true",
                   help="accept an expired token (auditing an old session)")
    v.set_defaults(func=run_verify)

    k = asub.add_parser("keygen", help="create an Ed25519 signing key file (mode 0600)")
    k.add_argument("--out", required=True, metavar="FILE",
                   help="PEM (PKCS#8), or a JWK when the name ends in .json or .jwk")
    k.set_defaults(func=run_keygen)

    j = asub.add_parser("jwks", help="print the JWK Set (public key) of a signing key file")
    j.add_argument("--key", required=True, metavar="FILE")
    j.set_defaults(func=run_jwks)


def _err(msg: str) -> None:
    print(f"facelive audit: error: {msg}", file=sys.stderr)


def run_verify(args: argparse.Namespace) -> int:
    from facelive.audit import AuditError, load_jwks, verify_token

    token = args.token
    if token == "-":
        token = sys.stdin.read()
    elif token.startswith("@"):
        path = Path(token[1:])
        if not path.is_file():
            _err(f"{path} is not a file")
            return 2
        token = path.read_text()
    src = args.jwks
    if not src.startswith(("http://", "https://")) and not Path(src).is_file():
        _err(f"--jwks: {src} is not a file or an http(s) URL")
        return 2
    expected = {"issuer": args.issuer, "audience": args.audience, "session_id": args.session}
    try:
        jwks = load_jwks(src)
        if args.ignore_expiry:
            import base64

            payload = token.strip().split(".")[1] if token.count(".") == 2 else ""
            claims0 = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            claims = verify_token(token, jwks, now=float(claims0.get("iat", 0)), **expected)
        else:
            claims = verify_token(token, jwks, leeway_s=args.leeway, **expected)
    except AuditError as exc:
        _err(str(exc))
        return 1
    except (ValueError, TypeError) as exc:
        _err(f"not a token: {type(exc).__name__}")
        return 1
    print(json.dumps(claims, indent=2))
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from facelive.audit import AuditError, ResultSigner

    try:
        signer = ResultSigner.generate()
        signer.save(args.out)
    except AuditError as exc:
        _err(str(exc))
        return 1
    print(f"wrote {args.out} (mode 0600), kid {signer.kid}")
    return 0


def run_jwks(args: argparse.Namespace) -> int:
    from facelive.audit import AuditError, ResultSigner

    try:
        signer = ResultSigner.load(args.key)
    except AuditError as exc:
        _err(str(exc))
        return 1
    print(json.dumps(signer.jwks(), indent=2))
    return 0
