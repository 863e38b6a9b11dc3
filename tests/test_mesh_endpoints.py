"""The mesh's balancer follows endpoint changes Service by Service, never drifting from a
rebuild of every set."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient import Mesh
from meshclient.balancing import Balancer
from meshclient.model import EndpointSlice, Service, parse_object

NAMES = ("a", "b", "c", "d")


def _service(name: str, ports: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": f"10.96.0.{NAMES.index(name) + 1}",
                     "ports": [{"name": f"p{i}", "port": 8080 + i} for i in range(ports)]}}


def _slice(service: str, index: int, addresses: list[str], name: str | None = None
           ) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service}-{index}", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a]} for a in addresses],
            "ports": [{"name": "p0", "port": 9000}, {"name": "p1", "port": 9001}]}


def _sets(balancer: Balancer) -> dict[tuple[str, str, int | None], list[str]]:
    out = {}
    for name in NAMES:
        for port in (8080, 8081, None):
            stats = balancer.endpoint_statistics("default", name, port)
            if balancer.set_statistics("default", name, port) is not None:
                out[("default", name, port)] = [str(s) for s in stats]
    return out


changes = st.lists(st.one_of(
    st.tuples(st.just("slice"), st.sampled_from(NAMES), st.integers(0, 1),
              st.lists(st.integers(1, 9), max_size=3, unique=True)),
    st.tuples(st.just("drop-slice"), st.sampled_from(NAMES), st.integers(0, 1), st.just([])),
    st.tuples(st.just("service"), st.sampled_from(NAMES), st.integers(0, 2), st.just([])),
    st.tuples(st.just("drop-service"), st.sampled_from(NAMES), st.just(0), st.just([])),
    # One slice whose Service label moves from Service to Service.
    st.tuples(st.just("move"), st.sampled_from(NAMES), st.integers(0, 1),
              st.lists(st.integers(1, 9), min_size=1, max_size=2, unique=True)),
    st.tuples(st.just("replace-all"), st.just("a"), st.just(0), st.just([])),
), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(steps=changes, refreshes=st.lists(st.booleans(), min_size=8, max_size=8))
def test_mesh_endpoint_updates_match_a_full_rebuild(steps: list[tuple[str, str, int, list[int]]],
                                                    refreshes: list[bool]) -> None:
    """After any sequence of Service/EndpointSlice changes the balancer's sets equal a
    balancer built from scratch on the same snapshot."""
    objs = [_service(n, 1) for n in NAMES[:3]] + [_slice("a", 0, ["10.0.0.1"])]
    mesh = Mesh.from_objects(objs)
    balancer = mesh.balancer(rand=random.Random(1).random)
    for (kind, name, index, addrs), refresh in zip(steps, refreshes, strict=False):
        if kind == "move":
            obj = parse_object(_slice(name, index, [f"10.1.0.{a}" for a in addrs], "moving"))[0]
            assert obj is not None
            mesh.store.upsert(obj)
        elif kind == "replace-all":
            # A whole-set replace (a relist): the store cannot say which keys changed.
            mesh.store.replace([o for o in mesh.snapshot.all()
                                if not (isinstance(o, EndpointSlice) and o.meta.name == "a-0")])
        elif kind == "slice":
            obj = parse_object(_slice(name, index, [f"10.0.{index}.{a}" for a in addrs]))[0]
            assert obj is not None
            mesh.store.upsert(obj)
        elif kind == "drop-slice":
            mesh.store.delete("EndpointSlice", "default", f"{name}-{index}")
        elif kind == "service":
            obj = parse_object(_service(name, index + 1))[0]
            assert obj is not None
            mesh.store.upsert(obj)
        else:
            mesh.store.delete("Service", "default", name)
        if not refresh and (kind, name, index, addrs) != steps[-1]:
            continue  # several changes land before the next refresh
        mesh.refresh()
        fresh = Balancer(rand=random.Random(1).random, config=balancer.config)
        snap = mesh.snapshot
        fresh.update((s for s in snap.of("Service").values() if isinstance(s, Service)),
                     (e for e in snap.of("EndpointSlice").values()
                      if isinstance(e, EndpointSlice)))
        assert _sets(balancer) == _sets(fresh)


def test_live_endpoints_lists_every_address_and_port() -> None:
    """The (address, port) pairs adapters keep connections to; others are closed."""
    from meshclient.balancing import live_endpoints

    mesh = Mesh.from_objects([_slice("a", 0, ["10.0.0.1", "10.0.0.2"]), _slice("b", 1, [])])
    assert live_endpoints(mesh.snapshot) == {(a, p) for a in ("10.0.0.1", "10.0.0.2")
                                             for p in (9000, 9001)}
