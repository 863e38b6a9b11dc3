"""How a ``Balancer`` picks: policy, locality, health, limits. Frozen, keyword-only."""

from __future__ import annotations

import enum
from typing import Final

import attrs

from meshclient.balancing._endpoints import DEFAULT_IP_FAMILIES
from meshclient.balancing._locality import Locality
from meshclient.balancing._outlier import DEFAULT_OUTLIER, OutlierConfig

__all__ = [
    "DEFAULT_PANIC_THRESHOLD",
    "BalancerConfig",
    "EndpointLimits",
    "PeakEwma",
    "Policy",
]

DEFAULT_PANIC_THRESHOLD: Final = 0.5
"""Envoy's 50 %: below this healthy fraction, health is ignored and every endpoint serves."""


class Policy(enum.Enum):
    """How an endpoint is chosen within a locality tier when no hash key applies."""

    ROUND_ROBIN = "RoundRobin"
    """In turn, starting at a random offset; weighted endpoints by earliest deadline first."""
    RANDOM = "Random"
    """Uniformly at random (by weight)."""
    LEAST_REQUEST = "LeastRequest"
    """Power of two choices: the one with fewer requests in flight."""
    PEAK_EWMA = "PeakEWMA"
    """Power of two choices on ``latency estimate × (in flight + 1)`` (Linkerd, Finagle)."""


@attrs.frozen(kw_only=True)
class PeakEwma:
    """Latency estimate settings for ``Policy.PEAK_EWMA`` (Linkerd's defaults).

    An observation above the estimate replaces it at once (the "peak"); one below it is
    blended in with weight ``1 - exp(-elapsed / decay)``. Reading the estimate decays it
    towards zero the same way, so an endpoint that has been avoided for a while gets tried
    again.
    """

    decay: float = attrs.field(default=10.0, validator=attrs.validators.gt(0.0))
    """Seconds: the time constant of the moving average."""
    default_rtt: float = 0.030
    """The estimate of an endpoint never observed yet."""
    floor: float = 0.001
    """Estimates never count below this, so an idle endpoint whose estimate decayed to ~0
    cannot draw an unbounded burst before its first answer arrives."""
    failure_penalty: float = 1.0
    """A failure without a response counts as at least this slow: a connection refused in
    a millisecond must not make an endpoint look fast."""


@attrs.frozen(kw_only=True)
class EndpointLimits:
    """Per-endpoint circuit breaking; ``max_concurrent=None`` means no limit.

    An endpoint takes ``max_concurrent`` requests in flight plus ``max_pending`` queued
    behind them (the adapter's connection pool does the queueing; ``Pick.pending`` says a
    request will queue). Past that it is skipped, and when every usable endpoint is full the
    pick returns ``Overflow``.
    """

    max_concurrent: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    max_pending: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    @property
    def capacity(self) -> int | None:
        """Requests in flight (active plus queued) an endpoint may hold."""
        if self.max_concurrent is None:
            return None
        return self.max_concurrent + self.max_pending


@attrs.frozen(kw_only=True)
class BalancerConfig:
    """Everything a ``Balancer`` needs besides endpoints, a clock and a random source."""

    policy: Policy = Policy.ROUND_ROBIN
    locality: Locality = attrs.field(factory=Locality)
    outlier: OutlierConfig = DEFAULT_OUTLIER
    limits: EndpointLimits = attrs.field(factory=EndpointLimits)
    panic_threshold: float = attrs.field(
        default=DEFAULT_PANIC_THRESHOLD,
        validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)],
    )
    """Healthy fraction below which ejections are ignored; 0 ignores them only when none is
    healthy (a pick never fails while endpoints exist)."""
    ewma: PeakEwma = attrs.field(factory=PeakEwma)
    ip_families: tuple[str, ...] = DEFAULT_IP_FAMILIES
