"""Access control: API keys (hashed at rest) and the rate-limit identity of a client address.

Keys are never stored: the service keeps the SHA-256 hex digest of each accepted key
(``FACELIVE_API_KEYS``, comma-separated, and/or ``FACELIVE_API_KEYS_FILE``, one per line) and
compares the digest of a presented ``Authorization: Bearer <key>`` with every stored digest in
constant time. Hash a key with ``printf %s "$KEY" | sha256sum`` or
``python -m facelive.server.auth`` (which can also make a new random key).

A client is rate-limited by its API key's id or by :func:`client_bucket` of its address (IPv4
exactly, IPv6 per /64 since one host holds a whole /64); the limits themselves are
:mod:`facelive.server.ratelimit`.

Nothing here depends on a route: the liveness API and the challenge-session API use the same
:class:`ApiKeys` through :mod:`facelive.server.deps`.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path

from facelive.encoding import sha256_hex
from facelive.errors import FaceliveError

__all__ = ["ApiKeys", "hash_key", "client_bucket", "parse_bearer",
           "load_operator_keys"]

_HEX = frozenset("0123456789abcdef")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is stored (UTF-8 bytes, no newline)."""
    return sha256_hex(key)


def _valid_digest(d: str) -> bool:
    return len(d) == 64 and set(d) <= _HEX


def parse_bearer(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        return None
    return token


class ApiKeys:
    """The accepted keys, as SHA-256 digests; :meth:`check` gives a key's id or None.

    ``ApiKeys([hash_key("s3cret")]).check("s3cret")`` is the first 12 hex digits of the digest
    (an id safe to log and to rate-limit by); any other key gives None.
    """

    def __init__(self, digests: Iterable[str] = ()) -> None:
        self.digests: tuple[bytes, ...] = tuple(dict.fromkeys(
            d.strip().lower().encode("ascii") for d in digests))
        for d in self.digests:
            if not _valid_digest(d.decode()):
                raise FaceliveError("an API key digest is not 64 hex digits (SHA-256)",
                                    code="usage")

    @classmethod
    def from_settings(cls, digests: Iterable[str], file: str | None) -> ApiKeys:
        """``digests`` plus those of ``file`` (one per line; blank lines and ``#`` comments
        ignored). A missing or malformed file raises :class:`FaceliveError` (code ``usage``)."""
        found = list(digests)
        if file:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as exc:
                raise FaceliveError(f"cannot read the API keys file {file}: {exc.strerror}",
                                    code="usage") from None
            for n, line in enumerate(text.splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                digest = line.split()[0].lower()  # accepts `sha256sum` output ("<hex>  -")
                if not _valid_digest(digest):
                    raise FaceliveError(f"{file}:{n}: not a SHA-256 hex digest", code="usage")
                found.append(digest)
        return cls(found)

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def __len__(self) -> int:
        return len(self.digests)

    def check(self, key: str | None) -> str | None:
        """The id of ``key`` (first 12 hex digits of its digest) when accepted, else None.

        Every stored digest is compared (``hmac.compare_digest``), so the time taken does not
        depend on which digest, or how much of one, matched.
        """
        if key is None or not self.digests:
            return None
        presented = hash_key(key).encode("ascii")
        match = None
        for d in self.digests:
            if hmac.compare_digest(presented, d):
                match = d
        return match.decode()[:12] if match is not None else None


def load_operator_keys(digests: Iterable[str], file: str | None, tenants: ApiKeys) -> ApiKeys:
    """The operator keys (``/metrics``, ``/v1/info``), read like the API keys
    (:meth:`ApiKeys.from_settings`).

    Parameters
    ----------
    digests : iterable of str
        SHA-256 hex digests of the operator keys.
    file : str or None
        A file of more digests, one per line.
    tenants : ApiKeys
        The tenants' API keys: an operator key may not be one of them.

    Returns
    -------
    ApiKeys
        The operator keys.

    Raises
    ------
    FaceliveError
        Code ``usage``: a malformed digest or file, or a digest that is also an API key's.
    """
    keys = ApiKeys.from_settings(digests, file)
    if set(keys.digests) & set(tenants.digests):
        raise FaceliveError("an operator key is also an API key: give operators keys of their "
                            "own", code="usage")
    return keys


def client_bucket(address: str | None) -> str:
    """The rate-limit identity of a client address: the IPv4 address, the IPv6 /64 network,
    or ``"unknown"``; never the raw string (it may be anything)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def main(argv: list[str] | None = None) -> int:
    """``python -m facelive.server.auth``: print the digest of a key read from standard input,
    or with ``--new`` make a random key and print it and its digest."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--new"]:
        key = secrets.token_urlsafe(32)
        print(f"key:    {key}\ndigest: {hash_key(key)}")
        return 0
    if args:
        print("usage: python -m facelive.server.auth [--new] < key", file=sys.stderr)
        return 2
    key = sys.stdin.read().strip("\r\n")
    if not key:
        print("no key on standard input", file=sys.stderr)
        return 2
    print(hash_key(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
