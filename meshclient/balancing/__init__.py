"""Endpoint selection: endpoint sets from EndpointSlices, locality, pickers, outlier ejection.

Sans-I/O: nothing here reads a clock or a random source of its own, or touches the network.
Adapters pass ``now`` (seconds) and, once, ``rand`` (uniform floats in [0, 1)).

The API adapters call::

    balancer = Balancer(rand=random.Random().random, config=BalancerConfig(
        policy=Policy.ROUND_ROBIN,                         # or RANDOM, LEAST_REQUEST, PEAK_EWMA
        locality=Locality(node=node_name, zone=zone),      # the adapter reads the environment
        limits=EndpointLimits(max_concurrent=100),         # optional circuit breaking
    ))
    balancer.update(services, slices)                      # on every snapshot change

    session = SessionConfig.from_persistence(rule_key, rule.session_persistence)  # once/rule
    tried: set[str] = set()
    result = balancer.pick(decision.backends, now=clock(), exclude=tried,
                           hash_key=None, session=session, session_token=token_from_request)
    match result:
        case Pick():        # send to result.address:result.port (result.same_node, .app_protocol)
            ...             # set result.session_token on the response when it is not None
            balancer.report(result, outcome, latency, now=clock())   # exactly once per Pick
            tried.add(result.address)                              # a retry prefers another
        case Overflow() | NoEndpoints():
            ...             # answer result.status (503, or 500 when no backend has weight)

``backends`` are any objects with ``namespace``, ``name``, ``port`` and ``weight``
(``BackendLike``); the routing core's backend values fit, and ``Pick.backend`` hands back
the one chosen. ``outcome`` is any object with ``status`` and ``failure`` (``OutcomeLike``),
such as ``meshclient.resilience.Outcome``; ``None`` means the attempt was cancelled.

Retries are decided by ``meshclient.resilience.next_step``. The two packages are peer layers
and do not import each other; the adapter calls both, in this order per attempt: ``pick``,
send, ``report``, ``next_step``.

Behaviour in short (details in each module's docstring):

* Endpoints: ready ones; serving-and-terminating ones only when none is ready (kube-proxy);
  matched to the Service port by name; deduplicated across slices; one endpoint per Pod in
  dual-stack clusters (``Pick.address`` is the preferred family, IPv4 by default).
* Locality (``_locality``): node, zone, rest, as the Service's ``trafficDistribution`` asks;
  traffic spills to the next tier with Envoy's overprovisioning factor 1.4. Without
  ``trafficDistribution`` no locality applies unless ``Locality.default_preference`` says so.
* Choice: the policy within the chosen tier; with a hash key, Maglev (≈1/N of keys move
  when one of N endpoints comes or goes).
* Sessions (GEP-1619): a token names the pinned endpoint; it beats weights (even 0); a
  pinned endpoint that is gone, ejected or excluded by a retry is re-pinned with a new token.
* Health: consecutive failures eject an endpoint (``OutlierConfig``) for base × count, capped,
  never more than ``max_ejection_percent`` (but always at least one); below the panic
  threshold (50 % healthy) health is ignored.
* Limits: an endpoint at ``EndpointLimits.capacity`` is skipped; all full gives ``Overflow``.
"""

from meshclient.balancing._config import DEFAULT_PANIC_THRESHOLD as DEFAULT_PANIC_THRESHOLD
from meshclient.balancing._config import BalancerConfig as BalancerConfig
from meshclient.balancing._config import EndpointLimits as EndpointLimits
from meshclient.balancing._config import PeakEwma as PeakEwma
from meshclient.balancing._config import Policy as Policy
from meshclient.balancing._endpoints import DEFAULT_IP_FAMILIES as DEFAULT_IP_FAMILIES
from meshclient.balancing._endpoints import EndpointInfo as EndpointInfo
from meshclient.balancing._endpoints import EndpointSet as EndpointSet
from meshclient.balancing._endpoints import SetKey as SetKey
from meshclient.balancing._endpoints import build_endpoint_sets as build_endpoint_sets
from meshclient.balancing._engine import Balancer as Balancer
from meshclient.balancing._feed import EndpointFeed as EndpointFeed
from meshclient.balancing._feed import live_endpoints as live_endpoints
from meshclient.balancing._group import EndpointHandle as EndpointHandle
from meshclient.balancing._hashing import TABLE_SIZE as TABLE_SIZE
from meshclient.balancing._hashing import build_maglev as build_maglev
from meshclient.balancing._hashing import key_hash as key_hash
from meshclient.balancing._locality import DEFAULT_OVERPROVISIONING as DEFAULT_OVERPROVISIONING
from meshclient.balancing._locality import Locality as Locality
from meshclient.balancing._locality import Preference as Preference
from meshclient.balancing._locality import assign_tiers as assign_tiers
from meshclient.balancing._locality import preference_for as preference_for
from meshclient.balancing._locality import tier_loads as tier_loads
from meshclient.balancing._outlier import DEFAULT_OUTLIER as DEFAULT_OUTLIER
from meshclient.balancing._outlier import FAILURE_KINDS as FAILURE_KINDS
from meshclient.balancing._outlier import TRANSITIONS as TRANSITIONS
from meshclient.balancing._outlier import OutcomeLike as OutcomeLike
from meshclient.balancing._outlier import OutlierConfig as OutlierConfig
from meshclient.balancing._outlier import OutlierState as OutlierState
from meshclient.balancing._outlier import OutlierStatistics as OutlierStatistics
from meshclient.balancing._outlier import OutlierTracker as OutlierTracker
from meshclient.balancing._outlier import Signal as Signal
from meshclient.balancing._outlier import classify as classify
from meshclient.balancing._results import BackendLike as BackendLike
from meshclient.balancing._results import BalancerStatistics as BalancerStatistics
from meshclient.balancing._results import EndpointSetStatistics as EndpointSetStatistics
from meshclient.balancing._results import EndpointStatistics as EndpointStatistics
from meshclient.balancing._results import NoEndpoints as NoEndpoints
from meshclient.balancing._results import Overflow as Overflow
from meshclient.balancing._results import Pick as Pick
from meshclient.balancing._session import SessionConfig as SessionConfig
from meshclient.balancing._session import parse_token as parse_token
from meshclient.balancing._session import session_token as session_token
from meshclient.balancing._session import set_cookie_value as set_cookie_value
from meshclient.balancing._session import token_from_cookies as token_from_cookies

__all__ = [
    "DEFAULT_IP_FAMILIES",
    "DEFAULT_OUTLIER",
    "DEFAULT_OVERPROVISIONING",
    "DEFAULT_PANIC_THRESHOLD",
    "FAILURE_KINDS",
    "TABLE_SIZE",
    "TRANSITIONS",
    "BackendLike",
    "Balancer",
    "BalancerConfig",
    "BalancerStatistics",
    "EndpointFeed",
    "EndpointHandle",
    "EndpointInfo",
    "EndpointLimits",
    "EndpointSet",
    "EndpointSetStatistics",
    "EndpointStatistics",
    "Locality",
    "NoEndpoints",
    "OutcomeLike",
    "OutlierConfig",
    "OutlierState",
    "OutlierStatistics",
    "OutlierTracker",
    "Overflow",
    "PeakEwma",
    "Pick",
    "Policy",
    "Preference",
    "SessionConfig",
    "SetKey",
    "Signal",
    "assign_tiers",
    "build_endpoint_sets",
    "build_maglev",
    "classify",
    "key_hash",
    "live_endpoints",
    "parse_token",
    "preference_for",
    "session_token",
    "set_cookie_value",
    "tier_loads",
    "token_from_cookies",
]
