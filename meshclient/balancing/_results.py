"""What a pick returns, what it is asked about, and the statistics snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

import attrs

from meshclient.balancing._outlier import OutlierStatistics

if TYPE_CHECKING:
    from meshclient.balancing._group import EndpointHandle

__all__ = [
    "BackendLike",
    "BalancerStatistics",
    "EndpointSetStatistics",
    "EndpointStatistics",
    "NoEndpoints",
    "Overflow",
    "Pick",
]


class BackendLike(Protocol):
    """A weighted backend a route rule names; the routing core's backend values fit.

    ``port`` is the Service port; ``None`` works for single-port Services only.
    """

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def port(self) -> int | None: ...

    @property
    def weight(self) -> int: ...


B = TypeVar("B", bound=BackendLike)


@attrs.frozen(kw_only=True)
class Pick(Generic[B]):
    """The endpoint to send this attempt to. Report it back exactly once (``report``).

    Picks are prebuilt per (endpoint, backend) and shared between requests, so comparing
    them by identity says nothing about the request.
    """

    address: str
    """IP address to connect to (the preferred family when the Pod has two)."""
    port: int
    """Target port number."""
    backend: B
    """The backend (one of those passed to ``pick``) the endpoint belongs to."""
    same_node: bool
    """The endpoint runs on the client's node (transports may allow plaintext there)."""
    app_protocol: str | None
    """The endpoint port's appProtocol, else the Service port's."""
    handle: EndpointHandle = attrs.field(repr=False)
    """Opaque: ``report`` needs it to find the endpoint's counters."""
    session_token: str | None = None
    """A token the adapter must set on the response (cookie or header); None: nothing to set."""
    pending: bool = False
    """The endpoint is at its concurrency limit, so this request will wait in its queue."""


@attrs.frozen(kw_only=True)
class Overflow(Generic[B]):
    """Every usable endpoint is at its concurrency and queue limits (circuit breaking).

    Send nothing; answer ``status`` (Envoy answers overflow with 503 too).
    """

    backend: B
    reason: str
    status: Literal[503] = 503


@attrs.frozen(kw_only=True)
class NoEndpoints(Generic[B]):
    """Nothing to send the request to; answer ``status``.

    503 when the chosen Service port has no usable endpoint (SPEC-NOTES §4.3: SHOULD 503, in
    proportion to its weight) or is unknown to the balancer (its slices may not have
    arrived yet); 500 when no backend has a positive weight (§4.2 reading).
    """

    backend: B | None
    reason: str
    status: Literal[500, 503] = 503


@attrs.frozen(kw_only=True)
class EndpointStatistics:
    address: str
    port: int
    tier: int
    """0 same node, 1 same zone, 2 the rest."""
    weight: int
    in_flight: int
    picks: int
    """Picks of this endpoint since it appeared (carried across updates)."""
    ewma: float | None
    """Peak-EWMA latency estimate in seconds, before decay; None until observed."""
    outlier: OutlierStatistics


@attrs.frozen(kw_only=True)
class EndpointSetStatistics:
    namespace: str
    service: str
    port: int
    endpoints: int
    healthy: int
    """Endpoints with weight > 0 that are not ejected."""
    ejected: int
    panic: bool
    """Health is ignored because fewer than the panic threshold are healthy."""
    terminating_fallback: bool
    left_out: int
    tier_sizes: tuple[int, int, int]
    tier_loads: tuple[float, float, float]
    """Share of new traffic per tier (node, zone, rest) outside panic."""
    in_flight: int


@attrs.frozen(kw_only=True)
class BalancerStatistics:
    sets: int
    endpoints: int
    picks: int
    overflows: int
    no_endpoints: int
    in_flight: int
    sessions_kept: int
    """Picks that followed a valid session token."""
    sessions_started: int
    """Picks that handed out a new session token (first request, or a re-pin)."""
    ejections: int
    """Ejection events since the balancer was made."""
    generation: int
    """How many times ``update`` swapped in new sets."""
