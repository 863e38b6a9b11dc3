"""Hypothesis properties of routing: order independence, PathPrefix segments, header-name
case, well-formed rewrites and redirects (SPEC-NOTES §2, §3.3, §3.4)."""

from __future__ import annotations

from random import Random
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshclient import Action, Mesh
from tests.routing.helpers import (
    gateway,
    get,
    header_filter,
    http_route,
    listener,
    match,
    mesh,
    path_modifier,
    redirect,
    rewrite,
    rule,
    service,
)
from tests.strategies import (
    header_names,
    paths,
    queries,
    requests,
    route_sets,
    segment_lists,
    segments,
)

PROPS = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BASE: list[dict[str, Any]] = [gateway(listeners=[listener(from_="All")]), service("svc"),
                              service("svc2")]


def decisions(objects: list[dict[str, Any]],
              reqs: list[tuple[str, str, dict[str, str]]]) -> list[dict[str, Any]]:
    m = Mesh.from_objects(objects)
    return [m.resolve(method, url, headers).to_json() for method, url, headers in reqs]


@PROPS
@given(routes=route_sets(), reqs=st.lists(requests(), min_size=1, max_size=8),
       rng=st.randoms(use_true_random=False))
def test_precedence_ignores_object_order(routes: list[dict[str, Any]],
                                         reqs: list[tuple[str, str, dict[str, str]]],
                                         rng: Random) -> None:
    """The winning rule never depends on the order objects were read (SPEC-NOTES §2.6,
    checklist 40)."""
    objects = [*BASE, *routes]
    shuffled = rng.sample(objects, len(objects))
    assert decisions(objects, reqs) == decisions(shuffled, reqs)


def prefix_mesh(prefix: str) -> Mesh:
    return mesh(*BASE, http_route(rules=[rule(match(prefix))]))


def forwarded(m: Mesh, path: str) -> bool:
    d = get(m, f"http://example.com{path}")
    assert d.action in (Action.FORWARD, Action.REJECT)
    return d.action is Action.FORWARD


@PROPS
@given(segs=segment_lists(1, 4), trailing=st.booleans(), extra=segments)
def test_prefix_matches_itself_and_children_never_longer_segment(
    segs: list[str], trailing: bool, extra: str
) -> None:
    """Prefix ``/a/b`` matches ``/a/b``, ``/a/b/``, ``/a/b/x`` and never ``/a/bx``
    (SPEC-NOTES §2.1, checklist 25)."""
    base = "/" + "/".join(segs)
    m = prefix_mesh(base + ("/" if trailing else ""))
    assert forwarded(m, base)
    assert forwarded(m, base + "/")
    assert forwarded(m, f"{base}/{extra}")
    assert forwarded(m, f"{base}/{extra}/{extra}")
    assert not forwarded(m, base + extra)


@PROPS
@given(prefix=segment_lists(1, 3), path=segment_lists(0, 4), trailing=st.booleans())
def test_prefix_match_is_segment_prefix(prefix: list[str], path: list[str],
                                        trailing: bool) -> None:
    """A PathPrefix matches exactly when its segments begin the path's (SPEC-NOTES §2.1,
    checklist 25)."""
    m = prefix_mesh("/" + "/".join(prefix))
    request = "/" + "/".join(path) + ("/" if trailing and path else "")
    assert forwarded(m, request) is (path[: len(prefix)] == prefix)


@PROPS
@given(matcher=header_names(), sent=header_names(), value=st.sampled_from(("1", "two")),
       sent_value=st.sampled_from(("1", "two")))
def test_header_names_case_insensitive(matcher: str, sent: str, value: str,
                                       sent_value: str) -> None:
    """Header names compare case-insensitively in matchers and requests; values exactly
    (SPEC-NOTES §2.2, checklist 29)."""
    m = mesh(*BASE, http_route(rules=[rule(match(headers={matcher: value}))]))
    d = get(m, "http://example.com/", {sent: sent_value})
    expected = matcher.lower() == sent.lower() and value == sent_value
    assert (d.action is Action.FORWARD) is expected


@PROPS
@given(name=header_names(), sent=header_names(), value=st.sampled_from(("a", "b")))
def test_header_modifier_names_case_insensitive(name: str, sent: str, value: str) -> None:
    """set/remove act on a header whatever the case on either side (SPEC-NOTES §3.2,
    checklist 52)."""
    m = mesh(*BASE, http_route(rules=[rule(filters=[header_filter(set={name: "new"})])]))
    d = get(m, "http://example.com/", {sent: value})
    got = [v for n, v in d.request.headers if n == name.lower()]
    assert "new" in got
    if name.lower() == sent.lower():
        assert got == ["new"]


replacements = st.one_of(st.just(""), st.just("/"),
                         segment_lists(1, 3).map(lambda s: "/" + "/".join(s)),
                         segment_lists(1, 2).map(lambda s: "/" + "/".join(s) + "/"))


def check_path(out: str, request_path: str, query: str) -> None:
    path, sep, got_query = out.partition("?")
    assert path.startswith("/")
    if "//" not in request_path:
        assert "//" not in path
    assert got_query == query
    assert bool(sep) is bool(query)


@PROPS
@given(prefix=segment_lists(0, 2), rest=paths(free=True, allow_empty_segments=True),
       replacement=replacements, query=queries, full=st.booleans())
def test_rewritten_path_is_well_formed(prefix: list[str], rest: str, replacement: str,
                                       query: str, full: bool) -> None:
    """A rewritten path starts with ``/``, gains no ``//`` and keeps the query, for any input
    path (SPEC-NOTES §3.4, checklist 61, 62)."""
    pvalue = "/" + "/".join(prefix)
    request_path = (pvalue.rstrip("/") + rest) or "/"
    modifier = (path_modifier("ReplaceFullPath", replacement or "/") if full
                else path_modifier("ReplacePrefixMatch", replacement))
    m = mesh(*BASE, http_route(rules=[rule(match(pvalue), filters=[rewrite(path=modifier)])]))
    url = f"http://example.com{request_path}" + (f"?{query}" if query else "")
    d = get(m, url)
    assert d.action is Action.FORWARD
    check_path(d.request.path, request_path, query)


@PROPS
@given(prefix=segment_lists(0, 2), rest=paths(free=True, allow_empty_segments=True),
       replacement=st.one_of(st.none(), replacements), query=queries,
       scheme=st.sampled_from((None, "http", "https")),
       port=st.sampled_from((None, 80, 443, 8080)),
       hostname=st.sampled_from((None, "moved.example.org")))
def test_redirect_location_is_absolute_and_well_formed(
    prefix: list[str], rest: str, replacement: str | None, query: str, scheme: str | None,
    port: int | None, hostname: str | None,
) -> None:
    """Location is an absolute URL whose path starts with ``/`` and keeps the query, for any
    input path (SPEC-NOTES §3.3, checklist 55–59)."""
    pvalue = "/" + "/".join(prefix)
    request_path = (pvalue.rstrip("/") + rest) or "/"
    fields: dict[str, Any] = {"scheme": scheme, "port": port, "hostname": hostname}
    if replacement is not None:
        fields["path"] = path_modifier("ReplacePrefixMatch", replacement)
    m = mesh(*BASE, http_route(rules=[rule(match(pvalue), backends=[],
                                           filters=[redirect(**fields)])]))
    url = f"http://example.com{request_path}" + (f"?{query}" if query else "")
    d = get(m, url)
    assert d.action is Action.REDIRECT
    assert d.location is not None
    parts = urlsplit(d.location)
    assert parts.scheme == (scheme or "http")
    assert parts.hostname == (hostname or "example.com")
    want_port = port if port is not None else (
        {"http": 80, "https": 443}[scheme] if scheme else 80)
    assert (parts.port or {"http": 80, "https": 443}[parts.scheme]) == want_port
    assert parts.port is None or parts.port not in (80, 443) or (
        parts.scheme == "http" and parts.port == 443) or (
        parts.scheme == "https" and parts.port == 80)
    tail = d.location[len(f"{parts.scheme}://{parts.netloc}"):]
    check_path(tail, request_path, query)
