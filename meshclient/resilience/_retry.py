"""Whether and when to try again (GEP-1731), and how long each try may take (GEP-1742).

``next_step`` is a pure function of the rule's ``RetryPolicy``, the attempt's ``Outcome``
and the request's count and deadline; the budget is the only state it touches. The adapter
sleeps ``step.delay`` and sends the next try with ``step.timeout``; nothing here waits.

Decisions, in order:

1. A response whose status is not in the rule's ``codes`` is final (``DONE``).
2. No retry stanza: nothing is retried (GEP-1731: the stanza enables retries).
3. A request that may have reached the server is retried only for idempotent methods
   (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE). Connect failures and refused
   streams never reached it, so they retry for any method. GEP-1731 leaves this open; not
   repeating a POST the server may have acted on is the safe reading.
4. ``attempts`` retries used: stop with the last upstream status (``DONE``), or, after a
   failure without a response, 504 for a timeout and 503 for a connection error.
5. The request timeout must hold every try and every backoff: if the next delay would reach
   the deadline, stop with 504 now rather than wait for nothing.
6. The backend's retry budget (GEP-3388) must allow it, else 503.
7. Otherwise ``RETRY`` after a jittered backoff, with a per-try timeout of
   ``min(backendRequest, time left)``.

Attempts that hit ``backendRequest`` (``Failure.TIMEOUT``) are retried even when ``codes``
is empty (SPEC-NOTES §5.3), as are connection errors.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

import attrs

from meshclient.model import RetryPolicy, Timeouts
from meshclient.resilience._backoff import backoff_delay
from meshclient.resilience._budget import RetryBudget
from meshclient.resilience._outcome import NOT_SENT, Failure, Outcome

__all__ = [
    "IDEMPOTENT_METHODS",
    "Step",
    "StepKind",
    "attempt_timeout",
    "deadline_for",
    "is_idempotent",
    "next_step",
]

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""RFC 9110 §9.2.2. POST, PATCH, CONNECT and unknown methods are not idempotent."""


class StepKind(enum.Enum):
    RETRY = "retry"
    """Wait ``delay`` seconds, then send another try with per-try ``timeout``."""
    DONE = "done"
    """Hand the last upstream response (``status``) to the caller as it is."""
    FAIL = "fail"
    """No usable response: answer ``status`` (503 or 504) yourself."""


@attrs.frozen(kw_only=True)
class Step:
    """What to do after an attempt. Build with ``again``, ``done`` or ``fail``."""

    kind: StepKind
    reason: str
    """Why, for logs and ``resolve``; never parsed."""
    status: int | None = None
    """DONE: the upstream status; FAIL: the status to answer; RETRY: None."""
    delay: float = 0.0
    """RETRY: seconds to wait before the next try."""
    timeout: float | None = None
    """RETRY: the next try's timeout in seconds; None: no bound from the route."""

    @property
    def retry(self) -> bool:
        return self.kind is StepKind.RETRY

    @classmethod
    def again(cls, delay: float, timeout: float | None, reason: str) -> Step:
        return cls(kind=StepKind.RETRY, reason=reason, delay=delay, timeout=timeout)

    @classmethod
    def done(cls, status: int, reason: str) -> Step:
        return cls(kind=StepKind.DONE, reason=reason, status=status)

    @classmethod
    def fail(cls, status: int, reason: str) -> Step:
        return cls(kind=StepKind.FAIL, reason=reason, status=status)


_FINAL: dict[int, Step] = {}


def _final(status: int) -> Step:
    # Most attempts end here (a 200), so these are shared rather than built per request.
    got = _FINAL.get(status)
    if got is None:
        got = _FINAL[status] = Step.done(status, f"status {status} is final for this rule")
    return got


def _give_up(outcome: Outcome, reason: str) -> Step:
    if outcome.status is not None:
        return Step.done(outcome.status, reason)
    # Conformance: 504 after timeouts, 503 after connection errors (SPEC-NOTES §5.3).
    return Step.fail(504 if outcome.failure is Failure.TIMEOUT else 503, reason)


def is_idempotent(method: str) -> bool:
    """RFC 9110 idempotency of an (upper-case) HTTP method."""
    return method in IDEMPOTENT_METHODS


def deadline_for(timeouts: Timeouts | None, start: float) -> float | None:
    """When the whole request must be done: ``start + request``, or None without a bound.

    ``request`` unset (None) or ``0s`` (disabled, GEP-1742) both mean no deadline from the
    route; meshclient adds no default of its own, the adapter's transport timeouts apply.
    """
    if timeouts is None or not timeouts.request:
        return None
    return start + timeouts.request


def attempt_timeout(
    timeouts: Timeouts | None, deadline: float | None, now: float
) -> float | None:
    """The timeout of a try starting at ``now``: ``min(backendRequest, deadline - now)``.

    Returns:
        Seconds (never negative), or None when neither bound applies.
    """
    per = timeouts.backend_request if timeouts is not None else None
    if not per:  # unset or 0s (disabled)
        per = None
    if deadline is None:
        return per
    left = max(0.0, deadline - now)
    return left if per is None or left < per else per


def next_step(
    policy: RetryPolicy | None,
    outcome: Outcome,
    *,
    retries: int,
    method: str,
    now: float,
    deadline: float | None,
    rand: Callable[[], float],
    timeouts: Timeouts | None = None,
    budget: RetryBudget | None = None,
    idempotent: bool | None = None,
) -> Step:
    """Decide what follows an attempt.

    Args:
        policy: The rule's retry stanza, or None when it has none.
        outcome: How the attempt ended.
        retries: Retries already made for this request (0 after the first try).
        method: The request method, upper case.
        now: The caller's clock, when the attempt ended.
        deadline: ``deadline_for(timeouts, start)``, fixed when the request started.
        rand: Uniform floats in [0, 1) for the backoff jitter.
        timeouts: The rule's timeouts, for the next try's timeout.
        budget: The backend's retry budget; None means unlimited.
        idempotent: Overrides the method's RFC 9110 idempotency when the caller knows
            better (a gRPC method marked idempotent); None: go by ``method``.

    Returns:
        ``Step``: ``RETRY`` (and the budget has been charged), ``DONE`` or ``FAIL``.
    """
    status = outcome.status
    if status is not None and (policy is None or status not in policy.codes):
        return _final(status)
    if policy is None:
        return _give_up(outcome, "the rule has no retry policy")
    if outcome.failure not in NOT_SENT:
        safe = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        if not safe:
            return _give_up(outcome, f"{method} is not idempotent and the request may have "
                                     "reached the server")
    if retries >= policy.attempts:
        return _give_up(outcome, f"all {policy.attempts} retries used")
    delay = backoff_delay(policy.backoff, retries, rand)
    if deadline is not None:
        if now >= deadline:
            return Step.fail(504, "the request timeout has expired")
        # GEP-1731: every try and backoff must fit in the request timeout.
        if now + delay >= deadline:
            return Step.fail(504, "the request timeout leaves no room for another attempt")
    if budget is not None and not budget.try_retry(now):
        # GEP-3388: an exhausted budget MUST answer 503, whatever the upstream said.
        return Step.fail(503, "the backend's retry budget is exhausted")
    what = f"status {status}" if status is not None else f"{outcome.failure} failure"
    return Step.again(
        delay, attempt_timeout(timeouts, deadline, now + delay),
        f"retry {retries + 1} of {policy.attempts} after {what}",
    )
