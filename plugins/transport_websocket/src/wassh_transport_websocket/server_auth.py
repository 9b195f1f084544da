"""Bearer tokens for ``wassh relay``: where they come from and how they are compared.

Tokens come from ``--token-file`` (one a line; blank lines and ``#`` comments
ignored), from the ``WASSH_RELAY_TOKENS`` environment variable (comma-separated)
and from ``--token``. Any of the three turns authentication on, even when it
yields no token at all: a relay told to check tokens never falls back to
admitting everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from websockets.datastructures import Headers

from .server_log import fingerprint

TOKENS_ENV = "WASSH_RELAY_TOKENS"

# What fits in "Authorization: Bearer TOKEN" unquoted: visible ASCII, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")


class TokenError(ValueError):
    """A token source that cannot be used; the message is one line."""


def check_token(token: str, where: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise TokenError(f"{where}: a token is printable ASCII without spaces")
    return token


def read_token_file(path: str) -> list[str]:
    """The tokens in ``path``, one a line. Raises ``TokenError`` (one line) when unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise TokenError(f"cannot read --token-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokenError(f"--token-file {path}: not UTF-8 text") from None
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            tokens.append(check_token(line, f"--token-file {path} line {number}"))
    return tokens


def env_tokens(value: str) -> list[str]:
    tokens = [t.strip() for t in value.split(",")]
    return [check_token(t, f"${TOKENS_ENV}") for t in tokens if t]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Tokens:
    """The accepted tokens, kept as digests so every comparison has the same length."""

    required: bool = False
    digests: tuple[bytes, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, tokens: Iterable[str], *, required: bool) -> Tokens:
        return cls(required, tuple(dict.fromkeys(_digest(t) for t in tokens)))

    def __len__(self) -> int:
        return len(self.digests)

    def matches(self, presented: str) -> bool:
        """Constant time in the token's content: every stored digest is compared."""
        digest = _digest(presented)
        found = False
        for stored in self.digests:
            found |= hmac.compare_digest(stored, digest)
        return found


@dataclass(frozen=True)
class Credential:
    """What a request authenticated with: nothing (no tokens configured) or one token."""

    digest: bytes = b""
    name: str = ""  # a fingerprint for the log

    def same_as(self, other: Credential) -> bool:
        return hmac.compare_digest(self.digest, other.digest)


ANONYMOUS = Credential()


class AuthError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def authenticate(tokens: Tokens, headers: Headers) -> Credential:
    """The request's credential; raises ``AuthError`` (400 or 401) when it has none that counts."""
    values: Sequence[str] = headers.get_all("Authorization")
    if len(values) > 1:
        # two headers might be read differently by a proxy in front: refuse both
        raise AuthError(400, "more than one Authorization header")
    if not tokens.required:
        return ANONYMOUS
    if not values:
        raise AuthError(401, "no bearer token")
    scheme, _, given = values[0].strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise AuthError(401, "not a bearer token")
    if not tokens.matches(given):
        raise AuthError(401, "wrong token")
    return Credential(_digest(given), fingerprint(given, 8))
