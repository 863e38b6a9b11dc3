"""next_step: GEP-1731 retries, idempotency, deadlines and per-try timeouts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.model import RetryConstraint, RetryPolicy, Timeouts
from meshclient.resilience import (
    Failure,
    Outcome,
    RetryBudget,
    Step,
    StepKind,
    attempt_timeout,
    deadline_for,
    next_step,
)

POLICY = RetryPolicy(attempts=2, codes=frozenset({500, 503}), backoff=0.1)


def no_jitter() -> float:
    return 0.0


def step(outcome: Outcome, *, policy: RetryPolicy | None = POLICY, method: str = "GET",
         retries: int = 0, now: float = 0.0, deadline: float | None = None,
         **kw: object) -> Step:
    return next_step(policy, outcome, retries=retries, method=method, now=now,
                     deadline=deadline, rand=no_jitter, **kw)  # type: ignore[arg-type]


# -- what is retryable -------------------------------------------------------------------------


def test_next_step_success_done_with_shared_step() -> None:
    """A 200 is final, and the Step is shared rather than built per request."""
    first = step(Outcome.response(200))
    assert (first.kind, first.status) == (StepKind.DONE, 200)
    assert step(Outcome.response(200)) is first


def test_next_step_status_outside_codes_done() -> None:
    """A 502 not listed in codes is returned as it is."""
    got = step(Outcome.response(502))
    assert (got.kind, got.status) == (StepKind.DONE, 502)


def test_next_step_status_in_codes_retries_after_backoff() -> None:
    """A listed status retries after at least the rule's backoff."""
    got = step(Outcome.response(503))
    assert got.retry and got.delay == pytest.approx(0.1) and got.timeout is None


def test_next_step_timeout_retried_with_empty_codes() -> None:
    """Attempts that hit backendRequest retry even when codes is empty (SPEC-NOTES §5.3)."""
    policy = RetryPolicy(attempts=1, codes=frozenset())
    assert step(Outcome.failed(Failure.TIMEOUT), policy=policy).retry
    assert step(Outcome.failed(Failure.RESET), policy=policy).retry
    assert not step(Outcome.response(503), policy=policy).retry


@pytest.mark.parametrize("failure", [Failure.CONNECT, Failure.REFUSED_STREAM])
@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT"])
def test_next_step_not_sent_failures_retry_any_method(failure: Failure, method: str) -> None:
    """A request that never reached the server retries whatever its method."""
    assert step(Outcome.failed(failure), method=method).retry


@pytest.mark.parametrize("outcome", [Outcome.response(503), Outcome.failed(Failure.RESET),
                                     Outcome.failed(Failure.TIMEOUT)])
def test_next_step_post_that_may_have_arrived_not_retried(outcome: Outcome) -> None:
    """POST is not repeated once the server may have seen it."""
    got = step(outcome, method="POST")
    assert not got.retry and "not idempotent" in got.reason
    assert got.status == (503 if outcome.failure is not Failure.TIMEOUT else 504)


def test_next_step_idempotent_override_allows_post() -> None:
    """A caller that knows the call is idempotent (a gRPC method option) may retry it."""
    assert step(Outcome.response(503), method="POST", idempotent=True).retry
    assert not step(Outcome.response(503), method="GET", idempotent=False).retry


def test_next_step_without_policy_never_retries() -> None:
    """No retry stanza, no retries (GEP-1731): failures become 503/504 answers."""
    assert step(Outcome.response(503), policy=None).kind is StepKind.DONE
    connect = step(Outcome.failed(Failure.CONNECT), policy=None)
    assert (connect.kind, connect.status) == (StepKind.FAIL, 503)
    timeout = step(Outcome.failed(Failure.TIMEOUT), policy=None)
    assert (timeout.kind, timeout.status) == (StepKind.FAIL, 504)


# -- exhaustion ---------------------------------------------------------------------------------


def test_next_step_attempts_used_returns_last_upstream_status() -> None:
    """After ``attempts`` retries the last upstream response goes back as it is."""
    got = step(Outcome.response(500), retries=2)
    assert (got.kind, got.status) == (StepKind.DONE, 500) and "2 retries" in got.reason


@pytest.mark.parametrize(("failure", "status"), [(Failure.TIMEOUT, 504), (Failure.CONNECT, 503),
                                                 (Failure.RESET, 503)])
def test_next_step_attempts_used_after_failure_answers(failure: Failure, status: int) -> None:
    """Exhausted after a failure without response: 504 for timeouts, 503 otherwise."""
    got = step(Outcome.failed(failure), retries=2)
    assert (got.kind, got.status) == (StepKind.FAIL, status)


def test_next_step_conformance_two_timeouts_then_success() -> None:
    """attempts: 2 with two timed-out tries lets the third try through (CT:httproute-retry)."""
    policy = RetryPolicy(attempts=2, codes=frozenset(), backoff=0.0)
    outcomes = [Outcome.failed(Failure.TIMEOUT)] * 2 + [Outcome.response(200)]
    kinds = [step(o, policy=policy, retries=i).kind for i, o in enumerate(outcomes)]
    assert kinds == [StepKind.RETRY, StepKind.RETRY, StepKind.DONE]


# -- time --------------------------------------------------------------------------------------


def test_next_step_delay_crossing_deadline_fails_504() -> None:
    """When the next backoff would reach the request deadline, answer 504 now."""
    got = step(Outcome.response(503), now=0.95, deadline=1.0)
    assert (got.kind, got.status) == (StepKind.FAIL, 504)
    assert "no room" in got.reason


def test_next_step_deadline_passed_fails_504() -> None:
    """After the deadline nothing more is tried."""
    got = step(Outcome.response(503), now=1.5, deadline=1.0)
    assert (got.kind, got.status) == (StepKind.FAIL, 504)


def test_next_step_per_try_timeout_bounded_by_time_left() -> None:
    """The next try gets min(backendRequest, time left after the backoff)."""
    timeouts = Timeouts(request=1.0, backend_request=0.3)
    early = step(Outcome.response(503), now=0.1, deadline=1.0, timeouts=timeouts)
    assert early.timeout == pytest.approx(0.3)
    late = step(Outcome.response(503), now=0.7, deadline=1.0, timeouts=timeouts)
    assert late.timeout == pytest.approx(0.2)


def test_attempt_timeout_unset_and_disabled_mean_unbounded() -> None:
    """None (unset) and 0s (disabled) backendRequest impose no per-try bound."""
    assert attempt_timeout(Timeouts(), None, 0.0) is None
    assert attempt_timeout(Timeouts(backend_request=0.0), None, 0.0) is None
    assert attempt_timeout(None, 5.0, 4.0) == pytest.approx(1.0)
    assert attempt_timeout(Timeouts(backend_request=2.0), 5.0, 6.0) == 0.0


def test_deadline_for_request_timeout() -> None:
    """The deadline is start + request; unset and 0s mean none."""
    assert deadline_for(Timeouts(request=2.0), 10.0) == 12.0
    assert deadline_for(Timeouts(request=0.0), 10.0) is None
    assert deadline_for(Timeouts(), 10.0) is None
    assert deadline_for(None, 10.0) is None


# -- budget ------------------------------------------------------------------------------------


def test_next_step_budget_exhausted_fails_503_despite_upstream_status() -> None:
    """An exhausted budget answers 503 even after an upstream 500 (GEP-3388 MUST)."""
    budget = RetryBudget(RetryConstraint(percent=0, min_retry_count=1))
    assert step(Outcome.response(500), budget=budget).retry
    got = step(Outcome.response(500), budget=budget)
    assert (got.kind, got.status) == (StepKind.FAIL, 503) and "budget" in got.reason


def test_next_step_not_retrying_spends_no_budget() -> None:
    """Only an actual retry is charged to the budget."""
    budget = RetryBudget()
    step(Outcome.response(200), budget=budget)
    step(Outcome.response(500), budget=budget, retries=2)
    step(Outcome.response(503), budget=budget, method="POST")
    assert budget.statistics(0.0).retries == 0


# -- properties --------------------------------------------------------------------------------

outcomes = st.one_of(
    st.integers(200, 599).map(Outcome.response), st.sampled_from(list(Failure)).map(Outcome.failed)
)


@settings(max_examples=150, deadline=None)
@given(outcome=outcomes, method=st.sampled_from(["GET", "PUT", "POST", "PATCH", "DELETE"]),
       codes=st.frozensets(st.sampled_from([500, 502, 503, 504, 429])),
       attempts=st.integers(0, 3), retries=st.integers(0, 4), backoff=st.floats(0.0, 0.5),
       seed=st.integers(0, 2**16))
def test_next_step_retries_only_when_every_rule_allows(
    outcome: Outcome, method: str, codes: frozenset[int], attempts: int, retries: int,
    backoff: float, seed: int,
) -> None:
    """A RETRY needs a retryable outcome, a safe method, attempts left; its delay ≥ backoff."""
    policy = RetryPolicy(attempts=attempts, codes=codes, backoff=backoff)
    got = next_step(policy, outcome, retries=retries, method=method, now=0.0, deadline=None,
                    rand=random.Random(seed).random)
    retryable = outcome.failure is not None or outcome.status in codes
    safe = not outcome.reached_server or method in ("GET", "PUT", "DELETE")
    assert got.retry == (retryable and safe and retries < attempts)
    if got.retry:
        assert backoff <= got.delay < max(10 * backoff, 1e-12) or got.delay == backoff == 0.0
    elif outcome.status is not None:
        assert (got.kind, got.status) == (StepKind.DONE, outcome.status)
    else:
        assert got.kind is StepKind.FAIL and got.status in (503, 504)
