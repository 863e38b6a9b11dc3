"""Per-request state shared by the flow and the response stream, and the record it becomes."""

from __future__ import annotations

from typing import Any

import httpcore
import httpx

from meshclient.balancing import Pick
from meshclient.routing import Backend, Decision, HeaderEdits, RequestHead
from meshclient_httpx._messages import RawHeaders
from meshclient_httpx._observe import Outcome, RequestRecord
from meshclient_httpx._pools import PoolEntry

__all__ = ["Exchange", "Upstream"]


class Exchange:
    """What one request has done so far (mutable, one per request, never shared)."""

    __slots__ = ("attempts", "backend", "decision", "error", "head", "mirrors", "outcome",
                 "pick", "reason", "request", "start")

    def __init__(self, request: httpx.Request, head: RequestHead, decision: Decision,
                 start: float) -> None:
        self.request = request
        self.head = head
        self.decision = decision
        self.start = start
        self.attempts = 0
        self.backend: Backend | None = None
        self.pick: Pick[Backend] | None = None
        self.outcome: Outcome = "response"
        self.error: str | None = None
        self.reason: str | None = None
        self.mirrors = 0

    def record(self, status: int | None, end: float) -> RequestRecord:
        b = self.backend
        pick = self.pick
        head = self.head
        return RequestRecord(
            method=head.method, host=head.host, path=head.path, route=self.decision.route,
            backend=f"{b.namespace}/{b.name}:{b.port}" if b is not None else None,
            endpoint=f"{pick.address}:{pick.port}" if pick is not None else None,
            attempts=self.attempts, outcome=self.outcome, status=status,
            latency=end - self.start, error=self.error, reason=self.reason,
            mirrors=self.mirrors,
        )


class Upstream:
    """A backend's response that goes back to the caller (the driver wraps its stream)."""

    __slots__ = ("deadline", "edits", "entry", "extra", "pick", "response", "sent_at")

    def __init__(self, response: httpcore.Response, entry: PoolEntry[Any],
                 pick: Pick[Backend] | None, sent_at: float, edits: HeaderEdits | None,
                 extra: RawHeaders, deadline: float | None = None) -> None:
        self.response = response
        self.entry = entry
        self.pick = pick
        self.sent_at = sent_at
        self.edits = edits
        self.extra = extra
        self.deadline = deadline
        """When the body must be in (the try's timeout covers the whole response)."""
