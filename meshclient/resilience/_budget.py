"""Retry budgets (GEP-3388, XBackendTrafficPolicy ``retryConstraint``), one per backend Service.

A retry is allowed iff

    retries in the last ``interval`` < ``percent``/100 × requests in the last ``interval``
    or retries in the last ``min_retry_interval`` < ``min_retry_count``

where requests include the retries themselves (SPEC-NOTES §5.4). So under total failure a
client adds at most ``percent`` more load, plus the small floor that lets quiet clients
retry at all. Exhausted means the retry is not sent and the client gets 503.

Counts live in rings of ``BUCKETS`` buckets per window, so each call is O(1) amortised
however busy the backend is (at most ``BUCKETS`` buckets are cleared per call). A window
counts the current bucket and the nine before it: between 90 % and 100 % of ``interval``,
never an event older than ``interval``. The budget is that much approximate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from meshclient.model import RetryConstraint

__all__ = ["BUCKETS", "DEFAULT_CONSTRAINT", "BudgetStatistics", "RetryBudget", "RetryBudgets"]

BUCKETS: Final = 10
DEFAULT_CONSTRAINT: Final = RetryConstraint()
"""GEP-3388 defaults: 20 % over 10 s, and always 10 retries per 1 s (Linkerd-like)."""


@attrs.define(eq=False)
class _Window:
    """Event counts over the trailing ``interval``, in ``BUCKETS`` buckets."""

    per_second: float
    """Buckets per second; a bucket's absolute number is ``floor(now × per_second)``, which
    (unlike ``now // width``) puts ``now = 1.0`` in bucket 10 of a 1 s window, not 9."""
    counts: list[int] = attrs.field(factory=lambda: [0] * BUCKETS)
    head: int | None = None
    """Absolute number of the newest bucket; None before the first event."""
    total: int = 0

    def _advance(self, now: float) -> int:
        idx = math.floor(now * self.per_second)
        head = self.head
        if head is None or idx - head >= BUCKETS:
            if head is not None:
                self.counts = [0] * BUCKETS
                self.total = 0
            self.head = idx
            return idx % BUCKETS
        if idx <= head:
            return head % BUCKETS  # same bucket, or the clock stepped back: count it here
        counts = self.counts
        for n in range(head + 1, idx + 1):
            slot = n % BUCKETS
            self.total -= counts[slot]
            counts[slot] = 0
        self.head = idx
        return idx % BUCKETS

    def add(self, now: float) -> None:
        self.counts[self._advance(now)] += 1
        self.total += 1

    def count(self, now: float) -> int:
        self._advance(now)
        return self.total


@attrs.frozen(kw_only=True)
class BudgetStatistics:
    requests: int
    """First tries recorded, all time."""
    retries: int
    """Retries allowed, all time."""
    denied: int
    """Retries refused because the budget was spent."""
    window_requests: int
    """Requests (first tries and retries) in the trailing interval."""
    window_retries: int
    recent_retries: int
    """Retries in the trailing minimum-rate interval."""


@attrs.define(eq=False)
class RetryBudget:
    """The retry allowance of one backend Service.

    Call ``record_request`` for every first try sent to the backend, and let ``next_step``
    call ``try_retry`` before each retry (it records the retry as a request too).
    """

    constraint: RetryConstraint = DEFAULT_CONSTRAINT
    _requests: _Window = attrs.field(init=False)
    _retries: _Window = attrs.field(init=False)
    _recent: _Window = attrs.field(init=False)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _sent: int = attrs.field(init=False, default=0)
    _retried: int = attrs.field(init=False, default=0)
    _denied: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        c = self.constraint
        if c.interval <= 0 or c.min_retry_interval <= 0:
            raise ValueError(
                f"constraint: interval={c.interval!r} and min_retry_interval="
                f"{c.min_retry_interval!r} must be positive"
            )
        self._requests = _Window(BUCKETS / c.interval)
        self._retries = _Window(BUCKETS / c.interval)
        self._recent = _Window(BUCKETS / c.min_retry_interval)

    def record_request(self, now: float) -> None:
        """Count a first try sent to the backend."""
        with self._lock:
            self._sent += 1
            self._requests.add(now)

    def allows(self, now: float) -> bool:
        """Whether a retry would be allowed now (spends nothing)."""
        with self._lock:
            return self._allows(now)

    def try_retry(self, now: float) -> bool:
        """Spend one retry if the budget allows it; False means answer 503 instead."""
        with self._lock:
            if not self._allows(now):
                self._denied += 1
                return False
            self._retried += 1
            self._requests.add(now)  # GEP-3388: a retry is a request too
            self._retries.add(now)
            self._recent.add(now)
            return True

    def _allows(self, now: float) -> bool:
        c = self.constraint
        # Integer form of retries < percent/100 × requests: no float rounding at the edge.
        if self._retries.count(now) * 100 < c.percent * self._requests.count(now):
            return True
        return self._recent.count(now) < c.min_retry_count

    def statistics(self, now: float) -> BudgetStatistics:
        """Counters, with the windows read as of ``now``."""
        with self._lock:
            return BudgetStatistics(
                requests=self._sent, retries=self._retried, denied=self._denied,
                window_requests=self._requests.count(now),
                window_retries=self._retries.count(now),
                recent_retries=self._recent.count(now),
            )


@attrs.define(eq=False)
class RetryBudgets:
    """One ``RetryBudget`` per backend Service, made on first use.

    GEP-3388 budgets belong to the backend, not the route, so every route (and every
    adapter of the process) sending to one Service shares one budget.
    """

    _budgets: dict[tuple[str, str], RetryBudget] = attrs.field(init=False, factory=dict)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def get(
        self, namespace: str, name: str, constraint: RetryConstraint | None = None
    ) -> RetryBudget:
        """The budget of Service ``namespace/name``.

        Args:
            constraint: The Service's XBackendTrafficPolicy ``retryConstraint``; None applies
                the GEP-3388 defaults. A changed constraint starts a fresh budget.
        """
        wanted = constraint if constraint is not None else DEFAULT_CONSTRAINT
        key = (namespace, name)
        with self._lock:
            got = self._budgets.get(key)
            if got is None or got.constraint != wanted:
                got = self._budgets[key] = RetryBudget(wanted)
            return got

    def forget(self, keep: set[tuple[str, str]]) -> None:
        """Drop the budgets of Services not in ``keep`` (call after a snapshot change)."""
        with self._lock:
            for key in [k for k in self._budgets if k not in keep]:
                del self._budgets[key]

    def statistics(self, now: float) -> Mapping[tuple[str, str], BudgetStatistics]:
        """Each Service's budget counters as of ``now`` (a read-only mapping)."""
        with self._lock:
            budgets = dict(self._budgets)
        return MappingProxyType({k: b.statistics(now) for k, b in budgets.items()})
