"""Mesh: files in, decisions out, reloads that never lose what works."""

from __future__ import annotations

import pathlib
import threading
import time

import pytest

import meshclient
from meshclient import Action, Mesh

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: internal, namespace: infra}
spec:
  gatewayClassName: internal
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.internal.example.com"
    allowedRoutes: {namespaces: {from: All}}
"""

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{name: internal, namespace: infra}]
  hostnames: [reviews.internal.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: %s}}]
    backendRefs: [{name: reviews, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 10.96.0.7
  ports: [{name: http, port: 8080}]
"""


def _write(path: pathlib.Path, text: str) -> None:
    # Write then rename, as editors and kubelet do, so a reader never sees half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


@pytest.fixture
def config(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "gateway.yaml").write_text(GATEWAY)
    (tmp_path / "route.yaml").write_text(ROUTE % "/v1")
    return tmp_path


def test_mesh_from_files_resolves_a_route(config: pathlib.Path) -> None:
    """A mesh built from a directory routes a matching request to the rule's backend."""
    with Mesh.from_files(config, watch=False) as mesh:
        d = mesh.resolve("GET", "http://reviews.internal.example.com/v1/x")
        assert d.action is Action.FORWARD
        assert [(b.namespace, b.name, b.port) for b in d.backends] == [("shop", "reviews", 8080)]
        assert mesh.resolve("GET", "http://reviews.internal.example.com/v2").status == 404
        assert mesh.resolve("GET", "http://example.org/").action is Action.PASSTHROUGH


def test_mesh_reload_changed_file_updates_decisions(config: pathlib.Path) -> None:
    """A watched file that changes is reloaded and the next request sees the new route."""
    changed = threading.Event()
    with Mesh.from_files(config, watch=True) as mesh:
        before = mesh.table.version
        mesh.subscribe(lambda table, snapshot: changed.set())
        _write(config / "route.yaml", ROUTE % "/v2")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and mesh.table.version == before:
            changed.wait(0.2)
        assert mesh.table.version != before, "the watcher never reloaded the changed file"
        assert mesh.resolve("GET", "http://reviews.internal.example.com/v2/x").action is (
            Action.FORWARD
        )
        assert mesh.resolve("GET", "http://reviews.internal.example.com/v1/x").status == 404


def test_mesh_broken_file_keeps_last_good_route(config: pathlib.Path) -> None:
    """A file that stops parsing keeps serving its last good objects, and says why."""
    with Mesh.from_files(config, watch=False) as mesh:
        source = mesh._sources[0]
        (config / "route.yaml").write_text("kind: HTTPRoute\n  spec: [unclosed\n")
        source.reload()
        d = mesh.resolve("GET", "http://reviews.internal.example.com/v1/x")
        assert d.action is Action.FORWARD
        assert any("route.yaml" in str(p) for p in mesh.problems)


def test_mesh_invalid_rule_drops_only_that_rule() -> None:
    """A rule with an invalid value is dropped while the route's other rules serve."""
    mesh = Mesh.from_objects([
        *(_gateway_objects()),
        {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "shop"},
            "spec": {
                "parentRefs": [{"name": "internal", "namespace": "infra"}],
                "hostnames": ["reviews.internal.example.com"],
                "rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/bad//path"}}],
                     "backendRefs": [{"name": "reviews", "port": 8080}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/good"}}],
                     "backendRefs": [{"name": "reviews", "port": 8080}]},
                ],
            },
        },
    ])
    assert mesh.resolve("GET", "http://reviews.internal.example.com/good").action is (
        Action.FORWARD
    )
    status = next(s for s in mesh.statuses() if s.kind == "HTTPRoute")
    partially = status.condition("PartiallyInvalid")
    assert partially is not None and partially.status == "True"
    assert "spec.rules[0].matches[0].path.value" in partially.message


def test_mesh_gateways_argument_rejects_bad_form() -> None:
    """A Gateway selection that is not namespace/name fails with a message naming it."""
    with pytest.raises(ValueError, match="'infra' is not 'namespace/name'"):
        Mesh(gateways=["infra"])


def test_mesh_resolve_rejects_relative_url() -> None:
    """resolve() needs an absolute URL and says so, naming the URL."""
    with pytest.raises(ValueError, match="'/just/a/path'"):
        Mesh().resolve("GET", "/just/a/path")


def test_mesh_gateway_selection_limits_claimed_hosts() -> None:
    """Only the selected Gateways' hostnames are the mesh's; others pass through."""
    objs = _gateway_objects()
    mesh = Mesh.from_objects(objs, gateways=["other/gw"])
    assert mesh.resolve("GET", "http://reviews.internal.example.com/").action is (
        Action.PASSTHROUGH
    )
    mesh = Mesh.from_objects(objs, gateway_classes=["internal"])
    assert mesh.resolve("GET", "http://reviews.internal.example.com/").status == 404


def test_top_level_exports_are_sorted_and_importable() -> None:
    """meshclient.__all__ is sorted and every name in it exists."""
    assert list(meshclient.__all__) == sorted(meshclient.__all__)
    for name in meshclient.__all__:
        assert hasattr(meshclient, name), name


def _gateway_objects() -> list[dict[str, object]]:
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "internal", "namespace": "infra"},
            "spec": {"gatewayClassName": "internal", "listeners": [{
                "name": "http", "port": 80, "protocol": "HTTP",
                "hostname": "*.internal.example.com",
                "allowedRoutes": {"namespaces": {"from": "All"}}}]},
        },
        {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "reviews", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "http", "port": 8080}]},
        },
    ]
