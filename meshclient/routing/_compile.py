"""Compile a snapshot into the ``RoutingTable`` that decides requests.

Compiling is the slow, careful part (attachment, references, policies, status); it runs off
the request path, whenever the snapshot changes, and never raises for bad configuration:
each problem becomes a status condition and the rest of the table keeps serving.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs

from meshclient.model import GRPCRoute, HTTPRoute
from meshclient.routing import _status as st
from meshclient.routing._backends import Resolver
from meshclient.routing._builder import Builder, RoutingOptions, RuleKey, route_order
from meshclient.routing._compile_grpc import compile_grpc_routes, grpc_claims, settle_grpc_losers
from meshclient.routing._compile_http import compile_http_route
from meshclient.routing._decision import (
    EMPTY_PLAN,
    Action,
    Decision,
    Plan,
)
from meshclient.routing._grpc import GrpcTier
from meshclient.routing._index import Claims, ServiceHosts, build_claims
from meshclient.routing._listeners import collect_listeners
from meshclient.routing._patch import CompileState, patch_table
from meshclient.routing._request import RequestHead
from meshclient.routing._table import Entry, Tier
from meshclient.routing._targets import RuleTarget
from meshclient.store import Snapshot

__all__ = ["RoutingOptions", "RoutingTable", "compile_table"]

_SCHEME_PROTOCOL: Final = {"http": "HTTP", "https": "HTTPS", "grpc": "HTTP", "grpcs": "HTTPS"}


@attrs.frozen(kw_only=True)
class RoutingTable:
    """Everything ``decide`` needs, built once per snapshot."""

    version: int
    statuses: tuple[st.ObjectStatus, ...]
    claims: dict[tuple[str, int], Claims]
    services: ServiceHosts
    """Services by the hosts that name them (``name.ns``, ``…svc.cluster.local``, cluster IPs)."""
    options: RoutingOptions

    environment: tuple[Mapping[object, object], ...] = attrs.field(default=(), eq=False,
                                                                   repr=False)
    """The object maps compiled rules resolved against (reuse is safe while they are equal)."""
    targets: dict[RuleKey, tuple[object, RuleTarget]] = attrs.field(
        factory=dict, eq=False, repr=False)
    """Every compiled rule target, for the next compile to reuse."""
    entries: dict[tuple[int, int], tuple[RuleTarget, Entry]] = attrs.field(
        factory=dict, eq=False, repr=False)
    routes: dict[int, tuple[object, list[tuple[Any, ...]]]] = attrs.field(
        factory=dict, eq=False, repr=False)
    tiers: dict[tuple[int, ...], Tier] = attrs.field(factory=dict, eq=False, repr=False)
    state: CompileState | None = attrs.field(default=None, eq=False, repr=False)
    """What a change to a few HTTPRoutes needs to patch this table (None: not patchable)."""
    has_grpc: bool = False
    """Whether any GRPCRoute serves here (only then is a request's content-type looked at)."""
    _hosts: dict[tuple[str, int, str, str, bool], _HostRoute] = attrs.field(
        factory=dict, eq=False)
    """Where each (scheme, port, authority, Host, gRPC) seen leads; bounded, per table."""

    def decide(self, head: RequestHead) -> Decision:
        """Route one request; never raises for a request it cannot route (passthrough).

        A gRPC call (``grpc://`` / ``grpcs://`` URLs, or ``content-type: application/grpc``)
        is matched against the GRPCRoutes of its host when there are any, and against the
        HTTPRoutes otherwise; other requests only ever see HTTPRoutes.
        """
        grpc = self.has_grpc and head.is_grpc()
        key = (head.scheme, head.port, head.authority, head.host, grpc)
        found = self._hosts.get(key)
        if found is None:
            found = self._host_route(head, grpc)
            if len(self._hosts) >= _HOST_CACHE_SIZE:
                self._hosts.clear()  # a flood of odd hosts costs speed, never memory
            self._hosts[key] = found
        tiers, plan = found
        for tier in tiers:
            entry = tier.find(head)
            if entry is not None:
                fast = entry.fast_plan
                if fast is not None:  # a plain forward: RuleTarget.decide's first branch
                    return tuple.__new__(Decision, (_FORWARD, head, None, None,
                                                    entry.fast_edits, (), fast))
                return entry.target.decide(head, entry.prefix)
        if plan is None:
            return Decision.make(EMPTY_PLAN, Action.PASSTHROUGH, head)
        if isinstance(plan, RuleTarget):
            return plan.decide(head, None)
        return Decision.make(plan, Action.REJECT, head, 404)

    def _host_route(self, head: RequestHead, grpc: bool) -> _HostRoute:
        """The tiers a host walks and what happens when none matches (or no tiers: passthrough)."""
        protocol = _SCHEME_PROTOCOL.get(head.scheme)
        claims = self.claims.get((protocol, head.port)) if protocol else None
        if claims is not None:
            gport = claims.lookup(head.authority)
            if gport is not None:
                listener = gport.listener(head.host)
                if listener is None:
                    return (
                        (),
                        Plan(
                            reasons=(
                                f"no listener of Gateway {gport.gateway} on port "
                                f"{head.port} matches host {head.host!r}",
                            )
                        ),
                    )
                if grpc and listener.grpc is not None:
                    tiers = listener.grpc.tiers(head.host)
                    if tiers:
                        return (tiers, listener.not_found)
                return (listener.table.tiers(head.host), listener.not_found)
        ports = self.services.get(head.authority)
        if ports is not None:
            sp = ports.get(head.port)
            if sp is not None:
                if sp.grpc is not None:
                    return (sp.grpc.any_host, sp.not_found)
                if sp.table is None:
                    return ((), sp.plain)
                # GAMMA: routes on this Service port apply; their hostnames do not (G1294).
                return (sp.table.any_host, sp.not_found)
        return ((), None)


_HOST_CACHE_SIZE: Final = 4096
_FORWARD: Final = Action.FORWARD
_HostRoute = tuple[tuple["Tier | GrpcTier", ...], "Plan | RuleTarget | None"]


def compile_table(
    snapshot: Snapshot,
    options: RoutingOptions | None = None,
    *,
    previous: RoutingTable | None = None,
) -> RoutingTable:
    """Compile ``snapshot``; problems become statuses, never exceptions.

    With ``previous`` (the table being replaced), rules of routes that did not change are
    not compiled again, as long as nothing their backends resolve against changed (Services,
    ReferenceGrants, backend policies, ConfigMaps): a one-route change then costs a fraction
    of a full compile.
    """
    with _collector_paused():
        return _compile(snapshot, options or RoutingOptions(), previous)


# What compiled rules depend on besides their own route: kept to decide reuse. The first
# five decide backends; the rest decide attachment (listeners, namespaces, route conflicts).
_RESOLVE_KINDS: Final = ("Service", "ReferenceGrant", "BackendTLSPolicy",
                         "XBackendTrafficPolicy", "ConfigMap", "Gateway", "ListenerSet",
                         "Namespace", "GRPCRoute")
_BACKEND_KINDS: Final = 5


def _environment(snapshot: Snapshot) -> tuple[Mapping[object, object], ...]:
    return tuple(snapshot.of(kind) for kind in _RESOLVE_KINDS)  # type: ignore[misc]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # Compiling allocates hundreds of thousands of small objects that all stay alive; the
    # cyclic collector would rescan them again and again (a third of a 10,000-route compile).
    # Nothing built here forms cycles that need collecting, so pause it for the duration.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            # What a compile built lives as long as its table: straight to the oldest
            # generation, sparing the young collections a pass over every new object. Not
            # when the application froze objects itself (unfreeze would undo its freeze).
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _compile(
    snapshot: Snapshot, options: RoutingOptions, previous: RoutingTable | None
) -> RoutingTable:
    environment = _environment(snapshot)
    if previous is not None and previous.options == options:
        patched = patch_table(previous, snapshot, environment)
        if patched is not None:
            return attrs.evolve(
                previous, version=snapshot.version, statuses=patched.statuses,
                claims=patched.claims, environment=environment, targets=patched.targets,
                entries=patched.entries, routes=patched.routes, tiers=patched.tiers,
                services=patched.services, state=patched.state, hosts={})
    resolver = Resolver(snapshot)
    same = [False] * len(environment)
    if previous is not None and previous.options == options and len(previous.environment) == (
        len(environment)
    ):
        # Identical maps are the common case (the store keeps unchanged kinds); equal maps
        # compare their values by identity first, so this stays cheap.
        same = [a is b or a == b for a, b in zip(previous.environment, environment,
                                                 strict=True)]
    if previous is not None and all(same[:_BACKEND_KINDS]):
        b = Builder(snapshot=snapshot, options=options, resolver=resolver,
                    reusable=previous.targets, reusable_entries=previous.entries,
                    reusable_routes=previous.routes if all(same) else {},
                    reusable_tiers=previous.tiers)
    else:
        b = Builder(snapshot=snapshot, options=options, resolver=resolver)
    all_gateways = {
        k: g for k, g in snapshot.of("Gateway").items() if type(g).__name__ == "Gateway"
    }
    gateways = collect_listeners(snapshot, all_gateways, b.statuses)  # type: ignore[arg-type]

    http_routes = sorted(
        (r for r in snapshot.of("HTTPRoute").values() if isinstance(r, HTTPRoute)), key=route_order
    )
    grpc_routes = sorted(
        (r for r in snapshot.of("GRPCRoute").values() if isinstance(r, GRPCRoute)), key=route_order
    )
    held = grpc_claims(b, grpc_routes, gateways)
    http_start = len(b.statuses)  # GRPCRoute statuses come before, final once compiled
    for route in http_routes:
        compile_http_route(b, route, gateways, held)
    settle_grpc_losers(b)
    compile_grpc_routes(b)

    claims, index = build_claims(b, gateways)
    services = ServiceHosts(b)
    b.statuses.extend(resolver.statuses)
    has_grpc = bool(b.grpc_listener_entries or b.grpc_mesh_entries)
    state = CompileState(
        environment=environment, http_routes=snapshot.of("HTTPRoute"),
        lineage=snapshot.lineage, route_version=snapshot.kind_versions.get("HTTPRoute", 0),
        resolver=resolver,
        gateways=gateways, head=tuple(b.statuses[:http_start]),
        tail=tuple(resolver.statuses), route_statuses=b.route_statuses,
        listener_entries=b.listener_entries, mesh_entries=b.mesh_entries, index=index,
        grpc_held=held, grpc_ports=frozenset(b.grpc_ports),
        grpc_listener_entries=b.grpc_listener_entries)
    return RoutingTable(
        has_grpc=has_grpc,
        environment=environment,
        targets=b.targets,
        entries=b.entries,
        routes=b.routes,
        tiers=b.tiers,
        version=snapshot.version,
        statuses=tuple(b.statuses),
        claims=claims,
        services=services,
        options=options,
        state=state,
    )
