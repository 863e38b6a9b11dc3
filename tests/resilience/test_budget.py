"""Retry budgets (GEP-3388): percent of requests, minimum rate, sliding windows, 503s."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.model import RetryConstraint, RetryPolicy
from meshclient.resilience import (
    Failure,
    Outcome,
    RetryBudget,
    RetryBudgets,
    StepKind,
    next_step,
)

NO_FLOOR = RetryConstraint(percent=20, interval=10.0, min_retry_count=1, min_retry_interval=1.0)


def test_budget_percent_of_requests_counting_retries() -> None:
    """100 requests allow 25 retries: 25 < 20 % of 125 fails, retries count as requests."""
    budget = RetryBudget(NO_FLOOR)
    for _ in range(100):
        budget.record_request(0.0)
    allowed = sum(budget.try_retry(0.0) for _ in range(40))
    assert allowed == 25
    stats = budget.statistics(0.0)
    assert (stats.retries, stats.denied, stats.window_requests) == (25, 15, 125)


def test_budget_minimum_rate_without_traffic() -> None:
    """With no traffic at all, 10 retries per second are still allowed (the floor)."""
    budget = RetryBudget()
    assert sum(budget.try_retry(0.0) for _ in range(15)) == 10
    assert not budget.allows(0.9)
    assert sum(budget.try_retry(1.0) for _ in range(15)) == 10


def test_budget_window_slides_old_requests_expire() -> None:
    """Requests older than the interval stop funding retries; only the floor is left."""
    budget = RetryBudget(NO_FLOOR)
    for _ in range(100):
        budget.record_request(0.0)
    assert sum(budget.try_retry(9.5) for _ in range(40)) == 25
    assert sum(budget.try_retry(10.6) for _ in range(40)) == 1
    assert budget.statistics(10.6).window_requests == 26  # the retries themselves


def test_budget_long_gap_resets_in_constant_time() -> None:
    """A gap longer than the window clears it without walking every missed bucket."""
    budget = RetryBudget(NO_FLOOR)
    budget.record_request(0.0)
    assert budget.statistics(1e9).window_requests == 0


def test_budget_clock_stepping_back_counts_in_current_bucket() -> None:
    """A clock that steps back does not crash or lose counts."""
    budget = RetryBudget(NO_FLOOR)
    budget.record_request(5.0)
    budget.record_request(4.0)
    assert budget.statistics(5.0).window_requests == 2


def test_budgets_one_per_service_fresh_on_new_constraint() -> None:
    """Budgets are per backend Service; a changed constraint starts a new budget."""
    budgets = RetryBudgets()
    a = budgets.get("default", "a")
    assert budgets.get("default", "a") is a
    assert budgets.get("default", "b") is not a
    tighter = budgets.get("default", "a", RetryConstraint(percent=5))
    assert tighter is not a and tighter.constraint.percent == 5
    budgets.forget({("default", "b")})
    assert set(budgets.statistics(0.0)) == {("default", "b")}


def _storm(rate: float, seconds: float, attempts: int, seed: int) -> tuple[int, int, int]:
    """Every try fails; returns (first tries, retries sent, 503s from the budget)."""
    rng = random.Random(seed)
    budget = RetryBudget()
    policy = RetryPolicy(attempts=attempts, codes=frozenset({503}), backoff=0.0)
    first = retried = refused = 0
    for i in itertools.count():
        now = i / rate
        if now >= seconds:
            break
        budget.record_request(now)
        first += 1
        for retries in range(attempts + 1):
            step = next_step(policy, Outcome.response(503), retries=retries, method="GET",
                             now=now, deadline=None, budget=budget, rand=rng.random)
            if not step.retry:
                refused += step.kind is StepKind.FAIL
                break
            retried += 1
    return first, retried, refused


def test_budget_failure_storm_stays_within_budget() -> None:
    """At 200 rps with everything failing, retries stay ≤ 20 % of requests plus the floor."""
    first, retried, refused = _storm(rate=200.0, seconds=60.0, attempts=3, seed=1)
    requests = first + retried
    assert retried <= 0.2 * requests + 10 * 61
    assert retried >= 0.15 * requests  # the budget is used, not simply refused
    assert retried < first  # 3 attempts each would have tripled the load
    assert refused > 0


def test_budget_failure_storm_low_traffic_capped_by_floor() -> None:
    """At 5 rps the floor dominates: about 10 retries a second, never 3 per request."""
    first, retried, _ = _storm(rate=5.0, seconds=60.0, attempts=3, seed=2)
    assert retried <= 10 * 61
    assert retried > 0.8 * 10 * 60
    assert retried < 3 * first


@settings(max_examples=40, deadline=None)
@given(events=st.lists(st.tuples(st.floats(0.0, 0.5), st.booleans()), min_size=1,
                       max_size=300),
       percent=st.integers(0, 100))
def test_budget_never_exceeds_percent_or_floor_in_window(
    events: list[tuple[float, bool]], percent: int
) -> None:
    """At every allowed retry, the window holds < percent of requests or < floor retries."""
    c = RetryConstraint(percent=percent, interval=10.0, min_retry_count=3,
                        min_retry_interval=1.0)
    budget = RetryBudget(c)
    now = 0.0
    for advance, is_retry in events:
        now += advance
        if not is_retry:
            budget.record_request(now)
            continue
        before = budget.statistics(now)
        if budget.try_retry(now):
            assert (before.window_retries * 100 < percent * before.window_requests
                    or before.recent_retries < 3)
        else:
            assert before.window_retries * 100 >= percent * before.window_requests
            assert before.recent_retries >= 3


def test_budget_connect_failure_storm_also_bounded() -> None:
    """Connect failures (retryable for any method) are held by the same budget."""
    budget = RetryBudget()
    policy = RetryPolicy(attempts=5)
    retried = 0
    for i in range(2000):
        now = i / 100
        budget.record_request(now)
        for retries in range(6):
            step = next_step(policy, Outcome.failed(Failure.CONNECT), retries=retries,
                             method="POST", now=now, deadline=None, budget=budget,
                             rand=random.Random(i).random)
            if not step.retry:
                break
            retried += 1
    assert retried <= 0.2 * (2000 + retried) + 10 * 21
