"""The resilience layer seen from httpx: exceptions to ``Outcome``s, steps to what the caller gets.

Whether to try again is ``meshclient.resilience.next_step``'s call; this module only feeds it
(the outcome, the backend's budget, the retry count) and translates its answer:

* ``RETRY`` → back off and send another try;
* ``DONE``  → the last upstream response goes to the caller;
* ``FAIL``  → answer the status here when the route caused it (its timeout: 504; its
  budget: 503), or raise the transport error when the backend could not be reached at all.
  An httpx caller handles ``ConnectError`` and ``ReadTimeout`` already; turning them into a
  synthetic 503 would hide which one it was. The error's text says how many attempts failed.

Bodies: a try that may have reached the server is repeated only when its body can be sent
again (ECOSYSTEM.md §1.3); a body that cannot is retried only after failures that never sent
it (connect, refused stream), which ``next_step`` already allows for any method.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, cast

import httpx

from meshclient.model import RetryConstraint
from meshclient.resilience import (
    NOT_SENT,
    Failure,
    Outcome,
    RetryBudget,
    RetryBudgets,
    StepKind,
    attempt_timeout,
    deadline_for,
    next_step,
)
from meshclient.routing import Backend, Decision

__all__ = ["Attempts", "Next", "Retries", "failure_of"]


class Next(enum.Enum):
    RETRY = "retry"
    RETURN = "return"
    """Return the upstream response in hand."""
    ANSWER = "answer"
    """Answer ``status`` here (route timeout, budget, or a give-up with a response in hand)."""
    RAISE = "raise"
    """Raise the attempt's transport error."""


def failure_of(error: Exception, deadline_hit: bool) -> Failure | None:
    """The resilience ``Failure`` an httpx transport error stands for; None: not a failure.

    None means a local mistake (an invalid header, an unsupported URL) that no retry fixes.
    """
    if deadline_hit:
        return Failure.TIMEOUT
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure.CONNECT  # nothing was written to the endpoint
    if isinstance(error, httpx.TimeoutException):
        return Failure.TIMEOUT
    if isinstance(error, httpx.RemoteProtocolError | httpx.NetworkError):
        return Failure.RESET
    return None


class _SpyBudget:
    """Passes ``try_retry`` through and remembers a refusal (so 503 can be told apart)."""

    __slots__ = ("budget", "denied")

    def __init__(self, budget: RetryBudget) -> None:
        self.budget = budget
        self.denied = False

    def try_retry(self, now: float) -> bool:
        ok = self.budget.try_retry(now)
        self.denied = not ok
        return ok


class Attempts:
    """One request's retry state: how many retries so far, its deadline, its bodies."""

    __slots__ = ("_owner", "deadline", "decision", "replayable", "retries")

    def __init__(self, owner: Retries, decision: Decision, start: float,
                 replayable: bool) -> None:
        self._owner = owner
        self.decision = decision
        self.replayable = replayable
        self.retries = 0
        self.deadline = deadline_for(decision.timeouts, start)

    def timeout(self, now: float) -> float | None:
        """This try's time limit in seconds from ``now`` (per-try and overall bounds)."""
        return attempt_timeout(self.decision.timeouts, self.deadline, now)

    def first(self, backend: Backend, now: float) -> None:
        """Count the first try towards the backend's retry budget (GEP-3388 ratio)."""
        if self.decision.retry is not None:
            self._owner.budget(backend).record_request(now)

    def next(self, outcome: Outcome, backend: Backend, *, now: float, deadline_hit: bool,
             ) -> tuple[Next, float, int | None, str]:
        """What follows the attempt that ended with ``outcome``: (what, delay, status, why)."""
        d = self.decision
        policy = d.retry
        if not self.replayable and outcome.failure not in NOT_SENT:
            policy = None  # the body is gone: only a try that never sent it may repeat
        spy = _SpyBudget(self._owner.budget(backend)) if policy is not None else None
        step = next_step(policy, outcome, retries=self.retries, method=d.request.method,
                         now=now, deadline=self.deadline, rand=self._owner.rand,
                         timeouts=d.timeouts, budget=cast(Any, spy))
        kind = step.kind
        if kind is StepKind.RETRY:
            self.retries += 1
            return Next.RETRY, step.delay, None, step.reason
        if kind is StepKind.DONE:
            return Next.RETURN, 0.0, step.status, step.reason
        if spy is not None and spy.denied:
            return Next.ANSWER, 0.0, step.status, step.reason
        if outcome.failure is not None and not (
            step.status == 504 and (deadline_hit or self.deadline is not None)
        ):
            return Next.RAISE, 0.0, None, step.reason
        return Next.ANSWER, 0.0, step.status, step.reason


class Retries:
    """Retry budgets per backend Service, shared by every request of one transport."""

    def __init__(self, rand: Callable[[], float]) -> None:
        self.rand = rand
        self.budgets = RetryBudgets()

    def begin(self, decision: Decision, start: float, *, replayable: bool) -> Attempts:
        return Attempts(self, decision, start, replayable)

    def budget(self, backend: Backend) -> RetryBudget:
        constraint: RetryConstraint | None = backend.retry_constraint
        return self.budgets.get(backend.namespace, backend.name, constraint)

    @staticmethod
    def status(code: int) -> Outcome:
        return Outcome.response(code)

    @staticmethod
    def failure(kind: Failure) -> Outcome:
        return Outcome.failed(kind)

