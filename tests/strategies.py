"""Shared hypothesis strategies: hostnames, paths, header names, HTTPRoute dicts.

The pools are deliberately small (a handful of labels, segments and header names) so that
generated routes overlap and generated requests hit them: precedence only shows up when
several matches compete for one request.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

LABELS = ("a", "b", "api", "x1", "shop")
SEGMENTS = ("a", "b", "ab", "v1", "v2", "x-y", "a.b", "~u")
HEADER_NAMES = ("x-a", "x-b", "version", "x-tenant")
HEADER_VALUES = ("1", "2", "two")
QUERY_NAMES = ("q", "Q", "page")
METHODS = ("GET", "POST", "PUT")
DOMAIN = "example.com"

segments = st.sampled_from(SEGMENTS)
"""One path segment (RFC 3986 unreserved characters only)."""

_free_segment = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@",
    min_size=1, max_size=6,
)


def segment_lists(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(segments, min_size=min_size, max_size=max_size)


@st.composite
def paths(draw: st.DrawFn, *, free: bool = False, allow_empty_segments: bool = False) -> str:
    """An absolute request path: ``/`` plus segments, maybe a trailing ``/``.

    ``free`` draws segments from a wide alphabet instead of the small pool;
    ``allow_empty_segments`` lets ``//`` appear.
    """
    seg: st.SearchStrategy[str] = _free_segment if free else segments
    if allow_empty_segments:
        seg = st.one_of(seg, st.just(""))
    parts: list[str] = draw(st.lists(seg, max_size=5))
    trailing: bool = draw(st.booleans())
    path = "/" + "/".join(parts)
    return path + "/" if parts and trailing else path


queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(st.sampled_from(QUERY_NAMES), st.sampled_from(("1", "2", "a b"))),
             min_size=1, max_size=3).map(
        lambda kv: "&".join(f"{k}={v.replace(' ', '+')}" for k, v in kv)),
)
"""A query string without the ``?`` (maybe empty)."""


@st.composite
def hostnames(draw: st.DrawFn, *, wildcard: bool = True) -> str:
    """A hostname under ``example.com``, sometimes a wildcard."""
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=0, max_size=2))
    if wildcard and draw(st.booleans()):
        return ".".join(["*", *labels, DOMAIN])
    return ".".join([*labels, DOMAIN]) if labels else draw(st.sampled_from(LABELS)) + "." + DOMAIN


@st.composite
def request_hosts(draw: st.DrawFn) -> str:
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3))
    return ".".join([*labels, DOMAIN])


@st.composite
def header_names(draw: st.DrawFn, names: tuple[str, ...] = HEADER_NAMES) -> str:
    """A header name from the pool, in random letter case."""
    name = draw(st.sampled_from(names))
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))


@st.composite
def matches(draw: st.DrawFn) -> dict[str, Any]:
    """One HTTPRouteMatch dict: a path (or the default), headers, query params, method."""
    out: dict[str, Any] = {}
    kind = draw(st.sampled_from(("PathPrefix", "Exact", "default")))
    if kind != "default":
        segs = draw(segment_lists(0, 3))
        value = "/" + "/".join(segs)
        if kind == "PathPrefix" and segs and draw(st.booleans()):
            value += "/"
        out["path"] = {"type": kind, "value": value}
    headers = draw(st.lists(st.tuples(header_names(), st.sampled_from(HEADER_VALUES)),
                            max_size=2, unique_by=lambda t: t[0].lower()))
    if headers:
        out["headers"] = [{"name": n, "value": v} for n, v in headers]
    params = draw(st.lists(st.tuples(st.sampled_from(QUERY_NAMES), st.sampled_from(("1", "2"))),
                           max_size=2, unique_by=lambda t: t[0]))
    if params:
        out["queryParams"] = [{"name": n, "value": v} for n, v in params]
    if draw(st.booleans()) and draw(st.booleans()):
        out["method"] = draw(st.sampled_from(METHODS))
    return out


@st.composite
def http_routes(draw: st.DrawFn, name: str, *, gateway: str = "gw",
                backends: tuple[str, ...] = ("svc", "svc2")) -> dict[str, Any]:
    """An HTTPRoute dict named ``name`` on Gateway ``gateway`` with random hostnames, rules
    and matches; creation timestamps come from a small set so that ties happen."""
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    stamp = draw(st.sampled_from((None, 1, 2)))
    if stamp is not None:
        meta["creationTimestamp"] = f"2026-01-01T00:0{stamp}:00Z"
    spec: dict[str, Any] = {"parentRefs": [{"name": gateway}]}
    hosts = draw(st.lists(hostnames(), max_size=2, unique=True))
    if hosts:
        spec["hostnames"] = hosts
    rules = []
    for _ in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {
            "backendRefs": [{"name": draw(st.sampled_from(backends)), "port": 8080}]}
        ms = draw(st.lists(matches(), max_size=2))
        if ms:
            rule["matches"] = ms
        rules.append(rule)
    spec["rules"] = rules
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": meta, "spec": spec}


@st.composite
def route_sets(draw: st.DrawFn, min_size: int = 2, max_size: int = 6) -> list[dict[str, Any]]:
    """Several HTTPRoutes with distinct names."""
    count = draw(st.integers(min_size, max_size))
    names = draw(st.lists(st.sampled_from([f"r{i}" for i in range(12)]), min_size=count,
                          max_size=count, unique=True))
    return [draw(http_routes(n)) for n in names]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    """(method, url, headers) aimed at the generated routes' hosts."""
    method = draw(st.sampled_from(METHODS))
    host = draw(request_hosts())
    path = draw(paths())
    query = draw(queries)
    headers = dict(draw(st.lists(st.tuples(header_names(), st.sampled_from(HEADER_VALUES)),
                                 max_size=3, unique_by=lambda t: t[0].lower())))
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    return method, url, headers
