"""What the two peer layers agree on without importing each other, and the exports."""

from __future__ import annotations

import random

import pytest

import meshclient.resilience as resilience
from meshclient.balancing import FAILURE_KINDS, Balancer, Pick, Signal, classify
from meshclient.resilience import Failure, Outcome

from ..balancing._world import SVC, simple_world


def test_resilience_all_sorted_and_complete() -> None:
    """__all__ lists every public name of the package, sorted as ruff sorts it (STYLE §9)."""
    public = {n for n in vars(resilience) if not n.startswith("_")}
    assert set(resilience.__all__) == public
    assert resilience.__all__ == sorted(
        resilience.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n)
    )


def test_failure_values_match_balancing_failure_kinds() -> None:
    """resilience.Failure and balancing.FAILURE_KINDS name the same failures."""
    assert {f.value for f in Failure} == FAILURE_KINDS


@pytest.mark.parametrize("failure", list(Failure))
def test_outcome_failures_classified_by_balancing(failure: Failure) -> None:
    """Every resilience failure is a signal outlier detection understands."""
    assert classify(Outcome.failed(failure)) is not Signal.SUCCESS


def test_outcome_reported_to_balancer() -> None:
    """One Outcome value serves both Balancer.report and next_step."""
    b = Balancer(rand=random.Random(0).random)
    b.update(*simple_world(1))
    for outcome in (Outcome.response(200), Outcome.failed(Failure.CONNECT)):
        p = b.pick(SVC, now=0.0)
        assert isinstance(p, Pick)
        b.report(p, outcome, 0.01, now=0.0)
    (e,) = b.endpoint_statistics("default", "svc", 80)
    assert e.outlier.consecutive_connect_failures == 1


def test_outcome_needs_exactly_one_field() -> None:
    """An Outcome is a status or a failure, never both or neither."""
    with pytest.raises(ValueError, match="exactly one"):
        Outcome()
    with pytest.raises(ValueError, match="exactly one"):
        Outcome(status=200, failure=Failure.RESET)
    assert Outcome.response(503) is Outcome.response(503)
    assert not Outcome.failed(Failure.CONNECT).reached_server
    assert Outcome.failed(Failure.RESET).reached_server
