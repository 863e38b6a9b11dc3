"""Passive outlier detection: one small state machine per endpoint.

Invariants:

* Every change of ``OutlierTracker.state`` happens in a handler of ``_TRANSITIONS``; a
  (state, signal) pair without an entry is a bug and raises, naming both.
* An endpoint is ejected only when its set allows one more ejection (``may_eject``): the set
  enforces the maximum ejection percentage, the tracker only counts.
* Ejection time grows with repeated ejections (base × count, capped) and the count decays
  while the endpoint behaves, as Envoy's does.
* Nothing here reads a clock: ``now`` comes in with every signal.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, Protocol

import attrs

__all__ = [
    "DEFAULT_OUTLIER",
    "FAILURE_KINDS",
    "TRANSITIONS",
    "OutcomeLike",
    "OutlierConfig",
    "OutlierState",
    "OutlierStatistics",
    "OutlierTracker",
    "Signal",
    "classify",
]

FAILURE_KINDS: Final = frozenset({"connect", "refused_stream", "reset", "timeout"})
"""``OutcomeLike.failure`` values, shared by contract with ``meshclient.resilience.Failure``.

The two layers are peers and may not import each other; a test holds them equal.
"""


class OutcomeLike(Protocol):
    """How one attempt ended: a response status, or a failure before any response.

    ``meshclient.resilience.Outcome`` satisfies it, so adapters build one value and report it
    to both layers.
    """

    @property
    def status(self) -> int | None: ...

    @property
    def failure(self) -> str | None: ...


class OutlierState(enum.Enum):
    HEALTHY = "healthy"
    EJECTED = "ejected"


class Signal(enum.Enum):
    """What the tracker is told."""

    SUCCESS = "success"
    """Any response below 500."""
    ERROR = "error"
    """A 5xx response other than 502/503/504."""
    GATEWAY_ERROR = "gateway_error"
    """502, 503, 504, a per-try timeout, or a reset after the request was sent."""
    CONNECT_FAILURE = "connect_failure"
    """No connection, or the stream refused before any processing."""
    EXPIRE = "expire"
    """The ejection time is over (sent by the set when its expiry heap says so)."""


def classify(outcome: OutcomeLike) -> Signal:
    """Map an attempt's outcome to the signal outlier detection counts.

    Raises:
        ValueError: The outcome has neither status nor a known failure kind.
    """
    failure = outcome.failure
    if failure is not None:
        if failure in ("connect", "refused_stream"):
            return Signal.CONNECT_FAILURE
        if failure in ("timeout", "reset"):
            return Signal.GATEWAY_ERROR
        raise ValueError(f"outcome.failure: {failure!r} is not one of {sorted(FAILURE_KINDS)}")
    status = outcome.status
    if status is None:
        raise ValueError("outcome has neither a status nor a failure")
    if status < 500:
        return Signal.SUCCESS
    if status in (502, 503, 504):
        return Signal.GATEWAY_ERROR
    return Signal.ERROR


@attrs.frozen(kw_only=True)
class OutlierConfig:
    """When to eject an endpoint and for how long; a threshold of ``None`` disables it.

    Defaults: Envoy's 5 consecutive 5xx, base 30 s, cap 300 s and 10 % (at least one
    endpoint may always be ejected, so three endpoints can lose their bad one). Gateway
    errors and connect failures eject after 3, because they say more about the endpoint than
    an application's 500 does.
    """

    consecutive_5xx: int | None = 5
    """Any 5xx, gateway error or connect failure in a row."""
    consecutive_gateway_errors: int | None = 3
    """502/503/504, timeouts, resets and connect failures in a row."""
    consecutive_connect_failures: int | None = 3
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: int = attrs.field(
        default=10, validator=[attrs.validators.ge(0), attrs.validators.le(100)]
    )
    """Most endpoints of a set ejected at once, in percent of it, but never fewer than one
    (Envoy's rule, so small sets can lose their bad endpoint); 0 turns ejection off."""
    decay_interval: float = 10.0
    """Each full interval spent back in service forgives one past ejection."""

    @classmethod
    def disabled(cls) -> OutlierConfig:
        """A config that never ejects."""
        return cls(
            consecutive_5xx=None, consecutive_gateway_errors=None,
            consecutive_connect_failures=None,
        )


DEFAULT_OUTLIER: Final = OutlierConfig()


@attrs.frozen(kw_only=True)
class OutlierStatistics:
    state: OutlierState
    consecutive_5xx: int
    consecutive_gateway_errors: int
    consecutive_connect_failures: int
    ejections: int
    """Ejections so far, all time."""
    multiplier: int
    """Current ejection count after decay: the next ejection lasts base × (multiplier + 1)."""
    ejected_until: float | None


def _over(count: int, threshold: int | None) -> bool:
    return threshold is not None and count >= threshold


@attrs.define(eq=False)
class OutlierTracker:
    """Consecutive-failure counters and ejection state of one endpoint."""

    config: OutlierConfig = DEFAULT_OUTLIER
    state: OutlierState = OutlierState.HEALTHY
    errors: int = 0
    gateway_errors: int = 0
    connect_failures: int = 0
    multiplier: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    returned_at: float = -math.inf
    clean: bool = True
    """Healthy with no failure counted, so a success would change nothing; kept by ``feed``
    for the report path, which then skips the table."""


    def feed(self, signal: Signal, now: float, *, may_eject: bool = True) -> OutlierState:
        """Apply one signal and return the new state.

        Raises:
            RuntimeError: The transition table has no entry for (state, signal), e.g.
                ``EXPIRE`` while healthy; the tracker is left unchanged.
        """
        entry = _TRANSITIONS.get((self.state, signal))
        if entry is None:
            raise RuntimeError(
                f"outlier tracker in state {self.state.name} has no transition for signal "
                f"{signal.name}"
            )
        handler, allowed = entry
        new = handler(self, now, may_eject)
        if new not in allowed:  # the table's promise; breaking it is a bug in a handler
            raise RuntimeError(f"outlier handler moved {self.state.name} to {new.name} on "
                               f"{signal.name}, which the transition table does not allow")
        self.state = new
        # Every failure signal raises ``errors``, so errors == 0 means all counters are 0.
        self.clean = new is OutlierState.HEALTHY and self.errors == 0
        return new

    def statistics(self) -> OutlierStatistics:
        return OutlierStatistics(
            state=self.state,
            consecutive_5xx=self.errors,
            consecutive_gateway_errors=self.gateway_errors,
            consecutive_connect_failures=self.connect_failures,
            ejections=self.ejections,
            multiplier=self.multiplier,
            ejected_until=self.ejected_until if self.state is OutlierState.EJECTED else None,
        )

    def _eject_if_due(self, now: float, may_eject: bool) -> OutlierState:
        c = self.config
        due = (
            _over(self.errors, c.consecutive_5xx)
            or _over(self.gateway_errors, c.consecutive_gateway_errors)
            or _over(self.connect_failures, c.consecutive_connect_failures)
        )
        if not due or not may_eject:
            # Counters stay high, so the next failure asks again once the set has room.
            return OutlierState.HEALTHY
        forgiven = 0
        if math.isfinite(self.returned_at) and c.decay_interval > 0:
            forgiven = int((now - self.returned_at) // c.decay_interval)
        self.multiplier = max(0, self.multiplier - forgiven) + 1
        self.ejections += 1
        duration = min(c.base_ejection_time * self.multiplier,
                       max(c.base_ejection_time, c.max_ejection_time))
        self.ejected_until = now + duration
        self.errors = self.gateway_errors = self.connect_failures = 0
        return OutlierState.EJECTED


def _on_success(t: OutlierTracker, now: float, may_eject: bool) -> OutlierState:
    t.errors = t.gateway_errors = t.connect_failures = 0
    return OutlierState.HEALTHY


def _on_error(t: OutlierTracker, now: float, may_eject: bool) -> OutlierState:
    # Envoy: a non-gateway 5xx breaks the gateway-failure streak but extends the 5xx one.
    t.errors += 1
    t.gateway_errors = t.connect_failures = 0
    return t._eject_if_due(now, may_eject)


def _on_gateway_error(t: OutlierTracker, now: float, may_eject: bool) -> OutlierState:
    t.errors += 1
    t.gateway_errors += 1
    t.connect_failures = 0  # a response (or a sent request) means the connection worked
    return t._eject_if_due(now, may_eject)


def _on_connect_failure(t: OutlierTracker, now: float, may_eject: bool) -> OutlierState:
    t.errors += 1
    t.gateway_errors += 1
    t.connect_failures += 1
    return t._eject_if_due(now, may_eject)


def _stay_ejected(t: OutlierTracker, now: float, may_eject: bool) -> OutlierState:
    # Late reports of requests sent before the ejection (or in panic) change nothing: the
    # ejection is time-based, and counting them would eject again on return.
    return OutlierState.EJECTED


def _on_expire(t: OutlierTracker, now: float, may_eject: bool) -> OutlierState:
    t.errors = t.gateway_errors = t.connect_failures = 0
    t.returned_at = now
    return OutlierState.HEALTHY


_Handler = Callable[[OutlierTracker, float, bool], OutlierState]
_H, _E = OutlierState.HEALTHY, OutlierState.EJECTED
_BOTH: Final = frozenset({_H, _E})

_Table = Mapping[tuple[OutlierState, Signal], tuple[_Handler, frozenset[OutlierState]]]
_TRANSITIONS: Final[_Table] = MappingProxyType({
    (_H, Signal.SUCCESS): (_on_success, frozenset({_H})),
    (_H, Signal.ERROR): (_on_error, _BOTH),
    (_H, Signal.GATEWAY_ERROR): (_on_gateway_error, _BOTH),
    (_H, Signal.CONNECT_FAILURE): (_on_connect_failure, _BOTH),
    (_E, Signal.SUCCESS): (_stay_ejected, frozenset({_E})),
    (_E, Signal.ERROR): (_stay_ejected, frozenset({_E})),
    (_E, Signal.GATEWAY_ERROR): (_stay_ejected, frozenset({_E})),
    (_E, Signal.CONNECT_FAILURE): (_stay_ejected, frozenset({_E})),
    (_E, Signal.EXPIRE): (_on_expire, frozenset({_H})),
    # (HEALTHY, EXPIRE) is deliberately absent: only an ejected endpoint can expire.
})

TRANSITIONS: Final = MappingProxyType({k: v[1] for k, v in _TRANSITIONS.items()})
"""(state, signal) → the states the handler may move to; the docs and tests read this."""
