"""Passive outlier detection: the state machine, its table, and simulations through picks."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.balancing import (
    TRANSITIONS,
    BalancerConfig,
    OutlierConfig,
    OutlierState,
    OutlierTracker,
    Signal,
    classify,
)

from ._world import CONNECT, E500, E503, OK, SVC, Result, addresses, balancer, must_pick, send

FAILURES = (Signal.ERROR, Signal.GATEWAY_ERROR, Signal.CONNECT_FAILURE)


def _tracker_in(state: OutlierState, **fields: float) -> OutlierTracker:
    t = OutlierTracker(OutlierConfig())
    t.state = state
    if state is OutlierState.EJECTED:
        t.ejected_until = 30.0
        t.multiplier = 1
    for k, v in fields.items():
        setattr(t, k, v)
    return t


# -- the table -------------------------------------------------------------------------------


@given(state=st.sampled_from(list(OutlierState)), signal=st.sampled_from(list(Signal)),
       may_eject=st.booleans(), errors=st.integers(0, 6))
@settings(max_examples=60, deadline=None)
def test_outlier_every_pair_transitions_per_table_or_raises(
    state: OutlierState, signal: Signal, may_eject: bool, errors: int
) -> None:
    """Each (state, signal) either lands in a state its table entry allows or raises."""
    t = _tracker_in(state, errors=errors, gateway_errors=min(errors, 3))
    allowed = TRANSITIONS.get((state, signal))
    if allowed is None:
        with pytest.raises(RuntimeError, match=f"{state.name}.*{signal.name}"):
            t.feed(signal, 1.0, may_eject=may_eject)
        assert t.state is state
    else:
        assert t.feed(signal, 1.0, may_eject=may_eject) in allowed
        assert t.state in allowed


def test_outlier_table_covers_all_but_healthy_expire() -> None:
    """Only (HEALTHY, EXPIRE) is missing: a healthy endpoint has nothing to expire."""
    every = {(s, g) for s in OutlierState for g in Signal}
    assert every - set(TRANSITIONS) == {(OutlierState.HEALTHY, Signal.EXPIRE)}


@given(signals=st.lists(st.sampled_from([Signal.SUCCESS, *FAILURES]), max_size=40))
@settings(max_examples=50, deadline=None)
def test_outlier_any_signal_sequence_keeps_counters_consistent(signals: list[Signal]) -> None:
    """Whatever the sequence, ``errors`` bounds the other counters and ejection resets them."""
    t = OutlierTracker(OutlierConfig())
    now = 0.0
    for s in signals:
        if t.state is OutlierState.EJECTED and now >= t.ejected_until:
            t.feed(Signal.EXPIRE, now)
        t.feed(s, now)
        assert t.errors >= t.gateway_errors >= t.connect_failures
        if t.state is OutlierState.EJECTED:
            assert t.errors == 0 and t.ejected_until > now
        now += 7.0


# -- counting --------------------------------------------------------------------------------


@pytest.mark.parametrize(("signal", "needed"), [
    (Signal.ERROR, 5), (Signal.GATEWAY_ERROR, 3), (Signal.CONNECT_FAILURE, 3),
])
def test_outlier_consecutive_failures_eject_at_threshold(signal: Signal, needed: int) -> None:
    """5 plain 5xx, 3 gateway errors or 3 connect failures in a row eject (defaults)."""
    t = OutlierTracker(OutlierConfig())
    for _ in range(needed - 1):
        assert t.feed(signal, 0.0) is OutlierState.HEALTHY
    assert t.feed(signal, 0.0) is OutlierState.EJECTED
    assert t.ejected_until == 30.0


def test_outlier_success_resets_streak() -> None:
    """A success between failures restarts the count."""
    t = OutlierTracker(OutlierConfig())
    for _ in range(4):
        t.feed(Signal.ERROR, 0.0)
    t.feed(Signal.SUCCESS, 0.0)
    for _ in range(4):
        assert t.feed(Signal.ERROR, 0.0) is OutlierState.HEALTHY


def test_outlier_plain_5xx_breaks_gateway_streak() -> None:
    """A 500 between 503s resets the gateway-error count (Envoy) but extends the 5xx one."""
    t = OutlierTracker(OutlierConfig())
    for s in (Signal.GATEWAY_ERROR, Signal.GATEWAY_ERROR, Signal.ERROR, Signal.GATEWAY_ERROR):
        assert t.feed(s, 0.0) is OutlierState.HEALTHY
    assert (t.errors, t.gateway_errors) == (4, 1)


def test_outlier_no_room_stays_healthy_then_ejects_when_allowed() -> None:
    """Past the threshold without room to eject, the next failure with room ejects."""
    t = OutlierTracker(OutlierConfig())
    for _ in range(4):
        assert t.feed(Signal.GATEWAY_ERROR, 0.0, may_eject=False) is OutlierState.HEALTHY
    assert t.feed(Signal.GATEWAY_ERROR, 0.0, may_eject=True) is OutlierState.EJECTED


def test_outlier_repeat_ejection_grows_then_caps() -> None:
    """Each ejection lasts base × count, up to max_ejection_time."""
    cfg = OutlierConfig(base_ejection_time=10.0, max_ejection_time=25.0, decay_interval=1e9)
    t = OutlierTracker(cfg)
    now = 0.0
    lengths = []
    for _ in range(4):
        for _ in range(3):
            t.feed(Signal.CONNECT_FAILURE, now)
        lengths.append(t.ejected_until - now)
        now = t.ejected_until
        t.feed(Signal.EXPIRE, now)
    assert lengths == [10.0, 20.0, 25.0, 25.0]


def test_outlier_good_behaviour_forgives_past_ejections() -> None:
    """Each decay interval spent back in service takes one off the ejection count."""
    cfg = OutlierConfig(base_ejection_time=10.0, decay_interval=10.0)
    t = OutlierTracker(cfg)
    for _ in range(2):
        for _ in range(3):
            t.feed(Signal.CONNECT_FAILURE, t.ejected_until)
        t.feed(Signal.EXPIRE, t.ejected_until)
    assert t.multiplier == 2
    back = t.returned_at
    for _ in range(3):
        t.feed(Signal.CONNECT_FAILURE, back + 15.0)  # one interval forgiven
    assert t.multiplier == 2 and t.ejected_until == back + 15.0 + 20.0


def test_outlier_disabled_never_ejects() -> None:
    """OutlierConfig.disabled() counts but never ejects."""
    t = OutlierTracker(OutlierConfig.disabled())
    for _ in range(50):
        assert t.feed(Signal.CONNECT_FAILURE, 0.0) is OutlierState.HEALTHY


@pytest.mark.parametrize(("outcome", "signal"), [
    (Result(status=200), Signal.SUCCESS), (Result(status=404), Signal.SUCCESS),
    (Result(status=500), Signal.ERROR), (Result(status=501), Signal.ERROR),
    (Result(status=502), Signal.GATEWAY_ERROR), (Result(status=503), Signal.GATEWAY_ERROR),
    (Result(status=504), Signal.GATEWAY_ERROR), (Result(failure="timeout"), Signal.GATEWAY_ERROR),
    (Result(failure="reset"), Signal.GATEWAY_ERROR),
    (Result(failure="connect"), Signal.CONNECT_FAILURE),
    (Result(failure="refused_stream"), Signal.CONNECT_FAILURE),
])
def test_classify_outcome_signal(outcome: Result, signal: Signal) -> None:
    """Statuses and failure kinds map to the signals outlier detection counts."""
    assert classify(outcome) is signal


def test_classify_unknown_failure_raises_naming_value() -> None:
    """An unknown failure kind is an adapter bug and raises, naming the value."""
    with pytest.raises(ValueError, match="'eof'"):
        classify(Result(failure="eof"))
    with pytest.raises(ValueError, match="neither"):
        classify(Result())


# -- simulations -----------------------------------------------------------------------------


def test_outlier_one_of_three_failing_ejected_quickly_and_recovers() -> None:
    """A failing endpoint of three is out within a handful of requests and back after 30 s."""
    b = balancer(3)
    bad = {"10.0.0.2": E500}
    requests = 0
    while b.set_statistics("default", "svc", 80).ejected == 0:  # type: ignore[union-attr]
        send(b, 0.0, bad)
        requests += 1
        assert requests <= 15, "not ejected within 5 failures' worth of round robin"
    picked = Counter(send(b, t / 10).address for t in range(299))  # up to 29.9 s
    assert picked["10.0.0.2"] == 0
    assert {"10.0.0.1", "10.0.0.3"} <= set(picked)
    back = Counter(send(b, 30.0 + i / 100).address for i in range(30))
    assert back["10.0.0.2"] == 10
    assert b.set_statistics("default", "svc", 80).ejected == 0  # type: ignore[union-attr]


def test_outlier_max_ejection_percent_caps_ejections() -> None:
    """With 20 endpoints and 10 %, at most 2 are ejected however many fail."""
    b = balancer(20)
    bad = dict.fromkeys(addresses(5), CONNECT)
    for _ in range(400):
        send(b, 0.0, bad)
    stats = b.set_statistics("default", "svc", 80)
    assert stats is not None and stats.ejected == 2 and not stats.panic


def test_outlier_panic_below_threshold_serves_ejected_too() -> None:
    """Below 50 % healthy, ejected endpoints serve again (Envoy's panic mode)."""
    b = balancer(3, config=BalancerConfig(outlier=OutlierConfig(max_ejection_percent=100)))
    bad = {"10.0.0.1": E503, "10.0.0.2": E503}
    for _ in range(30):
        send(b, 0.0, bad)
    stats = b.set_statistics("default", "svc", 80)
    assert stats is not None and stats.ejected == 2 and stats.panic
    assert set(Counter(send(b, 1.0).address for _ in range(30))) == set(addresses(3))


@settings(max_examples=30, deadline=None)
@given(failing=st.sets(st.sampled_from(addresses(6)), max_size=6),
       steps=st.lists(st.tuples(st.floats(0.0, 20.0), st.booleans()), min_size=1, max_size=80),
       percent=st.sampled_from([10, 50, 100]))
def test_outlier_never_picks_ejected_outside_panic(
    failing: set[str], steps: list[tuple[float, bool]], percent: int
) -> None:
    """Whatever fails and whenever, a pick lands on an ejected endpoint only in panic."""
    b = balancer(6, config=BalancerConfig(outlier=OutlierConfig(
        max_ejection_percent=percent, base_ejection_time=15.0)))
    now = 0.0
    for advance, hashed in steps:
        now += advance
        p = must_pick(b.pick(SVC, now=now, hash_key=f"k{now}" if hashed else None))
        stats = b.set_statistics("default", "svc", 80)
        assert stats is not None
        state = {e.address: e.outlier.state for e in b.endpoint_statistics("default", "svc", 80)}
        if not stats.panic:
            assert state[p.address] is OutlierState.HEALTHY
        b.report(p, CONNECT if p.address in failing else OK, 0.01, now=now)
