"""Backoff: exponential, jittered upwards only, never below the rule's minimum (GEP-1731)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.resilience import backoff_delay


def test_backoff_doubles_from_base_without_jitter() -> None:
    """With no jitter drawn the delays are base, 2×base, 4×base until half the cap."""
    assert [backoff_delay(0.1, n, lambda: 0.0) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    )


def test_backoff_jitter_adds_up_to_double() -> None:
    """Jitter only lengthens the wait, by up to 100 %, and never reaches the cap."""
    assert backoff_delay(0.1, 0, lambda: 0.5) == pytest.approx(0.15)
    assert backoff_delay(0.1, 10, lambda: 0.999999) < 1.0


def test_backoff_zero_base_never_waits() -> None:
    """A 0s backoff retries at once."""
    assert backoff_delay(0.0, 5, lambda: 0.9) == 0.0


def test_backoff_huge_retry_count_stays_capped() -> None:
    """A very late retry does not overflow and stays under the cap."""
    assert 0.5 <= backoff_delay(0.1, 10_000, lambda: 0.3) < 1.0


@pytest.mark.parametrize(("base", "retries", "cap"), [(-1.0, 0, 10.0), (0.1, -1, 10.0),
                                                       (0.1, 0, 1.5)])
def test_backoff_bad_arguments_raise(base: float, retries: int, cap: float) -> None:
    """Negative inputs or a cap with no room for jitter are programmer errors."""
    with pytest.raises(ValueError, match=r"negative|below 2"):
        backoff_delay(base, retries, lambda: 0.0, cap_factor=cap)


@settings(max_examples=100, deadline=None)
@given(base=st.floats(1e-4, 10.0), retries=st.integers(0, 200),
       u=st.floats(0.0, 1.0, exclude_max=True), cap=st.floats(2.0, 50.0))
def test_backoff_always_within_minimum_and_cap(base: float, retries: int, u: float,
                                               cap: float) -> None:
    """Every delay lies in [backoff, cap × backoff): the minimum is a floor (GEP-1731)."""
    delay = backoff_delay(base, retries, lambda: u, cap_factor=cap)
    assert base <= delay < cap * base * (1 + 1e-12)
