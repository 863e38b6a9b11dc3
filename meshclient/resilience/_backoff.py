"""Exponential backoff with jitter that only ever lengthens the wait (GEP-1731)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["DEFAULT_CAP_FACTOR", "backoff_delay"]

DEFAULT_CAP_FACTOR: Final = 10.0
"""Delays never exceed this many times the base (Envoy's ``max_interval`` default is 10×)."""
_MAX_DOUBLINGS: Final = 64


def backoff_delay(
    base: float, retries: int, rand: Callable[[], float], *,
    cap_factor: float = DEFAULT_CAP_FACTOR,
) -> float:
    """Seconds to wait before the retry that follows ``retries`` earlier ones.

    The wait starts at ``base``, doubles per retry, and gets up to 100 % extra at random
    (``rand()`` in [0, 1)). GEP-1731 makes ``backoff`` a minimum, so jitter only adds: the
    result lies in ``[base, cap_factor × base)``. Once doubling reaches half the cap it stops,
    so late retries still spread over ``[cap/2, cap)`` instead of all waiting exactly ``cap``.

    Args:
        base: The rule's ``backoff`` in seconds; 0 means no wait at all.
        retries: Retries already made for this request (0 before the first retry).
        rand: Uniform floats in [0, 1).
        cap_factor: The cap as a multiple of ``base``; at least 2, so there is room to jitter.

    Raises:
        ValueError: ``base`` or ``retries`` is negative, or ``cap_factor`` is below 2.
    """
    if base < 0 or retries < 0:
        raise ValueError(f"base={base!r}, retries={retries!r}: neither may be negative")
    if cap_factor < 2:
        raise ValueError(f"cap_factor: {cap_factor!r} is below 2, leaving no room for jitter")
    if base == 0:
        return 0.0
    half_cap = base * cap_factor / 2
    raw = base * 2.0 ** min(retries, _MAX_DOUBLINGS)
    raw = min(raw, half_cap)
    return raw * (1.0 + rand())
