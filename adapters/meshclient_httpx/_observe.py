"""What happened to one request: a frozen record for the ``on_request`` hook and the log.

The record is built once, when the request is over (its response closed, or it failed), and
only when someone listens: a hook is set or ``meshclient.httpx`` logs at DEBUG (successes)
or INFO (everything that did not reach a backend's answer). The log line is one structured
record: the message says it in words, ``extra={"meshclient": record}`` carries the fields.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Literal

import attrs

from meshclient.routing import RouteInfo

__all__ = ["Observer", "Outcome", "RequestRecord", "log"]

log: Final = logging.getLogger("meshclient.httpx")

Outcome = Literal[
    "response",      # a backend answered (any status) and the body was read or closed
    "redirect",      # answered here: a RequestRedirect filter
    "respond",       # answered here: a CORS preflight
    "reject",        # answered here: no route, invalid backends (404/500)
    "no_endpoints",  # the balancer had nothing to send to (503/500)
    "overflow",      # every endpoint at its concurrency limit (503)
    "budget",        # the retry budget refused the retry (503)
    "timeout",       # a route timeout (504)
    "error",         # a transport error was raised to the caller
    "passthrough",   # not a mesh host, sent unchanged to the inner transport
    "gateway",       # via: gateway (sent to the real gateway)
]


@attrs.frozen(kw_only=True)
class RequestRecord:
    """One request through ``MeshTransport``, as the ``on_request`` hook receives it."""

    method: str
    host: str
    """The Host the request was addressed to (before any rewrite)."""
    path: str
    """The path (and query) the request was addressed to (before any rewrite)."""
    route: RouteInfo | None
    """The HTTPRoute rule that matched, if any."""
    backend: str | None
    """``namespace/name:port`` of the Service the last attempt went to."""
    endpoint: str | None
    """``address:port`` of the last attempt's endpoint (or of the gateway)."""
    attempts: int
    """Attempts sent to endpoints (0 when answered without one)."""
    outcome: Outcome
    status: int | None
    """The status returned to the caller; None when an error was raised."""
    latency: float
    """Seconds from the transport receiving the request to the response's end."""
    error: str | None = None
    """The last attempt's failure (``connect``, ``timeout``, ``reset``) or the error text."""
    reason: str | None = None
    """Why meshclient answered itself, when it did."""
    mirrors: int = 0
    """Mirror copies queued for this request."""


Hook = Callable[[RequestRecord], object]


class Observer:
    """Delivers records to the hook and the logger; ``active`` says whether to build them."""

    __slots__ = ("_hook",)

    def __init__(self, hook: Hook | None) -> None:
        self._hook = hook

    def idle(self) -> bool:
        """Whether no record can go anywhere (no hook, INFO off): the per-request check."""
        return self._hook is None and not log.isEnabledFor(logging.INFO)

    def active(self, quiet: bool) -> bool:
        """Whether a record would go anywhere (``quiet``: a plain success, logged at DEBUG)."""
        return self._hook is not None or log.isEnabledFor(
            logging.DEBUG if quiet else logging.INFO)

    def emit(self, record: RequestRecord) -> None:
        level = logging.DEBUG if record.outcome in ("response", "passthrough", "gateway") and (
            record.status is not None and record.status < 500) else logging.INFO
        if log.isEnabledFor(level):
            where = f" {record.backend} at {record.endpoint}" if record.endpoint else ""
            why = f" ({record.reason or record.error})" if record.reason or record.error else ""
            log.log(level, "%s %s%s → %s %s%s after %d attempt(s) in %.1f ms", record.method,
                    record.host, record.path, record.outcome,
                    record.status if record.status is not None else "-", where + why,
                    record.attempts, record.latency * 1000, extra={"meshclient": record})
        hook = self._hook
        if hook is not None:
            try:
                hook(record)
            except Exception:
                log.exception("the on_request hook failed")
