"""GRPCRoute (gateway.networking.k8s.io v1). Types and parsing; routing comes later."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import attrs

from meshclient.errors import ConfigError
from meshclient.model._filters import GRPC_FILTER_TYPES, Filter, parse_filters
from meshclient.model._httproute import HeaderMatch, parse_hostnames
from meshclient.model._meta import Meta, parse_meta, spec_of
from meshclient.model._names import header_name_problem
from meshclient.model._reader import INVALID, UNSUPPORTED_VALUE, Reader
from meshclient.model._refs import BackendRef, ParentRef, parse_backend_ref, parse_parent_refs
from meshclient.model._regex import regex_problem
from meshclient.model._traffic import SessionPersistence, parse_session_persistence

__all__ = ["GRPCBackendRef", "GRPCMethodMatch", "GRPCRoute", "GRPCRouteMatch", "GRPCRouteRule"]

# GR: Exact service and method names.
_SERVICE: Final = re.compile(r"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", re.IGNORECASE)
_METHOD: Final = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


@attrs.frozen(kw_only=True)
class GRPCMethodMatch:
    type: str = "Exact"
    service: str | None = None
    method: str | None = None


@attrs.frozen(kw_only=True)
class GRPCRouteMatch:
    method: GRPCMethodMatch | None = None
    headers: tuple[HeaderMatch, ...] = ()


@attrs.frozen(kw_only=True)
class GRPCBackendRef:
    ref: BackendRef
    filters: tuple[Filter, ...] = ()


@attrs.frozen(kw_only=True)
class GRPCRouteRule:
    index: int
    name: str | None = None
    matches: tuple[GRPCRouteMatch, ...] = (GRPCRouteMatch(),)
    filters: tuple[Filter, ...] = ()
    backend_refs: tuple[GRPCBackendRef, ...] = ()
    session_persistence: SessionPersistence | None = None
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen(kw_only=True)
class GRPCRoute:
    meta: Meta
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[GRPCRouteRule, ...] = ()
    errors: tuple[ConfigError, ...] = ()

    kind: str = "GRPCRoute"


def parse_grpc_route(raw: Mapping[str, object], default_namespace: str) -> GRPCRoute:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "GRPCRoute", default_namespace, errors)
    spec = spec_of(raw, "GRPCRoute", meta, errors)
    parents = parse_parent_refs(spec, meta.namespace)
    hostnames = parse_hostnames(spec)
    rules = [
        _parse_rule(r, i, meta.namespace)
        for i, r in enumerate(spec.children("rules", max_items=16))
    ]
    if not spec.has("rules"):
        rules.append(GRPCRouteRule(index=0))
    return GRPCRoute(
        meta=meta,
        parent_refs=parents,
        hostnames=hostnames,
        rules=tuple(rules),
        errors=tuple(errors),
    )


def _parse_rule(r: Reader, index: int, ns: str) -> GRPCRouteRule:
    errors: list[ConfigError] = []
    r = r.with_errors(errors)
    matches = tuple(_parse_match(m) for m in r.children("matches", max_items=64))
    if r.get("matches") in (None, []):
        matches = (GRPCRouteMatch(),)
    filters = tuple(parse_filters(r, "filters", ns, allowed=GRPC_FILTER_TYPES))
    backends: list[GRPCBackendRef] = []
    for b in r.children("backendRefs", max_items=16):
        ref = parse_backend_ref(b, ns)
        if ref is None:
            continue
        if ref.is_service and ref.port is None:
            b.missing("port")
            continue
        bf = tuple(parse_filters(b, "filters", ns, allowed=GRPC_FILTER_TYPES))
        backends.append(GRPCBackendRef(ref=ref, filters=bf))
    session = None
    if (sp := r.child("sessionPersistence")) is not None:
        session = parse_session_persistence(sp)
    return GRPCRouteRule(
        index=index,
        name=r.opt_str("name"),
        matches=matches,
        filters=filters,
        backend_refs=tuple(backends),
        session_persistence=session,
        errors=tuple(errors),
    )


def _parse_match(m: Reader) -> GRPCRouteMatch:
    method = None
    if (mm := m.child("method")) is not None:
        kind = mm.str("type", "Exact")
        service = mm.opt_str("service")
        name = mm.opt_str("method")
        if kind not in ("Exact", "RegularExpression"):
            mm.error("type", kind, "is not Exact or RegularExpression", UNSUPPORTED_VALUE)
        elif not service and not name:
            mm.error("service", None, "or method must be set", INVALID)
        elif kind == "Exact":
            if service and not _SERVICE.match(service):
                mm.error("service", service, "is not a gRPC service name", INVALID)
            if name and not _METHOD.match(name):
                mm.error("method", name, "is not a gRPC method name", INVALID)
        else:
            for field, value in (("service", service), ("method", name)):
                if value and (problem := regex_problem(value)):
                    mm.error(field, value, problem, UNSUPPORTED_VALUE)
        method = GRPCMethodMatch(type=kind, service=service, method=name)
    headers: list[HeaderMatch] = []
    seen: set[str] = set()
    for h in m.children("headers", max_items=16):
        kind = h.str("type", "Exact")
        name = h.str("name", required=True)
        value = h.str("value", required=True)
        if problem := header_name_problem(name):
            h.error("name", name, problem, INVALID)
        elif kind not in ("Exact", "RegularExpression"):
            h.error("type", kind, "is not Exact or RegularExpression", UNSUPPORTED_VALUE)
        elif kind == "RegularExpression" and (problem := regex_problem(value)):
            h.error("value", value, problem, UNSUPPORTED_VALUE)
        elif name.lower() not in seen:
            seen.add(name.lower())
            headers.append(HeaderMatch(type=kind, name=name.lower(), value=value))
    return GRPCRouteMatch(method=method, headers=tuple(headers))
