"""Recompiling with the previous table gives the same table as compiling from scratch."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshclient.model import parse_object
from meshclient.routing import RequestHead, RoutingOptions, RoutingTable, compile_table
from meshclient.store import Store
from tests.routing.helpers import backend as h_backend
from tests.routing.helpers import (
    gateway,
    grant,
    grpc_route,
    http_route,
    listener,
    parent,
    rule,
    service,
    service_parent,
    ts,
)
from tests.routing.helpers import match as h_match
from tests.strategies import hostnames, http_routes, requests, route_sets

BASE = [gateway(), service("svc"), service("svc2")]


def _fingerprint(table: RoutingTable, reqs: list[tuple[str, str, dict[str, str]]]) -> Any:
    decisions = [
        json.dumps(table.decide(RequestHead.from_url(m, u, h)).to_json(), sort_keys=True)
        for m, u, h in reqs
    ]
    statuses = sorted(json.dumps(s.to_json(), sort_keys=True) for s in table.statuses)
    return decisions, statuses


def _parsed(objs: list[dict[str, Any]]) -> list[Any]:
    return [o for o in (parse_object(d)[0] for d in objs) if o is not None]


mutations = st.one_of(
    st.tuples(st.just("route"), st.sampled_from([f"r{i}" for i in range(12)])),
    st.tuples(st.just("delete"), st.integers(0, 5)),
    st.tuples(st.just("service"), st.sampled_from(["svc", "svc2", "svc3"])),
    st.tuples(st.just("grant"), st.just("default")),
    st.tuples(st.just("drop-service"), st.sampled_from(["svc", "svc2"])),
    st.tuples(st.just("gateway"), st.sampled_from([None, "*.example.com", "a.example.com"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routes=route_sets(), steps=st.lists(mutations, min_size=1, max_size=4),
       reqs=st.lists(requests(), min_size=4, max_size=12), data=st.data())
def test_compile_with_previous_equals_compile_from_scratch(
    routes: list[dict[str, Any]], steps: list[tuple[str, Any]],
    reqs: list[tuple[str, str, dict[str, str]]], data: st.DataObject,
) -> None:
    """Reusing compiled rules never changes a decision or a status (DESIGN: one snapshot)."""
    store = Store()
    store.replace(_parsed(BASE + routes))
    table = compile_table(store.snapshot)
    for kind, arg in steps:
        if kind == "route":
            obj = parse_object(data.draw(http_routes(arg)))[0]
            assert obj is not None
            store.upsert(obj)
        elif kind == "delete":
            names = sorted(store.snapshot.of("HTTPRoute"))
            if names:
                ns, name = names[arg % len(names)]
                store.delete("HTTPRoute", ns, name)
        elif kind == "service":
            obj = parse_object(service(arg))[0]
            assert obj is not None
            store.upsert(obj)
        elif kind == "drop-service":
            store.delete("Service", "default", arg)
        elif kind == "gateway":
            obj = parse_object(gateway(listeners=[listener(hostname=arg)]))[0]
            assert obj is not None
            store.upsert(obj)
        else:
            obj = parse_object(grant(arg))[0]
            assert obj is not None
            store.upsert(obj)
        table = compile_table(store.snapshot, previous=table)
        fresh = compile_table(store.snapshot)
        assert _fingerprint(table, reqs) == _fingerprint(fresh, reqs)


def test_compile_with_previous_reuses_unchanged_rule_targets() -> None:
    """An unchanged route's compiled rules are the very objects of the previous table."""
    store = Store()
    objs = [*BASE,
            *(json.loads(json.dumps(r)) for r in _two_routes())]
    store.replace(_parsed(objs))
    first = compile_table(store.snapshot)
    changed = _two_routes()[1]
    changed["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "/b2"}}]
    obj = parse_object(changed)[0]
    assert obj is not None
    store.upsert(obj)
    second = compile_table(store.snapshot, previous=first)
    a = second.decide(RequestHead.from_url("GET", "http://a.example.com/a"))
    old = first.decide(RequestHead.from_url("GET", "http://a.example.com/a"))
    assert a.plan is old.plan
    b = second.decide(RequestHead.from_url("GET", "http://b.example.com/b2"))
    assert b.route is not None and b.route.name == "b"


def _two_routes() -> list[dict[str, Any]]:
    def route(name: str, host: str, path: str) -> dict[str, Any]:
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [host],
                         "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                                    "backendRefs": [{"name": "svc", "port": 8080}]}]}}
    return [route("a", "a.example.com", "/a"), route("b", "b.example.com", "/b")]


# Two Gateways contest hostnames on port 80 (the older claims them); one also listens on 8080.
CONTESTED = [
    gateway("gw", created=ts(1), addresses=["10.0.0.1"], listeners=[
        listener("http"), listener("wild", hostname="*.example.com"),
        listener("a", hostname="a.example.com"), listener("alt", port=8080)]),
    gateway("gw2", created=ts(2), listeners=[
        listener("http"), listener("b", hostname="*.b.example.com")]),
    service("svc"), service("svc2"),
]
GRPC_ROUTES = [
    grpc_route("g-old", created="2025-01-01T00:00:00Z", hostnames=["a.example.com"],
               parents=[parent("gw", section="a")]),
    grpc_route("g-new", created=ts(30), hostnames=["*.example.com"],
               parents=[parent("gw", section="wild")]),
    grpc_route("g-mesh", hostnames=None, parents=[service_parent("svc2", port=8080)]),
]
PARENTS = [[parent("gw")], [parent("gw2")], [parent("gw", section="wild")],
           [parent("gw", section="alt")], [parent("gw"), parent("gw2")],
           [parent("gw", section="a"), parent("gw2", section="b")],
           [service_parent("svc", port=8080)], [service_parent("svc2")],
           [service_parent("svc", "default"), parent("gw", "default")], [parent("missing")],
           [parent("gw", section="nosuch")]]


@st.composite
def contested_routes(draw: st.DrawFn, name: str) -> dict[str, Any]:
    route = draw(http_routes(name))
    route["spec"]["parentRefs"] = draw(st.sampled_from(PARENTS))
    hosts = draw(st.lists(hostnames(), max_size=2, unique=True))
    if hosts:
        route["spec"]["hostnames"] = hosts
    else:
        route["spec"].pop("hostnames", None)
    if draw(st.integers(0, 5)) == 0:
        # An invalid rule: dropped (PartiallyInvalid), or the whole route when it is the only one.
        route["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "x"}}]
    if draw(st.booleans()):
        # Another namespace: a consumer route for Service parents (G1686), and Gateway
        # parents without a namespace are not found.
        route["metadata"]["namespace"] = "other"
        for rule in route["spec"]["rules"]:
            for ref in rule.get("backendRefs", ()):
                ref["namespace"] = "default"
    return route


@st.composite
def contested_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    method, url, headers = draw(requests())
    host_end = url.index("/", len("http://"))
    url = {0: url, 1: url[:host_end] + ":8080" + url[host_end:],
           2: "http://10.0.0.1" + url[host_end:],
           # GAMMA: the Services by name (their routes apply, whatever the hostnames).
           3: "http://svc.default.svc.cluster.local:8080" + url[host_end:],
           4: "http://svc2.default:8080" + url[host_end:],
           5: url[:host_end].replace("http://", "grpc://") + "/pkg.Svc/Call",
           6: "grpc://svc2.default:8080/pkg.Svc/Call"}[draw(st.integers(0, 6))]
    return method, url, headers


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), reqs=st.lists(contested_requests(), min_size=6, max_size=16))
def test_patching_route_changes_equals_compile_from_scratch(
    data: st.DataObject, reqs: list[tuple[str, str, dict[str, str]]],
) -> None:
    """Route-only changes patch the previous table; decisions and statuses stay exact."""
    names = [f"r{i}" for i in range(8)]
    # The client's namespace decides whether consumer routes shadow producer ones.
    options = RoutingOptions(namespace=data.draw(st.sampled_from([None, "default", "other"])))
    store = Store()
    initial = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=6))
    # GRPCRoutes, unchanged throughout: an older one holds a.example.com on listener "a"
    # (HTTPRoutes there lose it), a newer one loses *.example.com to older HTTPRoutes (then
    # the patch must give way), one outranks HTTPRoutes on svc2's port.
    grpc = data.draw(st.sampled_from([[], GRPC_ROUTES]))
    store.replace(_parsed(CONTESTED + grpc + [data.draw(contested_routes(n)) for n in initial]))
    table = compile_table(store.snapshot, options)
    for _ in range(data.draw(st.integers(1, 5))):
        if data.draw(st.booleans()) or not store.snapshot.of("HTTPRoute"):
            obj = parse_object(data.draw(contested_routes(data.draw(st.sampled_from(names)))))[0]
            assert obj is not None
            store.upsert(obj)
        else:
            ns, name = data.draw(st.sampled_from(sorted(store.snapshot.of("HTTPRoute"))))
            store.delete("HTTPRoute", ns, name)
        table = compile_table(store.snapshot, options, previous=table)
        assert _fingerprint(table, reqs) == _fingerprint(
            compile_table(store.snapshot, options), reqs)


def test_route_change_patches_only_what_it_touches() -> None:
    """A route change on port 80 leaves port 8080's claims the very same object."""
    store = Store()
    on_http = [parent("gw", section="http")]
    store.replace(_parsed([*CONTESTED, http_route("a", parents=on_http, rules=[rule(backends=[])]),
                           http_route("b", parents=[parent("gw", section="alt")])]))
    first = compile_table(store.snapshot)
    obj = parse_object(http_route("a", parents=on_http, hostnames=["c.example.org"]))[0]
    assert obj is not None
    store.upsert(obj)
    second = compile_table(store.snapshot, previous=first)
    assert second.claims[("HTTP", 8080)] is first.claims[("HTTP", 8080)]
    assert second.claims[("HTTP", 80)] is not first.claims[("HTTP", 80)]
    decision = second.decide(RequestHead.from_url("GET", "http://c.example.org/"))
    assert decision.route is not None and decision.route.name == "a"
    assert first.decide(RequestHead.from_url("GET", "http://c.example.org/")).route is None


def test_service_parent_route_change_patches_and_takes_effect() -> None:
    """A GAMMA route change is patched too: the Service answers with the new rule at once,
    and nothing of the Gateways' claims is rebuilt."""
    store = Store()
    mesh_route = http_route("m", parents=[service_parent("svc", port=8080)], hostnames=None,
                            rules=[rule(h_match("/old"), backends=[h_backend("svc2")])])
    store.replace(_parsed([*CONTESTED, mesh_route]))
    first = compile_table(store.snapshot)
    url = "http://svc.default.svc.cluster.local:8080/new"
    assert first.decide(RequestHead.from_url("GET", url)).action.value == "reject"  # 404
    obj = parse_object(http_route("m", parents=[service_parent("svc", port=8080)],
                                  hostnames=None,
                                  rules=[rule(h_match("/new"), backends=[h_backend("svc2")])]))[0]
    assert obj is not None
    store.upsert(obj)
    second = compile_table(store.snapshot, previous=first)
    assert all(second.claims[k] is first.claims[k] for k in first.claims)
    decision = second.decide(RequestHead.from_url("GET", url))
    assert decision.route is not None and decision.route.name == "m"
    assert [b.name for b in decision.backends] == ["svc2"]
    # The previous table still answers as it did: a request holding it sees one snapshot.
    assert first.decide(RequestHead.from_url("GET", url)).action.value == "reject"


def test_route_change_beside_grpc_routes_patches() -> None:
    """GRPCRoutes elsewhere do not stop a patch; one taking hostnames from them does."""
    store = Store()
    on_http = [parent("gw", section="http")]
    store.replace(_parsed([*CONTESTED, *GRPC_ROUTES, http_route("a", parents=on_http)]))
    first = compile_table(store.snapshot)
    obj = parse_object(http_route("a", parents=on_http, hostnames=["c.example.org"]))[0]
    assert obj is not None
    store.upsert(obj)
    second = compile_table(store.snapshot, previous=first)
    assert second.claims[("HTTP", 8080)] is first.claims[("HTTP", 8080)]  # patched
    grpc_call = RequestHead.from_url("POST", "grpc://a.example.com/pkg.Svc/Call")
    assert second.decide(grpc_call).to_json() == first.decide(grpc_call).to_json()
    # An older HTTPRoute on the wildcard listener takes *.example.com from g-new.
    wild = [parent("gw", section="wild")]
    obj = parse_object(http_route("b", parents=wild, hostnames=["*.example.com"],
                                  created=ts(1)))[0]
    assert obj is not None
    store.upsert(obj)
    third = compile_table(store.snapshot, previous=second)
    assert third.claims[("HTTP", 8080)] is not second.claims[("HTTP", 8080)]  # compiled
    assert _fingerprint(third, []) == _fingerprint(compile_table(store.snapshot), [])
