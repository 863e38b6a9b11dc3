"""Session persistence (GEP-1619): tokens that pin a client to an endpoint, and cookies.

A token names an endpoint explicitly rather than through a hash ring, so it survives
endpoints coming and going (only sessions on a removed endpoint move) and means the same in
every client process. The token is ``<16 hex digits>[.<issue time, hex seconds>]``: the digest
is BLAKE2b of the rule key and the endpoint's stable key, so it reveals no address, and two
rules that reach one Service keep separate sessions (GEP-1619: sessions are per route rule).
The issue time is there only when ``absoluteTimeout`` is set, so the balancer can enforce it.

A header value that is not such a token (a client that chose its own session id) is hashed
consistently instead and gets no new token: the client's own value keeps working.

The adapter moves the token: it reads it from the cookie or header the config names
(``token_from_cookies`` parses ``Cookie`` headers) and writes ``Pick.session_token`` back on
the response (``set_cookie_value`` builds the ``Set-Cookie`` value).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Final, Literal

import attrs

from meshclient.model import SessionPersistence

__all__ = [
    "SessionConfig",
    "parse_token",
    "session_digest",
    "session_token",
    "set_cookie_value",
    "token_from_cookies",
]

_TOKEN: Final = re.compile(r"([0-9a-f]{16})(?:\.([0-9a-f]{1,12}))?")
_COOKIE_PREFIX: Final = "mc-session-"


@attrs.frozen(kw_only=True)
class SessionConfig:
    """One route rule's session persistence, ready for the request path.

    Build it once per rule (``from_persistence``), not per request.
    """

    rule: str
    """The rule key the caller chose (e.g. ``HTTPRoute ns/name rule 0``); sessions are per rule."""
    type: Literal["Cookie", "Header"] = "Cookie"
    name: str
    """The cookie or header name; generated from the rule key when the rule names none."""
    path: str = "/"
    lifetime: Literal["Session", "Permanent"] = "Session"
    absolute_timeout: float | None = None
    """Seconds a token stays valid after it was issued; ``None``: no limit."""

    @classmethod
    def from_persistence(cls, rule: str, persistence: SessionPersistence) -> SessionConfig:
        """Normalise a model ``SessionPersistence`` for ``rule``.

        Raises:
            ValueError: ``type`` or ``lifetime`` is not one GEP-1619 defines (the model
                rejects these while parsing, so this means a hand-built value).
        """
        if persistence.type not in ("Cookie", "Header"):
            raise ValueError(f"persistence.type: {persistence.type!r} is not Cookie or Header")
        if persistence.lifetime not in ("Session", "Permanent"):
            raise ValueError(
                f"persistence.lifetime: {persistence.lifetime!r} is not Session or Permanent"
            )
        # GEP-1619: an unset cookie name SHOULD be generated and unique; deriving it from the
        # rule key makes it unique per rule and the same in every client process.
        name = persistence.name or _COOKIE_PREFIX + hashlib.blake2b(
            rule.encode(), digest_size=6
        ).hexdigest()
        return cls(
            rule=rule,
            type="Cookie" if persistence.type == "Cookie" else "Header",
            name=name,
            path=persistence.path or "/",
            lifetime="Permanent" if persistence.lifetime == "Permanent" else "Session",
            absolute_timeout=persistence.absolute_timeout,
        )


def session_digest(rule: str, endpoint_key: str) -> str:
    """The 16-hex-digit part of a token: which endpoint, for which rule."""
    return hashlib.blake2b(f"{rule}\0{endpoint_key}".encode(), digest_size=8).hexdigest()


def session_token(config: SessionConfig, endpoint_key: str, now: float) -> str:
    """The token to hand out for a session pinned to ``endpoint_key`` at ``now``."""
    digest = session_digest(config.rule, endpoint_key)
    if config.absolute_timeout is None:
        return digest
    return f"{digest}.{max(0, int(now)):x}"


def parse_token(token: str) -> tuple[str, float | None] | None:
    """Split one of our tokens into (digest, issue time); ``None`` for anything else."""
    m = _TOKEN.fullmatch(token)
    if m is None:
        return None
    issued = m.group(2)
    return m.group(1), (float(int(issued, 16)) if issued is not None else None)


def set_cookie_value(
    config: SessionConfig,
    token: str,
    *,
    secure: bool,
    same_site: Literal["Strict", "Lax", "None"] = "Strict",
    http_only: bool = True,
) -> str:
    """The ``Set-Cookie`` header value that starts (or moves) a session.

    GEP-1619: ``Session`` lifetime sets neither Expires nor Max-Age; ``Permanent`` sets
    Max-Age from ``absoluteTimeout``; Path defaults to ``/``. Cookies SHOULD be Secure,
    HttpOnly and SameSite=Strict; a mesh MAY relax them.

    Args:
        config: The rule's session config (must be the Cookie type).
        token: ``Pick.session_token``.
        secure: Whether to mark the cookie Secure. Required because a Secure cookie never
            comes back over plain HTTP, which would end every session on an ``http://`` call;
            pass True for https.
        same_site: SameSite attribute; ``None`` needs ``secure`` per RFC 6265bis.
        http_only: HttpOnly attribute.

    Raises:
        ValueError: ``config`` is a Header session, or SameSite=None without Secure.
    """
    if config.type != "Cookie":
        raise ValueError(f"config.type: {config.type!r} sessions use a header, not a cookie")
    if same_site == "None" and not secure:
        raise ValueError("same_site: 'None' requires secure=True (RFC 6265bis §4.1.2.7)")
    parts = [f"{config.name}={token}", f"Path={config.path}"]
    if config.lifetime == "Permanent" and config.absolute_timeout is not None:
        parts.append(f"Max-Age={int(config.absolute_timeout)}")
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


def token_from_cookies(name: str, cookie_headers: Iterable[str]) -> str | None:
    """The value of cookie ``name`` from one or more ``Cookie`` header values.

    GEP-1619: implementations must cope with several cookies; the first one named ``name``
    wins (RFC 6265 §5.4 orders the more specific path first).
    """
    for header in cookie_headers:
        for pair in header.split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"')
    return None
