"""Traffic settings a route rule or a policy carries: timeouts, retries, budgets, sessions."""

from __future__ import annotations

from typing import Final

import attrs

from meshclient.model._duration import parse_duration
from meshclient.model._reader import INVALID, UNSUPPORTED_VALUE, Reader

__all__ = [
    "DEFAULT_RETRY_ATTEMPTS",
    "DEFAULT_RETRY_BACKOFF",
    "RetryConstraint",
    "RetryPolicy",
    "SessionPersistence",
    "Timeouts",
    "parse_duration_field",
]

DEFAULT_RETRY_ATTEMPTS: Final = 1
"""Retries after the first try when a retry stanza leaves ``attempts`` unset (Envoy's default)."""
DEFAULT_RETRY_BACKOFF: Final = 0.025
"""Seconds before the first retry when ``backoff`` is unset (Envoy's base interval)."""


@attrs.frozen(kw_only=True)
class Timeouts:
    """GEP-1742 timeouts in seconds; ``None`` is unset, ``0.0`` is disabled (``0s``)."""

    request: float | None = None
    backend_request: float | None = None


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """GEP-1731: retries after the first try, on which statuses, how far apart at least."""

    attempts: int = DEFAULT_RETRY_ATTEMPTS
    codes: frozenset[int] = frozenset()
    backoff: float = DEFAULT_RETRY_BACKOFF
    source: str = "HTTPRoute"
    """Where the policy came from: ``HTTPRoute`` (the rule's ``retry``) or an annotation."""


@attrs.frozen(kw_only=True)
class RetryConstraint:
    """GEP-3388 retry budget (XBackendTrafficPolicy ``retryConstraint``)."""

    percent: int = 20
    interval: float = 10.0
    min_retry_count: int = 10
    min_retry_interval: float = 1.0


@attrs.frozen(kw_only=True)
class SessionPersistence:
    """GEP-1619 session persistence, from a route rule or an XBackendTrafficPolicy."""

    type: str = "Cookie"
    """``Cookie`` or ``Header``."""
    name: str | None = None
    """Cookie or header name; None lets meshclient generate a cookie name."""
    path: str = "/"
    lifetime: str = "Session"
    absolute_timeout: float | None = None


def parse_duration_field(r: Reader, key: str) -> float | None:
    text = r.opt_str(key)
    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds is None:
        r.error(key, text, "is not a Gateway API duration such as '10s' or '1h30m' (GEP-2257)",
                INVALID)
    return seconds


def parse_timeouts(r: Reader) -> Timeouts:
    request = parse_duration_field(r, "request")
    backend = parse_duration_field(r, "backendRequest")
    # HR CEL: backendRequest must not exceed request, unless request is disabled (0s).
    if request and backend is not None and backend > request:
        r.error("backendRequest", r.get("backendRequest"),
                f"must not be longer than request ({r.get('request')!s})", INVALID)
        backend = None
    return Timeouts(request=request, backend_request=backend)


def parse_retry(r: Reader) -> RetryPolicy:
    codes: set[int] = set()
    raw_codes = r.get("codes")
    if raw_codes is not None and not isinstance(raw_codes, list):
        r.error("codes", raw_codes, "must be a list of HTTP status codes", INVALID)
    for index, code in enumerate(raw_codes if isinstance(raw_codes, list) else ()):
        # The CRD allows 400..599; the GEP's 100..999 is not what clusters accept.
        if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code <= 599:
            r.error(f"codes[{index}]", code, "must be an HTTP status code from 400 to 599",
                    INVALID)
            continue
        codes.add(code)
    attempts = r.int("attempts", DEFAULT_RETRY_ATTEMPTS, minimum=0)
    backoff = parse_duration_field(r, "backoff")
    return RetryPolicy(
        attempts=DEFAULT_RETRY_ATTEMPTS if attempts is None else attempts,
        codes=frozenset(codes),
        backoff=DEFAULT_RETRY_BACKOFF if backoff is None else backoff,
    )


def parse_session_persistence(r: Reader) -> SessionPersistence | None:
    kind = r.str("type", "Cookie")
    if kind not in ("Cookie", "Header"):
        r.error("type", kind, "is not Cookie or Header", UNSUPPORTED_VALUE)
        return None
    name = r.opt_str("sessionName")  # older shape, still written by many manifests
    path = "/"
    lifetime = "Session"
    if kind == "Cookie":
        cookie = r.child("cookie") or r.child("cookieConfig")
        if cookie is not None:
            name = cookie.opt_str("name") or name
            path = cookie.str("path", "/") or "/"
            lifetime = cookie.str("lifetimeType", "Session")
            if lifetime not in ("Session", "Permanent"):
                cookie.error("lifetimeType", lifetime, "is not Session or Permanent",
                             UNSUPPORTED_VALUE)
                return None
    else:
        header = r.child("header")
        name = header.opt_str("name") if header is not None else name
        if not name:
            r.missing("header.name")
            return None
    timeout = parse_duration_field(r, "absoluteTimeout")
    if lifetime == "Permanent" and timeout is None:
        r.error("absoluteTimeout", None, "is required with lifetimeType Permanent", INVALID)
        return None
    return SessionPersistence(
        type=kind, name=name, path=path, lifetime=lifetime, absolute_timeout=timeout
    )


def parse_retry_constraint(r: Reader) -> RetryConstraint:
    percent, interval = 20, 10.0
    budget = r.child("budget")
    if budget is not None:
        percent = budget.int("percent", 20, minimum=0, maximum=100) or 0
        got = parse_duration_field(budget, "interval")
        if got is not None:
            if not 1.0 <= got <= 3600.0:
                budget.error("interval", budget.get("interval"), "must be from 1s to 1h", INVALID)
            else:
                interval = got
    count, per = 10, 1.0
    rate = r.child("minRetryRate")
    if rate is not None:
        count = rate.int("count", 10, minimum=1, maximum=1_000_000) or 10
        got = parse_duration_field(rate, "interval")
        if got is not None:
            if not 0.0 < got <= 3600.0:
                rate.error("interval", rate.get("interval"), "must be over 0s and at most 1h",
                           INVALID)
            else:
                per = got
    return RetryConstraint(
        percent=percent, interval=interval, min_retry_count=count, min_retry_interval=per
    )
