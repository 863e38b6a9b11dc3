"""Recompiling with the previous table gives the same table as compiling from scratch."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshclient.model import parse_object
from meshclient.routing import RequestHead, RoutingTable, compile_table
from meshclient.store import Store
from tests.routing.helpers import gateway, grant, listener, service
from tests.strategies import http_routes, requests, route_sets

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
