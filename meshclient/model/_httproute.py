"""HTTPRoute (gateway.networking.k8s.io v1, v1beta1), with the API server's defaults applied.

Validation is split the way status reporting needs it: a problem in the route's own fields
(``hostnames``, ``parentRefs``) rejects the route (``HTTPRoute.errors``); a problem inside one
rule drops only that rule (``HTTPRouteRule.errors``), so the rest keeps serving
(SPEC-NOTES §10.3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import attrs

from meshclient.errors import ConfigError
from meshclient.model._filters import HTTP_FILTER_TYPES, Filter, parse_filters
from meshclient.model._meta import Meta, parse_meta, spec_of
from meshclient.model._names import header_name_problem, hostname_problem
from meshclient.model._reader import INVALID, UNSUPPORTED_VALUE, Reader
from meshclient.model._refs import BackendRef, ParentRef, parse_backend_ref, parse_parent_refs
from meshclient.model._regex import regex_problem
from meshclient.model._traffic import (
    RetryPolicy,
    SessionPersistence,
    Timeouts,
    parse_retry,
    parse_session_persistence,
    parse_timeouts,
)

__all__ = [
    "HTTPBackendRef",
    "HTTPRoute",
    "HTTPRouteMatch",
    "HTTPRouteRule",
    "HeaderMatch",
    "PathMatch",
    "QueryParamMatch",
]

METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# HR CEL on Exact/PathPrefix values: RFC 3986 path characters and %XX escapes only.
_PATH_CHARS: Final = re.compile(r"^(?:[A-Za-z0-9/\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$")


@attrs.frozen(kw_only=True)
class PathMatch:
    type: str = "PathPrefix"  # Exact | PathPrefix | RegularExpression
    value: str = "/"


@attrs.frozen(kw_only=True)
class HeaderMatch:
    type: str = "Exact"  # Exact | RegularExpression
    name: str
    """Lower-cased: header names compare case-insensitively."""
    value: str


@attrs.frozen(kw_only=True)
class QueryParamMatch:
    type: str = "Exact"
    name: str
    """As written: query parameter names compare case-sensitively."""
    value: str


@attrs.frozen(kw_only=True)
class HTTPRouteMatch:
    path: PathMatch = PathMatch()
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[QueryParamMatch, ...] = ()
    method: str | None = None


@attrs.frozen(kw_only=True)
class HTTPBackendRef:
    ref: BackendRef
    filters: tuple[Filter, ...] = ()


@attrs.frozen(kw_only=True)
class HTTPRouteRule:
    index: int
    name: str | None = None
    matches: tuple[HTTPRouteMatch, ...] = (HTTPRouteMatch(),)
    filters: tuple[Filter, ...] = ()
    backend_refs: tuple[HTTPBackendRef, ...] = ()
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    session_persistence: SessionPersistence | None = None
    errors: tuple[ConfigError, ...] = ()
    """Problems that make this rule invalid; the route's other rules still serve."""


@attrs.frozen(kw_only=True)
class HTTPRoute:
    meta: Meta
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = ()
    errors: tuple[ConfigError, ...] = ()
    """Problems that reject the whole route."""

    kind: str = "HTTPRoute"


def parse_http_route(raw: Mapping[str, object], default_namespace: str) -> HTTPRoute:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "HTTPRoute", default_namespace, errors)
    spec = spec_of(raw, "HTTPRoute", meta, errors)
    parents = parse_parent_refs(spec, meta.namespace)
    hostnames = parse_hostnames(spec)
    rules: list[HTTPRouteRule] = []
    total_matches = 0
    if not spec.has("rules"):
        # HR: omitted rules default to one rule matching PathPrefix "/" with no backends.
        rules.append(HTTPRouteRule(index=0))
    names: set[str] = set()
    for index, rule in enumerate(spec.children("rules", max_items=16)):
        parsed = _parse_rule(rule, index, meta.namespace, names)
        total_matches += len(parsed.matches)
        rules.append(parsed)
    if total_matches > 128:
        spec.error("rules", f"<{total_matches} matches>", "may hold at most 128 matches in all",
                   INVALID)
    return HTTPRoute(
        meta=meta, parent_refs=parents, hostnames=hostnames, rules=tuple(rules),
        errors=tuple(errors),
    )


def parse_hostnames(spec: Reader) -> tuple[str, ...]:
    out: list[str] = []
    for index, host in enumerate(spec.strings("hostnames", max_items=16)):
        if problem := hostname_problem(host):
            spec.error(f"hostnames[{index}]", host, problem, INVALID)
            continue
        out.append(host)
    return tuple(out)


def _parse_rule(r: Reader, index: int, ns: str, names: set[str]) -> HTTPRouteRule:
    errors: list[ConfigError] = []
    r = r.with_errors(errors)
    name = r.opt_str("name")
    if name is not None:
        if name in names:
            r.error("name", name, "is already the name of another rule in this route", INVALID)
        names.add(name)
    matches = tuple(_parse_match(m) for m in r.children("matches", max_items=64))
    if r.get("matches") in (None, []):
        # HR: no matches means one PathPrefix "/" match (every request on the hostnames).
        matches = (HTTPRouteMatch(),)
    filters = tuple(parse_filters(r, "filters", ns, allowed=HTTP_FILTER_TYPES))
    backends: list[HTTPBackendRef] = []
    for b in r.children("backendRefs", max_items=16):
        ref = parse_backend_ref(b, ns)
        if ref is None:
            continue
        if ref.is_service and ref.port is None:
            b.missing("port")  # OR CEL: a Service reference must name its port
            continue
        bf = tuple(parse_filters(b, "filters", ns, allowed=HTTP_FILTER_TYPES))
        _check_prefix_rewrites(b, bf, matches)
        backends.append(HTTPBackendRef(ref=ref, filters=bf))
    _check_prefix_rewrites(r, filters, matches)
    if backends and any(f.type == "RequestRedirect" for f in filters):
        r.error("filters", "RequestRedirect", "may not be used in a rule that has backendRefs",
                INVALID)
    timeouts = None
    if (t := r.child("timeouts")) is not None:
        timeouts = parse_timeouts(t)
        if timeouts == Timeouts():
            timeouts = None  # `timeouts: {}` asks for nothing: the same as no stanza
    retry = None
    if (rt := r.child("retry")) is not None:
        retry = parse_retry(rt)
    session = None
    if (sp := r.child("sessionPersistence")) is not None:
        session = parse_session_persistence(sp)
    return HTTPRouteRule(
        index=index, name=name, matches=matches, filters=filters, backend_refs=tuple(backends),
        timeouts=timeouts, retry=retry, session_persistence=session, errors=tuple(errors),
    )


def _check_prefix_rewrites(
    r: Reader, filters: tuple[Filter, ...], matches: tuple[HTTPRouteMatch, ...]
) -> None:
    # HR CEL: ReplacePrefixMatch needs exactly one match, and that match a PathPrefix.
    for f in filters:
        path = getattr(f, "path", None)
        if path is not None and getattr(path, "type", "") == "ReplacePrefixMatch" and (
            len(matches) != 1 or matches[0].path.type != "PathPrefix"
        ):
            r.error("filters", f.type,
                    "uses ReplacePrefixMatch, which needs exactly one PathPrefix match", INVALID)


def _parse_match(m: Reader) -> HTTPRouteMatch:
    path = PathMatch()
    if (p := m.child("path")) is not None:
        kind = p.str("type", "PathPrefix")
        value = p.str("value", "/")
        if kind not in ("Exact", "PathPrefix", "RegularExpression"):
            p.error("type", kind, "is not Exact, PathPrefix or RegularExpression",
                    UNSUPPORTED_VALUE)
        elif kind == "RegularExpression":
            if problem := regex_problem(value):
                p.error("value", value, problem, UNSUPPORTED_VALUE)
        elif problem := path_value_problem(value):
            p.error("value", value, problem, INVALID)
        path = PathMatch(type=kind, value=value)
    headers: list[HeaderMatch] = []
    seen: set[str] = set()
    for h in m.children("headers", max_items=16):
        kind = h.str("type", "Exact")
        name = h.str("name", required=True)
        value = h.str("value", required=True)
        if problem := header_name_problem(name):
            h.error("name", name, problem, INVALID)
            continue
        if kind not in ("Exact", "RegularExpression"):
            h.error("type", kind, "is not Exact or RegularExpression", UNSUPPORTED_VALUE)
            continue
        if kind == "RegularExpression" and (problem := regex_problem(value)):
            h.error("value", value, problem, UNSUPPORTED_VALUE)
            continue
        # HR: a name listed twice (case-insensitively) counts only the first time.
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        headers.append(HeaderMatch(type=kind, name=name.lower(), value=value))
    queries: list[QueryParamMatch] = []
    seen_q: set[str] = set()
    for q in m.children("queryParams", max_items=16):
        kind = q.str("type", "Exact")
        name = q.str("name", required=True)
        value = q.str("value", required=True)
        if kind not in ("Exact", "RegularExpression"):
            q.error("type", kind, "is not Exact or RegularExpression", UNSUPPORTED_VALUE)
            continue
        if kind == "RegularExpression" and (problem := regex_problem(value)):
            q.error("value", value, problem, UNSUPPORTED_VALUE)
            continue
        if not name or name in seen_q:
            continue
        seen_q.add(name)
        queries.append(QueryParamMatch(type=kind, name=name, value=value))
    method = m.opt_str("method")
    if method is not None and method not in METHODS:
        m.error("method", method, "is not an HTTP method Gateway API knows", UNSUPPORTED_VALUE)
    return HTTPRouteMatch(
        path=path, headers=tuple(headers), query_params=tuple(queries), method=method
    )


def path_value_problem(value: str) -> str | None:
    """Why an Exact or PathPrefix value is invalid (HR CEL rules), or None."""
    if not value.startswith("/"):
        return "must start with '/'"
    if len(value) > 1024:
        return "must be at most 1024 characters"
    for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
        if bad in value:
            return f"must not contain {bad!r}"
    if value.endswith(("/.", "/..")):
        return "must not end with '/.' or '/..'"
    if not _PATH_CHARS.match(value):
        return "may only hold RFC 3986 path characters and %XX escapes"
    return None
