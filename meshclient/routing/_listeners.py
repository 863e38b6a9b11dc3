"""Gateways and ListenerSets → the effective listeners routes attach to (SPEC-NOTES §1.2)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from meshclient.model import (
    GATEWAY_GROUP,
    Gateway,
    LabelSelector,
    Listener,
    ListenerSet,
    Namespace,
)
from meshclient.routing import _status as st
from meshclient.store import Snapshot

__all__ = ["EffectiveListener", "GatewayListeners", "collect_listeners", "namespace_labels"]

ROUTE_KINDS = {"HTTP": ("HTTPRoute", "GRPCRoute"), "HTTPS": ("HTTPRoute", "GRPCRoute"),
               "TLS": ("TLSRoute",), "TCP": ("TCPRoute",), "UDP": ("UDPRoute",)}
SERVED_KINDS = frozenset({"HTTPRoute", "GRPCRoute"})


@attrs.frozen(kw_only=True)
class EffectiveListener:
    gateway: Gateway
    listener: Listener
    owner_kind: str  # "Gateway" | "ListenerSet"
    owner_namespace: str
    owner_name: str
    kinds: frozenset[str]
    """Route kinds this listener admits and meshclient serves."""
    key: tuple[str, ...] = attrs.field(init=False, eq=False, default=attrs.Factory(
        lambda self: (self.gateway.meta.namespace, self.gateway.meta.name, self.owner_kind,
                      self.owner_namespace, self.owner_name, self.listener.name),
        takes_self=True))
    """Identifies the listener across compiles (entries and claims are kept by it)."""

    @property
    def name(self) -> str:
        return self.listener.name


@attrs.frozen(kw_only=True)
class GatewayListeners:
    gateway: Gateway
    own: tuple[EffectiveListener, ...]
    by_listener_set: Mapping[tuple[str, str], tuple[EffectiveListener, ...]]


def namespace_labels(snapshot: Snapshot, namespace: str) -> Mapping[str, str]:
    ns = snapshot.get("Namespace", "", namespace)
    labels = dict(ns.meta.labels) if isinstance(ns, Namespace) else {}
    # Kubernetes labels every namespace with its own name.
    labels.setdefault("kubernetes.io/metadata.name", namespace)
    return labels


def _distinct_key(listener: Listener) -> tuple[object, ...]:
    if listener.protocol in ("TCP", "UDP"):
        return (listener.port, listener.protocol)
    return (listener.port, listener.protocol, listener.hostname)


def _conflict_reason(listener: Listener) -> str:
    # GW: listeners told apart by hostname clash on it (a missing hostname is the catch-all);
    # TCP/UDP listeners, told apart by port alone, clash on protocol.
    return "ProtocolConflict" if listener.protocol in ("TCP", "UDP") else "HostnameConflict"


def _kinds(listener: Listener, statuses: list[st.Condition]) -> frozenset[str]:
    implied = ROUTE_KINDS.get(listener.protocol, ())
    if not listener.allowed_routes.kinds:
        return frozenset(k for k in implied if k in SERVED_KINDS)
    kinds = set()
    bad = []
    for rk in listener.allowed_routes.kinds:
        if rk.group == GATEWAY_GROUP and rk.kind in implied and rk.kind in SERVED_KINDS:
            kinds.add(rk.kind)
        elif not (rk.group == GATEWAY_GROUP and rk.kind in implied):
            bad.append(rk.kind)
    if bad:
        statuses.append(st.Condition(type="ResolvedRefs", status="False",
                                     reason="InvalidRouteKinds",
                                     message=f"route kinds {bad} are not supported on "
                                     f"{listener.protocol}"))
    return frozenset(kinds)


def collect_listeners(
    snapshot: Snapshot, gateways: Mapping[tuple[str, str], Gateway],
    statuses: list[st.ObjectStatus],
) -> dict[tuple[str, str], GatewayListeners]:
    """Accepted listeners of each Gateway and of the ListenerSets attached to it."""
    listener_sets: dict[tuple[str, str], list[ListenerSet]] = {}
    for ls in snapshot.of("ListenerSet").values():
        if isinstance(ls, ListenerSet):
            listener_sets.setdefault((ls.parent_namespace, ls.parent_name), []).append(ls)
    out: dict[tuple[str, str], GatewayListeners] = {}
    for key, gw in sorted(gateways.items()):
        own: list[EffectiveListener] = []
        counts: dict[tuple[object, ...], int] = {}
        for listener in gw.listeners:
            counts[_distinct_key(listener)] = counts.get(_distinct_key(listener), 0) + 1
        taken: set[tuple[object, ...]] = set()
        for listener in gw.listeners:
            conds: list[st.Condition] = []
            accepted = _accept_listener(listener, conds)
            if counts[_distinct_key(listener)] > 1:
                # GW: indistinct listeners inside one Gateway are all Conflicted, none wins.
                conds.append(st.Condition(
                    type="Conflicted", status="True",
                    reason=_conflict_reason(listener),
                    message="another listener has the same port, protocol and hostname"))
                accepted = False
            kinds = _kinds(listener, conds)
            if accepted:
                taken.add(_distinct_key(listener))
                own.append(EffectiveListener(gateway=gw, listener=listener, owner_kind="Gateway",
                                             owner_namespace=gw.meta.namespace,
                                             owner_name=gw.meta.name, kinds=kinds))
            _listener_status(statuses, "Gateway", gw.meta.namespace, gw.meta.name, listener,
                             conds, accepted)
        gw_conds = [st.Condition(type="Accepted", status="True", reason="Accepted")]
        if len(own) < len(gw.listeners):
            # GW: ListenersNotValid, still Accepted while some listener can be used.
            gw_conds = [st.Condition(
                type="Accepted", status="True" if own else "False", reason="ListenersNotValid",
                message=f"{len(gw.listeners) - len(own)} of {len(gw.listeners)} listeners "
                "are not valid")]
        if gw.errors:
            gw_conds = [st.Condition(type="Accepted", status="False", reason="Invalid",
                                     message=str(gw.errors[0]))]
        statuses.append(st.ObjectStatus(kind="Gateway", namespace=gw.meta.namespace,
                                        name=gw.meta.name, conditions=tuple(gw_conds)))
        attached: dict[tuple[str, str], tuple[EffectiveListener, ...]] = {}
        sets = sorted(listener_sets.get(key, ()),
                      key=lambda s: (s.meta.creation, s.meta.ns_name))
        for ls in sets:
            attached[(ls.meta.namespace, ls.meta.name)] = _attach_listener_set(
                snapshot, gw, ls, taken, statuses)
        out[key] = GatewayListeners(gateway=gw, own=tuple(own), by_listener_set=attached)
    return out


def _accept_listener(listener: Listener, conds: list[st.Condition]) -> bool:
    if listener.errors:
        conds.append(st.Condition(type="Accepted", status="False", reason="UnsupportedValue",
                                  message=str(listener.errors[0])))
        return False
    if listener.protocol not in ROUTE_KINDS:
        conds.append(st.Condition(type="Accepted", status="False", reason="UnsupportedProtocol",
                                  message=f"protocol {listener.protocol!r} is not supported"))
        return False
    return True


def _listener_status(statuses: list[st.ObjectStatus], kind: str, ns: str, name: str,
                     listener: Listener, conds: list[st.Condition], accepted: bool) -> None:
    if accepted and not any(c.type == "Accepted" for c in conds):
        conds.insert(0, st.Condition(type="Accepted", status="True", reason="Accepted"))
    elif not accepted and not any(c.type == "Accepted" for c in conds):
        # A conflicted listener is not accepted, for the conflict's reason
        # (CT:listenerset-hostname-conflict); "Conflicted" is no listener Accepted reason.
        conflict = next((c for c in conds if c.type == "Conflicted"), None)
        conds.insert(0, st.Condition(type="Accepted", status="False",
                                     reason=conflict.reason if conflict else "Invalid"))
    statuses.append(st.ObjectStatus(kind=kind, namespace=ns, name=name, parent=f"listener "
                                    f"{listener.name}", conditions=tuple(conds)))


def _attach_listener_set(snapshot: Snapshot, gw: Gateway, ls: ListenerSet,
                         taken: set[tuple[object, ...]],
                         statuses: list[st.ObjectStatus]) -> tuple[EffectiveListener, ...]:
    allowed = gw.allowed_listeners_from
    ns = ls.meta.namespace
    ok = (
        allowed == "All"
        or (allowed == "Same" and ns == gw.meta.namespace)
        or (allowed == "Selector" and (gw.allowed_listeners_selector or LabelSelector())
            .matches(namespace_labels(snapshot, ns)))
    )
    if not ok:
        statuses.append(st.ObjectStatus(
            kind="ListenerSet", namespace=ns, name=ls.meta.name,
            conditions=(st.Condition(type="Accepted", status="False", reason="NotAllowed",
                                     message=f"Gateway {gw.meta.ns_name} allowedListeners "
                                     f"({allowed}) does not admit namespace {ns}"),)))
        return ()
    accepted: list[EffectiveListener] = []
    for listener in ls.listeners:
        conds: list[st.Condition] = []
        good = _accept_listener(listener, conds)
        key = _distinct_key(listener)
        if good and key in taken:
            # LS: across Gateway + ListenerSets the first in precedence keeps the listener.
            conds.append(st.Condition(
                type="Conflicted", status="True",
                reason=_conflict_reason(listener),
                message="an earlier listener on the Gateway or an older ListenerSet has the "
                "same port, protocol and hostname"))
            good = False
        kinds = _kinds(listener, conds)
        if good:
            taken.add(key)
            accepted.append(EffectiveListener(gateway=gw, listener=listener,
                                              owner_kind="ListenerSet", owner_namespace=ns,
                                              owner_name=ls.meta.name, kinds=kinds))
        _listener_status(statuses, "ListenerSet", ns, ls.meta.name, listener, conds, good)
    statuses.append(st.ObjectStatus(
        kind="ListenerSet", namespace=ns, name=ls.meta.name,
        conditions=(st.Condition(type="Accepted", status="True", reason="Accepted")
                    if accepted else st.Condition(type="Accepted", status="False",
                                                  reason="ListenersNotValid"),)))
    return tuple(accepted)
