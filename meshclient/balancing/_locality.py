"""Locality: which endpoints are close to the client, and how much traffic each tier gets.

Endpoints fall into three tiers: on the client's node, in its zone, everywhere else. Which
tiers exist depends on the Service:

* ``trafficDistribution: PreferSameNode``: node, then zone, then the rest.
* ``PreferClose`` / ``PreferSameZone``: zone, then the rest.
* unset, but every endpoint carries zone hints (``service.kubernetes.io/topology-mode:
  Auto``): zone, then the rest, because kube-proxy honours such hints too.
* unset otherwise: the client's ``default_preference``, which is ``Preference.NONE`` by
  default. kube-proxy applies no locality to such Services, and a client that quietly did
  would skew load in a way the Service owner did not ask for; a client that wants same-node
  latency anyway says so (``Locality(default_preference=Preference.SAME_NODE)``).

Tier membership follows EndpointSlice hints when every endpoint has them (``forNodes``,
``forZones``: the controller's allocation, which may place an endpoint of another zone in
ours), and the endpoint's own ``nodeName``/``zone`` otherwise.

Traffic spills from a tier as Envoy spills between priorities: a tier whose healthy fraction
is ``h`` is worth ``min(1, 1.4 * h)``; it takes that share and the next tier takes what is
left, and when all tiers together are worth less than 1 the shares are scaled up to sum to 1.
So a tier keeps all its traffic while at least 1/1.4 ≈ 71 % of it is healthy, and a tier with
no healthy endpoint takes nothing: the pick never fails while a healthy endpoint exists
elsewhere.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final

import attrs

from meshclient.balancing._endpoints import EndpointInfo, EndpointSet

__all__ = [
    "DEFAULT_OVERPROVISIONING",
    "NODE_TIER",
    "REST_TIER",
    "TIERS",
    "ZONE_TIER",
    "Locality",
    "Preference",
    "assign_tiers",
    "preference_for",
    "tier_loads",
]

DEFAULT_OVERPROVISIONING: Final = 1.4
"""Envoy's overprovisioning factor: a tier keeps its traffic down to 1/1.4 of it healthy."""

NODE_TIER: Final = 0
ZONE_TIER: Final = 1
REST_TIER: Final = 2
TIERS: Final = 3


class Preference(enum.Enum):
    """How strongly to keep traffic close to the client."""

    NONE = "None"
    """One tier: every endpoint alike (kube-proxy's behaviour without trafficDistribution)."""
    SAME_ZONE = "PreferSameZone"
    """Zone first, then the rest."""
    SAME_NODE = "PreferSameNode"
    """Node first, then zone, then the rest."""


_DISTRIBUTIONS: Final = {
    # KEP-3015 keeps PreferClose (KEP-4444) as an alias of PreferSameZone.
    "PreferClose": Preference.SAME_ZONE,
    "PreferSameZone": Preference.SAME_ZONE,
    "PreferSameNode": Preference.SAME_NODE,
}


@attrs.frozen(kw_only=True)
class Locality:
    """Where the client runs; the adapter fills these from its environment.

    ``node`` and ``zone`` of ``None`` mean "unknown": no endpoint can be on an unknown node
    or in an unknown zone, so the matching tier stays empty and traffic goes to the next.
    """

    node: str | None = None
    zone: str | None = None
    default_preference: Preference = Preference.NONE
    """Applied to Services without ``trafficDistribution`` (and without zone hints)."""
    overprovisioning: float = attrs.field(
        default=DEFAULT_OVERPROVISIONING, validator=attrs.validators.ge(1.0)
    )


def preference_for(endpoint_set: EndpointSet, locality: Locality) -> Preference:
    """The tiering a Service asks for, or the client's default when it asks for none.

    Unknown ``trafficDistribution`` values are ignored, as kube-proxy ignores them.
    """
    td = endpoint_set.traffic_distribution
    if td is not None and td in _DISTRIBUTIONS:
        return _DISTRIBUTIONS[td]
    eps = endpoint_set.endpoints
    if eps and all(e.hint_zones for e in eps):
        return Preference.SAME_ZONE
    return locality.default_preference


def assign_tiers(
    endpoints: Sequence[EndpointInfo], locality: Locality, preference: Preference
) -> tuple[int, ...]:
    """The tier of each endpoint, in order: ``NODE_TIER``, ``ZONE_TIER`` or ``REST_TIER``."""
    if preference is Preference.NONE:
        return (REST_TIER,) * len(endpoints)
    node, zone = locality.node, locality.zone
    # Hints are all-or-nothing, as in kube-proxy: a partly hinted slice set is mid-update.
    node_hints = bool(endpoints) and all(e.hint_nodes for e in endpoints)
    zone_hints = bool(endpoints) and all(e.hint_zones for e in endpoints)
    tiers: list[int] = []
    for e in endpoints:
        if preference is Preference.SAME_NODE and node is not None and (
            node in e.hint_nodes if node_hints else e.node == node
        ):
            tiers.append(NODE_TIER)
        elif zone is not None and (zone in e.hint_zones if zone_hints else e.zone == zone):
            tiers.append(ZONE_TIER)
        else:
            tiers.append(REST_TIER)
    return tuple(tiers)


def tier_loads(
    healthy: Sequence[int], total: Sequence[int], overprovisioning: float
) -> tuple[float, ...]:
    """Share of traffic per tier from each tier's healthy and total endpoint counts.

    Envoy's priority-load rule (``health = min(1, factor * healthy / total)``; tiers take
    their health in order until 1 is used; scaled up when the sum is below 1).

    Returns:
        One share per tier, summing to 1, or all zeros when no tier has a healthy endpoint
        (the caller is then in panic and ignores health).
    """
    health = [
        min(1.0, overprovisioning * h / t) if t else 0.0
        for h, t in zip(healthy, total, strict=True)
    ]
    norm = min(1.0, sum(health))
    if norm <= 0.0:
        return (0.0,) * len(health)
    loads: list[float] = []
    left = 1.0
    for h in health:
        share = min(left, h / norm)
        loads.append(share)
        left -= share
    return tuple(loads)
