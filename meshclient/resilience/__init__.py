"""Retries (GEP-1731), retry budgets (GEP-3388), backoff and per-try timeouts.

Sans-I/O: nothing here sleeps, reads a clock or draws random numbers of its own; the adapter
passes ``now`` and ``rand`` and does the waiting. The loop an adapter runs per request::

    budgets = RetryBudgets()                                   # one per process
    start = clock()
    deadline = deadline_for(decision.timeouts, start)
    timeout = attempt_timeout(decision.timeouts, deadline, start)
    tried: set[str] = set()
    for retries in itertools.count():
        pick = balancer.pick(decision.backends, now=clock(), exclude=tried)    # balancing
        if not isinstance(pick, Pick):
            break                     # Overflow / NoEndpoints: answer pick.status
        budget = budgets.get(pick.backend.namespace, pick.backend.name, constraint)
        if retries == 0:
            budget.record_request(clock())
        outcome = await send(pick, timeout)          # Outcome.response(503), Outcome.failed(...)
        balancer.report(pick, outcome, latency, now=clock())                  # balancing
        step = next_step(decision.retry, outcome, retries=retries, method=method,
                         now=clock(), deadline=deadline, timeouts=decision.timeouts,
                         budget=budget, rand=rng.random)
        if not step.retry:
            break                     # DONE: return the response; FAIL: answer step.status
        tried.add(pick.address)      # the retry prefers another endpoint
        await asyncio.sleep(step.delay)
        timeout = step.timeout

This package and ``meshclient.balancing`` are peer layers that never import each other: the
adapter calls both. ``Outcome`` satisfies ``balancing.OutcomeLike``, so one value serves both
``report`` and ``next_step``.

Defaults and choices:

* Backoff: ``base × 2ⁿ`` plus up to 100 % jitter, upwards only, within ``[base, 10 × base)``
  (GEP-1731 makes ``backoff`` a minimum; Envoy caps at 10×). Unset backoff is 25 ms and
  unset attempts 1 (the model's defaults).
* Retryable: statuses in ``codes``; per-try timeouts and connection errors even with empty
  codes; for non-idempotent methods only connect failures and refused streams.
* Exhausted: the last upstream response (``DONE``), or 504 after a timeout and 503 after a
  connection error (``FAIL``). The request timeout passing, or the next backoff reaching
  it: 504. Budget exhausted: 503.
* Budget: GEP-3388 defaults (20 % over 10 s, floor of 10 retries per 1 s) apply to every
  backend without an XBackendTrafficPolicy, as Linkerd applies its own by default.
"""

from meshclient.resilience._backoff import DEFAULT_CAP_FACTOR as DEFAULT_CAP_FACTOR
from meshclient.resilience._backoff import backoff_delay as backoff_delay
from meshclient.resilience._budget import BUCKETS as BUCKETS
from meshclient.resilience._budget import DEFAULT_CONSTRAINT as DEFAULT_CONSTRAINT
from meshclient.resilience._budget import BudgetStatistics as BudgetStatistics
from meshclient.resilience._budget import RetryBudget as RetryBudget
from meshclient.resilience._budget import RetryBudgets as RetryBudgets
from meshclient.resilience._outcome import NOT_SENT as NOT_SENT
from meshclient.resilience._outcome import Failure as Failure
from meshclient.resilience._outcome import Outcome as Outcome
from meshclient.resilience._retry import IDEMPOTENT_METHODS as IDEMPOTENT_METHODS
from meshclient.resilience._retry import Step as Step
from meshclient.resilience._retry import StepKind as StepKind
from meshclient.resilience._retry import attempt_timeout as attempt_timeout
from meshclient.resilience._retry import deadline_for as deadline_for
from meshclient.resilience._retry import is_idempotent as is_idempotent
from meshclient.resilience._retry import next_step as next_step

__all__ = [
    "BUCKETS",
    "DEFAULT_CAP_FACTOR",
    "DEFAULT_CONSTRAINT",
    "IDEMPOTENT_METHODS",
    "NOT_SENT",
    "BudgetStatistics",
    "Failure",
    "Outcome",
    "RetryBudget",
    "RetryBudgets",
    "Step",
    "StepKind",
    "attempt_timeout",
    "backoff_delay",
    "deadline_for",
    "is_idempotent",
    "next_step",
]
