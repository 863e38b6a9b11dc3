"""The Balancer's contract: updates keep state, reports balance picks, exports stay listed."""

from __future__ import annotations

import random
import threading

import pytest

import meshclient.balancing as balancing
from meshclient.balancing import Balancer, NoEndpoints, OutlierState

from ._world import CONNECT, OK, SVC, Backend, balancer, must_pick, send, simple_world


def test_balancing_all_sorted_and_complete() -> None:
    """__all__ lists every public name of the package, sorted as ruff sorts it (STYLE §9)."""
    public = {n for n in vars(balancing) if not n.startswith("_")}
    assert set(balancing.__all__) == public
    assert balancing.__all__ == sorted(
        balancing.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n)
    )


def test_report_twice_raises_and_keeps_counts() -> None:
    """A second report for one pick is a bug: it raises and leaves counters at zero."""
    b = balancer(1)
    p = must_pick(b.pick(SVC, now=0.0))
    b.report(p, OK, 0.01, now=0.0)
    with pytest.raises(RuntimeError, match="without a matching pick"):
        b.report(p, OK, 0.01, now=0.0)
    assert b.statistics().in_flight == 0


def test_report_cancelled_releases_without_judging() -> None:
    """outcome=None releases the in-flight slot and counts nothing against the endpoint."""
    b = balancer(1)
    for _ in range(10):
        b.report(must_pick(b.pick(SVC, now=0.0)), None, None, now=0.0)
    (e,) = b.endpoint_statistics("default", "svc", 80)
    assert e.in_flight == 0 and e.outlier.consecutive_5xx == 0


def test_update_unchanged_set_keeps_round_robin_turns() -> None:
    """Re-applying the same snapshot keeps the set object, so turns continue."""
    b = balancer(3)
    first = [send(b, 0.0).address for _ in range(2)]
    b.update(*simple_world(3))
    assert len({*first, send(b, 0.0).address}) == 3


def test_update_keeps_in_flight_and_ejection_of_surviving_endpoints() -> None:
    """An endpoint that survives an update keeps its in-flight count and its ejection."""
    b = balancer(3)
    held = must_pick(b.pick(SVC, now=0.0))
    for _ in range(9):
        send(b, 0.0, {"10.0.0.3": CONNECT})
    b.update(*simple_world(4))
    stats = {e.address: e for e in b.endpoint_statistics("default", "svc", 80)}
    assert stats[held.address].in_flight == 1
    assert stats["10.0.0.3"].outlier.state is OutlierState.EJECTED
    b.report(held, OK, 0.01, now=0.0)
    assert b.statistics().in_flight == 0
    assert "10.0.0.3" not in {send(b, 1.0).address for _ in range(12)}
    assert "10.0.0.3" in {send(b, 31.0).address for _ in range(12)}


def test_report_after_endpoint_removed_is_harmless() -> None:
    """A report for an endpoint the last update removed is accepted and changes no live set."""
    b = balancer(2)
    held = [must_pick(b.pick(SVC, now=0.0)) for _ in range(2)]
    b.update([], [])
    for p in held:
        b.report(p, CONNECT, 0.01, now=0.0)
    assert b.statistics().sets == 0
    assert isinstance(b.pick(SVC, now=0.0), NoEndpoints)


def test_pick_unknown_service_no_endpoints_names_it() -> None:
    """A backend the balancer does not know gets NoEndpoints (503) naming the Service port."""
    got = balancer(1).pick([Backend("prod", "api", 8080)], now=0.0)
    assert isinstance(got, NoEndpoints) and got.status == 503
    assert "prod/api port 8080" in got.reason


def test_statistics_count_picks_and_sets() -> None:
    """Statistics report sets, endpoints, picks, updates and in-flight requests."""
    b = balancer(4)
    held = must_pick(b.pick(SVC, now=0.0))
    send(b, 0.0)
    stats = b.statistics()
    assert (stats.sets, stats.endpoints, stats.picks, stats.in_flight, stats.generation) == (
        1, 4, 2, 1, 1
    )
    b.report(held, OK, 0.01, now=0.0)


def test_balancer_threads_keep_exact_in_flight_counts() -> None:
    """Picks and reports from several threads leave every in-flight count at exactly zero."""
    b = Balancer(rand=random.Random(9).random)
    b.update(*simple_world(4))

    def work() -> None:
        for i in range(3000):
            p = must_pick(b.pick(SVC, now=float(i)))
            b.report(p, OK, 0.001, now=float(i))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.in_flight for e in b.endpoint_statistics("default", "svc", 80)] == [0] * 4
    assert b.statistics().picks == 12000


def test_statistics_picks_survive_removed_endpoints() -> None:
    """Picks of endpoints an update removed, and picks that found nothing, still count."""
    b = balancer(2)
    for _ in range(3):
        send(b, 0.0)
    b.update([], [])
    assert isinstance(b.pick(SVC, now=0.0), NoEndpoints)
    stats = b.statistics()
    assert (stats.picks, stats.no_endpoints) == (4, 1)
