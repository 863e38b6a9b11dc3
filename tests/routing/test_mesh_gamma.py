"""GAMMA: routes with a Service parent, producer and consumer routes, Service addressing
(SPEC-NOTES §7)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient import Action, Decision, Mesh
from tests.routing.helpers import (
    backend,
    extension_ref,
    get,
    grpc_route,
    header_filter,
    http_route,
    match,
    mesh,
    parent,
    path_modifier,
    reason,
    redirect,
    rule,
    service,
    service_parent,
)

PROD = "prod"


def svc_objects() -> list[dict[str, Any]]:
    return [
        service("api", PROD, ports=(("http", 8080), ("admin", 9090)), cluster_ip="10.96.50.1"),
        service("api-v2", PROD), service("api-canary", PROD),
        service("local", "client"),
    ]


def mesh_route(name: str, ns: str = PROD, *, to: str = "api-v2", svc: str = "api",
               svc_ns: str | None = None, port: int | None = None, section: str | None = None,
               hostnames: list[str] | None = None, rules: list[dict[str, Any]] | None = None,
               ) -> dict[str, Any]:
    return http_route(name, ns, parents=[service_parent(svc, svc_ns, port=port,
                                                        section=section)],
                      hostnames=hostnames,
                      rules=rules if rules is not None else [
                          rule(backends=[backend(to, namespace=svc_ns or ns)
                                         if svc_ns and ns != svc_ns else backend(to)])])


def client(*routes: dict[str, Any], ns: str | None = "client", **options: Any) -> Mesh:
    return mesh(*svc_objects(), *routes, namespace=ns, **options)


def route_of(d: Decision) -> str | None:
    return d.route.name if d.route is not None else None


class TestBinding:
    def test_service_parent_needs_empty_group(self) -> None:
        """A Service parent needs ``group: ""``; without it the ref means a Gateway and no
        Service route exists (SPEC-NOTES §7.1, checklist 126)."""
        wrong = http_route("wrong", PROD, parents=[parent("api", kind="Service")],
                           hostnames=None)
        m = client(wrong)
        d = get(m, "http://api.prod:8080/")
        assert route_of(d) is None
        assert [b.name for b in d.backends] == ["api"]

    def test_service_parent_with_empty_group_attaches(self) -> None:
        """``{group: "", kind: Service}`` attaches to the Service frontend (checklist 126)."""
        m = client(mesh_route("r"))
        d = get(m, "http://api.prod:8080/")
        assert route_of(d) == "r"
        assert [b.name for b in d.backends] == ["api-v2"]
        assert reason(m, "r", namespace=PROD) == ("True", "Accepted")
        assert d.parent is not None
        assert (d.parent.kind, d.parent.namespace, d.parent.name) == ("Service", PROD, "api")

    def test_headless_service_parent_rejected(self) -> None:
        """Headless Services have no frontend to route (SPEC-NOTES §7.1, checklist 126)."""
        m = mesh(service("hl", PROD, headless=True), service("api-v2", PROD),
                 mesh_route("r", svc="hl"))
        assert reason(m, "r", namespace=PROD) == ("False", "NoMatchingParent")

    def test_external_name_service_parent_rejected(self) -> None:
        """ExternalName Services are not parents (SPEC-NOTES §7.1, checklist 126)."""
        m = mesh(service("ext", PROD, type="ExternalName", external_name="x.example.org"),
                 service("api-v2", PROD), mesh_route("r", svc="ext"))
        assert reason(m, "r", namespace=PROD)[0] == "False"

    def test_missing_service_parent_no_matching_parent(self) -> None:
        """A parent Service that does not exist → NoMatchingParent (SPEC-NOTES §1.3)."""
        m = client(mesh_route("r", svc="ghost"))
        assert reason(m, "r", namespace=PROD) == ("False", "NoMatchingParent")

    def test_parent_port_scopes_route_to_that_port(self) -> None:
        """parentRef ``port`` applies the route to that Service port only (SPEC-NOTES §7.1,
        CT-mesh:mesh-ports, checklist 127)."""
        m = client(mesh_route("r", port=8080))
        assert route_of(get(m, "http://api.prod:8080/")) == "r"
        d = get(m, "http://api.prod:9090/")
        assert route_of(d) is None
        assert [(b.name, b.port) for b in d.backends] == [("api", 9090)]

    def test_parent_section_name_is_service_port_name(self) -> None:
        """sectionName names the Service port (SPEC-NOTES §7.1, checklist 127)."""
        m = client(mesh_route("r", section="admin"))
        assert route_of(get(m, "http://api.prod:9090/")) == "r"
        assert route_of(get(m, "http://api.prod:8080/")) is None

    def test_parent_port_not_on_service_no_matching_parent(self) -> None:
        """A port the Service lacks → NoMatchingParent (SPEC-NOTES §1.3, checklist 127)."""
        m = client(mesh_route("r", port=7777))
        assert reason(m, "r", namespace=PROD) == ("False", "NoMatchingParent")

    def test_pod_ip_request_bypasses_service_routes(self) -> None:
        """Requests straight to a pod IP are untouched (CT-mesh:mesh-frontend, checklist 128)."""
        from tests.routing.helpers import endpoint_slice

        m = client(mesh_route("r"), endpoint_slice("api", PROD, addresses=["10.1.0.7"]))
        assert get(m, "http://10.1.0.7:8080/").action is Action.PASSTHROUGH
        assert route_of(get(m, "http://10.96.50.1:8080/")) == "r"

    def test_service_chosen_by_destination_not_host_header(self) -> None:
        """The URL authority picks the Service; a Host header does not (CT-mesh:
        mesh-frontend-hostname, checklist 129)."""
        m = client(mesh_route("r"))
        d = get(m, "http://api.prod:8080/", {"Host": "local.client"})
        assert route_of(d) == "r"
        d = get(m, "http://local.client:8080/", {"Host": "api.prod"})
        assert route_of(d) is None
        assert [b.name for b in d.backends] == ["local"]


class TestProducerConsumer:
    def test_producer_route_applies_to_every_namespace(self) -> None:
        """A route in the Service's namespace applies to all clients (G1294, checklist 130)."""
        for ns in ("client", PROD, "elsewhere", None):
            m = client(mesh_route("producer"), ns=ns)
            assert route_of(get(m, "http://api.prod:8080/")) == "producer", ns

    def test_consumer_route_applies_only_to_its_namespace(self) -> None:
        """A route in another namespace applies only to clients there (CT-mesh:
        mesh-consumer-route, checklist 131)."""
        consumer = mesh_route("consumer", "client", svc_ns=PROD)
        assert route_of(get(client(consumer, ns="client"), "http://api.prod:8080/")) == (
            "consumer")
        assert route_of(get(client(consumer, ns="other"), "http://api.prod:8080/")) is None
        assert route_of(get(client(consumer, ns=PROD), "http://api.prod:8080/")) is None

    def test_consumer_routes_shadow_producer_routes(self) -> None:
        """A client with its own consumer routes ignores the producer's (G1686,
        checklist 132)."""
        consumer = mesh_route("consumer", "client", svc_ns=PROD,
                              rules=[rule(match("/only"),
                                          backends=[backend("api-canary", namespace=PROD)])])
        producer = mesh_route("producer")
        m = client(consumer, producer, ns="client")
        assert route_of(get(m, "http://api.prod:8080/only")) == "consumer"
        d = get(m, "http://api.prod:8080/other")
        assert (d.action, d.status) == (Action.REJECT, 404)
        m = client(consumer, producer, ns="other")
        assert route_of(get(m, "http://api.prod:8080/other")) == "producer"

    def test_consumer_priority_per_service_port(self) -> None:
        """Consumer priority is decided per (Service, port) (SPEC-NOTES §11.15 reading,
        checklist 132)."""
        consumer = mesh_route("consumer", "client", svc_ns=PROD, port=9090)
        producer = mesh_route("producer")
        m = client(consumer, producer, ns="client")
        assert route_of(get(m, "http://api.prod:9090/")) == "consumer"
        assert route_of(get(m, "http://api.prod:8080/")) == "producer"

    def test_third_namespace_routes_never_apply(self) -> None:
        """A route in a third namespace never affects other clients (G1294, checklist 133)."""
        third = mesh_route("third", "third", svc_ns=PROD)
        m = client(third, mesh_route("producer"), ns="client")
        assert route_of(get(m, "http://api.prod:8080/")) == "producer"

    def test_consumer_cross_namespace_backend_needs_no_grant(self) -> None:
        """Mesh routes need no ReferenceGrant for cross-namespace backends (SPEC-NOTES §7.4)."""
        consumer = mesh_route("consumer", "client", svc_ns=PROD)
        d = get(client(consumer, ns="client"), "http://api.prod:8080/")
        assert d.action is Action.FORWARD
        assert [(b.namespace, b.name) for b in d.backends] == [(PROD, "api-v2")]


class TestRouting:
    def test_no_routes_forwards_to_service_itself(self) -> None:
        """A Service without routes is forwarded as if no mesh config existed (D-mesh,
        checklist 134)."""
        d = get(client(), "http://api.prod:8080/x")
        assert d.action is Action.FORWARD
        assert route_of(d) is None
        assert [(b.namespace, b.name, b.port) for b in d.backends] == [(PROD, "api", 8080)]

    def test_routes_but_no_match_is_404(self) -> None:
        """Routes exist but none matches → 404 (SPEC-NOTES §7.2, checklist 134)."""
        m = client(mesh_route("r", rules=[rule(match("/a"), backends=[backend("api-v2")])]))
        d = get(m, "http://api.prod:8080/b")
        assert (d.action, d.status) == (Action.REJECT, 404)

    def test_route_hostnames_ignored_in_mesh(self) -> None:
        """Route hostnames are ignored for Service parents (G1294, checklist 135)."""
        m = client(mesh_route("r", hostnames=["unrelated.example.com"]))
        assert route_of(get(m, "http://api.prod:8080/")) == "r"

    def test_grpc_route_beats_http_route_on_service_port(self) -> None:
        """GRPCRoute > HTTPRoute on one Service port; the HTTPRoute is Conflicted (G1294,
        SPEC-NOTES §7.3, checklist 136)."""
        g = grpc_route("g", PROD, parents=[service_parent("api", port=8080)], hostnames=None)
        m = client(g, mesh_route("h", port=8080))
        assert reason(m, "h", namespace=PROD) == ("False", "Conflicted")
        assert route_of(get(m, "http://api.prod:8080/")) != "h"

    def test_grpc_route_conflict_only_on_its_port(self) -> None:
        """The conflict is per Service port; other ports keep the HTTPRoute (checklist 136)."""
        g = grpc_route("g", PROD, parents=[service_parent("api", port=8080)], hostnames=None)
        m = client(g, mesh_route("h"))
        assert reason(m, "h", namespace=PROD) == ("True", "Accepted")
        assert route_of(get(m, "http://api.prod:9090/")) == "h"
        assert route_of(get(m, "http://api.prod:8080/")) != "h"

    def test_rule_without_backends_is_500_no_implicit_parent(self) -> None:
        """A mesh rule without backendRefs → 500, never the parent Service (G1294 reading,
        checklist 137)."""
        m = client(mesh_route("r", rules=[{"matches": [match("/")]}]))
        d = get(m, "http://api.prod:8080/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert d.backends == ()

    def test_unsupported_filter_in_mesh_route_rejected_with_reason(self) -> None:
        """A mesh route meshclient cannot honour has no gateway to fall back to: rejected
        with the reason, never served with the filter dropped (issue: Routing)."""
        m = client(mesh_route("r", rules=[rule(filters=[extension_ref()],
                                               backends=[backend("api-v2")])]))
        d = get(m, "http://api.prod:8080/")
        assert d.action is Action.REJECT
        assert d.status == 500
        assert any("ExtensionRef" in r for r in d.reasons)

    def test_mesh_filters_apply(self) -> None:
        """Filters on a mesh route apply as on a Gateway (SPEC-NOTES §7)."""
        m = client(mesh_route("r", rules=[rule(filters=[header_filter(set={"x-m": "1"})],
                                               backends=[backend("api-v2")])]))
        d = get(m, "http://api.prod:8080/")
        assert ("x-m", "1") in d.request.headers

    def test_mesh_redirect_uses_service_port(self) -> None:
        """A mesh redirect's default port is the Service port the client used
        (CT-mesh:httproute-redirect-port, SPEC-NOTES §7.4)."""
        m = client(mesh_route("r", rules=[rule(backends=[], filters=[redirect(
            path=path_modifier("ReplaceFullPath", "/moved"))])]))
        assert get(m, "http://api.prod:8080/x").location == "http://api.prod:8080/moved"


class TestSeparation:
    def test_gateway_routes_never_apply_to_service_traffic(self) -> None:
        """Gateway-bound routes never merge with a Service's routes (SPEC-NOTES §7.2)."""
        from tests.routing.helpers import gateway

        gw_route = http_route("gw-route", PROD, hostnames=["api.prod"],
                              rules=[rule(match("/gw"), backends=[backend("api-canary")])])
        m = mesh(gateway(namespace=PROD), *svc_objects(), gw_route,
                 mesh_route("svc-route", rules=[rule(match("/svc"),
                                                     backends=[backend("api-v2")])]))
        d = get(m, "http://api.prod:8080/gw")
        assert (d.action, d.status) == (Action.REJECT, 404)
        assert route_of(get(m, "http://api.prod:8080/svc")) == "svc-route"

    def test_route_with_gateway_and_service_parents_serves_both(self) -> None:
        """One route may name a Gateway and a Service; each parent gets its own status
        (SPEC-NOTES §1.3, §7.1)."""
        from tests.routing.helpers import gateway

        both = http_route("both", PROD, parents=[parent("gw"), service_parent("api")],
                          hostnames=["web.example.com"],
                          rules=[rule(backends=[backend("api-v2")])])
        m = mesh(gateway(namespace=PROD), *svc_objects(), both)
        assert route_of(get(m, "http://web.example.com/")) == "both"
        assert route_of(get(m, "http://api.prod:8080/")) == "both"
        assert reason(m, "both", namespace=PROD, parent="Gateway prod/gw") == (
            "True", "Accepted")
        assert reason(m, "both", namespace=PROD, parent="Service prod/api") == (
            "True", "Accepted")

    def test_node_port_service_parent_allowed(self) -> None:
        """NodePort Services have a frontend and MAY be parents (G1294, SPEC-NOTES §7.1)."""
        m = mesh(service("np", PROD, type="NodePort"), service("api-v2", PROD),
                 mesh_route("r", svc="np"))
        assert route_of(get(m, "http://np.prod:8080/")) == "r"


class TestAddressing:
    @pytest.mark.parametrize("host", ["api.prod", "api.prod.svc", "api.prod.svc.cluster.local",
                                      "10.96.50.1", "API.Prod"])
    def test_service_host_forms(self, host: str) -> None:
        """``name.ns``, ``name.ns.svc``, the cluster domain form and the cluster IP all name
        the Service (SPEC-NOTES §7.1)."""
        assert route_of(get(client(mesh_route("r")), f"http://{host}:8080/")) == "r"

    def test_short_name_relative_to_client_namespace(self) -> None:
        """A bare name resolves in the client's own namespace (G1294, checklist 138)."""
        in_prod = client(mesh_route("r"), ns=PROD)
        assert route_of(get(in_prod, "http://api:8080/")) == "r"
        elsewhere = client(mesh_route("r"), ns="client")
        assert get(elsewhere, "http://api:8080/").action is Action.PASSTHROUGH
        d = get(elsewhere, "http://local:8080/")
        assert [b.name for b in d.backends] == ["local"]

    def test_custom_cluster_domain(self) -> None:
        """The cluster domain is configurable (SPEC-NOTES §7.1)."""
        m = client(mesh_route("r"), cluster_domain="corp.internal")
        assert route_of(get(m, "http://api.prod.svc.corp.internal:8080/")) == "r"
        assert get(m, "http://api.prod.svc.cluster.local:8080/").action is Action.PASSTHROUGH

    def test_unknown_service_port_passes_through(self) -> None:
        """A port the Service does not expose is not a Service frontend (SPEC-NOTES §7.2)."""
        assert get(client(mesh_route("r")), "http://api.prod:1234/").action is (
            Action.PASSTHROUGH)
