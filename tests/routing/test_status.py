"""Status conditions: exact spec reason strings, PartiallyInvalid, last good configuration
(SPEC-NOTES §10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshclient import Action, Mesh
from meshclient.sources import FileSource
from tests.routing.helpers import (
    PEM,
    backend,
    ca_ref,
    config_map,
    gateway,
    get,
    grpc_route,
    header_filter,
    http_route,
    listener,
    listener_set,
    listener_status,
    match,
    mesh,
    mirror,
    parent,
    reason,
    route_condition,
    rule,
    service,
    service_parent,
    status,
    tls_policy,
    ts,
)

ROUTE_REASONS = {
    "Accepted": {"Accepted", "NotAllowedByListeners", "NoMatchingListenerHostname",
                 "NoMatchingParent", "UnsupportedValue", "IncompatibleFilters", "Pending",
                 "Conflicted"},
    "ResolvedRefs": {"ResolvedRefs", "RefNotPermitted", "InvalidKind", "BackendNotFound",
                     "UnsupportedProtocol"},
    "PartiallyInvalid": {"UnsupportedValue", "IncompatibleFilters"},
}
LISTENER_REASONS = {
    "Accepted": {"Accepted", "PortUnavailable", "UnsupportedProtocol", "NoValidCACertificate",
                 "UnsupportedValue", "HostnameConflict", "ProtocolConflict"},
    "Conflicted": {"HostnameConflict", "ProtocolConflict", "NoConflicts"},
    "ResolvedRefs": {"ResolvedRefs", "InvalidCertificateRef", "InvalidRouteKinds",
                     "RefNotPermitted", "InvalidCACertificateRef", "InvalidCACertificateKind"},
}
OBJECT_REASONS = {
    "Gateway": {"Accepted": {"Accepted", "ListenersNotValid", "Invalid", "InvalidParameters",
                             "UnsupportedAddress", "Pending"}},
    "ListenerSet": {"Accepted": {"Accepted", "NotAllowed", "ParentNotAccepted",
                                 "ListenersNotValid", "Invalid"}},
    "BackendTLSPolicy": {"Accepted": {"Accepted", "Conflicted", "Invalid", "TargetNotFound",
                                      "NoValidCACertificate"},
                         "ResolvedRefs": {"ResolvedRefs", "InvalidCACertificateRef",
                                          "InvalidKind"}},
}


def zoo() -> Mesh:
    """A configuration with one of nearly every problem the spec names a reason for."""
    return mesh(
        gateway(listeners=[
            listener("http", hostname="*.example.com"),
            listener("kinds", 8080, kinds=["HTTPRoute", "TCPRoute"]),
            listener("dup", 8081, hostname="d.example.com"),
            listener("dup2", 8081, hostname="d.example.com"),
            listener("odd", 9000, protocol="QUIC"),
        ], allowed_listeners="Same"),
        listener_set("ls", listeners=[listener("x", hostname="a.example.com")]),
        service("svc"), service("other", "elsewhere"), service("mysql", ports=(("db", 8080,
                                                                               "mysql"),)),
        config_map("ca", data={"ca.crt": PEM}),
        tls_policy("good", targets=[("svc", None)], ca_refs=[ca_ref()], created=ts(1)),
        tls_policy("conflict", targets=[("svc", None)], ca_refs=[ca_ref()], created=ts(2)),
        tls_policy("nothing", targets=[("ghost", None)], ca_refs=[ca_ref()]),
        tls_policy("badkind", targets=[("mysql", None)], ca_refs=[ca_ref(kind="Secret")]),
        tls_policy("wk", targets=[("other", None)], well_known="Nope"),
        http_route("ok", hostnames=["a.example.com"]),
        http_route("not-allowed", "team", parents=[parent("gw", "default")]),
        http_route("no-host", hostnames=["a.example.org"], parents=[parent(section="http")]),
        http_route("no-parent", parents=[parent(section="zzz")]),
        http_route("bad-value", rules=[rule(match("/", "Glob"))]),
        http_route("partial", hostnames=["p.example.com"],
                   rules=[rule(match("/ok")), rule(match("/x", method="FETCH"))]),
        http_route("not-found", hostnames=["nf.example.com"],
                   rules=[rule(backends=[backend("ghost")])]),
        http_route("kind", hostnames=["k.example.com"],
                   rules=[rule(backends=[backend("b", kind="Bucket", group="x.io")])]),
        http_route("perm", hostnames=["perm.example.com"],
                   rules=[rule(backends=[backend("other", namespace="elsewhere")])]),
        http_route("proto", hostnames=["proto.example.com"],
                   rules=[rule(backends=[backend("mysql")])]),
        http_route("mirror", hostnames=["m.example.com"], rules=[rule(filters=[
            mirror("ghost")])]),
        http_route("mesh", parents=[service_parent("svc")], hostnames=None),
        http_route("mesh-lost", parents=[service_parent("svc")], hostnames=None),
        grpc_route("g-mesh", parents=[service_parent("svc", port=8080)], hostnames=None),
    )


class TestReasonStrings:
    def test_route_conditions_use_spec_reason_strings(self) -> None:
        """Every route condition uses a reason string the spec defines (SPEC-NOTES §10.1,
        checklist 162)."""
        seen: set[tuple[str, str, str]] = set()
        for s in zoo().statuses():
            if s.kind != "HTTPRoute":
                continue
            for c in s.conditions:
                assert c.reason in ROUTE_REASONS[c.type], (s.name, c)
                seen.add((c.type, c.status, c.reason))
        # The zoo reaches every route reason it was built for.
        for expected in [("Accepted", "True", "Accepted"),
                         ("Accepted", "False", "NotAllowedByListeners"),
                         ("Accepted", "False", "NoMatchingListenerHostname"),
                         ("Accepted", "False", "NoMatchingParent"),
                         ("Accepted", "False", "UnsupportedValue"),
                         ("Accepted", "False", "Conflicted"),
                         ("ResolvedRefs", "True", "ResolvedRefs"),
                         ("ResolvedRefs", "False", "BackendNotFound"),
                         ("ResolvedRefs", "False", "InvalidKind"),
                         ("ResolvedRefs", "False", "RefNotPermitted"),
                         ("ResolvedRefs", "False", "UnsupportedProtocol"),
                         ("PartiallyInvalid", "True", "UnsupportedValue")]:
            assert expected in seen, expected

    def test_listener_conditions_use_spec_reason_strings(self) -> None:
        """Listener conditions use the spec's listener reasons (SPEC-NOTES §10.2,
        checklist 162)."""
        for s in zoo().statuses():
            if s.parent is None or not s.parent.startswith("listener "):
                continue
            for c in s.conditions:
                assert c.reason in LISTENER_REASONS[c.type], (s.kind, s.name, s.parent, c)

    def test_object_conditions_use_spec_reason_strings(self) -> None:
        """Gateway, ListenerSet and BackendTLSPolicy conditions use the spec's reasons
        (SPEC-NOTES §10.2, checklist 162)."""
        checked = set()
        for s in zoo().statuses():
            if s.kind not in OBJECT_REASONS or (s.parent or "").startswith("listener "):
                continue
            for c in s.conditions:
                assert c.reason in OBJECT_REASONS[s.kind][c.type], (s.kind, s.name, c)
                checked.add(s.kind)
        assert checked == set(OBJECT_REASONS)

    def test_accepted_route_reports_accepted_and_resolved_refs(self) -> None:
        """A good route: Accepted=True ``Accepted``, ResolvedRefs=True ``ResolvedRefs``
        (SPEC-NOTES §10.1, checklist 162)."""
        m = zoo()
        assert reason(m, "ok") == ("True", "Accepted")
        assert reason(m, "ok", "ResolvedRefs") == ("True", "ResolvedRefs")

    def test_listener_conflict_accepted_false_with_conflict_reason(self) -> None:
        """A conflicted listener is Accepted=False with the conflict's reason (SPEC-NOTES §1.2,
        CT:listenerset-hostname-conflict, checklist 13, 162)."""
        m = zoo()
        for name in ("dup", "dup2"):
            st = listener_status(m, "gw", name)
            accepted = st.condition("Accepted")
            assert accepted is not None
            assert (accepted.status, accepted.reason) == ("False", "HostnameConflict")

    def test_identical_catch_all_listeners_are_a_hostname_conflict(self) -> None:
        """Two hostname-less HTTP listeners on one port clash on hostname (checklist 13)."""
        m = mesh(gateway(listeners=[listener("a"), listener("b")]))
        c = listener_status(m, "gw", "a").condition("Conflicted")
        assert c is not None
        assert (c.status, c.reason) == ("True", "HostnameConflict")

    def test_gateway_with_invalid_listener_reports_listeners_not_valid(self) -> None:
        """A Gateway with an invalid listener says ListenersNotValid; still Accepted while
        some listener is valid (SPEC-NOTES §10.2, checklist 162)."""
        m = zoo()
        acc = status(m, "Gateway", "gw", parent=None).condition("Accepted")
        assert acc is not None
        assert (acc.status, acc.reason) == ("True", "ListenersNotValid")

    def test_gateway_with_no_valid_listener_not_accepted(self) -> None:
        """No valid listener → Gateway Accepted=False ListenersNotValid (SPEC-NOTES §10.2)."""
        m = mesh(gateway(listeners=[listener(protocol="QUIC")]))
        acc = status(m, "Gateway", "gw", parent=None).condition("Accepted")
        assert acc is not None
        assert (acc.status, acc.reason) == ("False", "ListenersNotValid")

    def test_gateway_all_listeners_valid_accepted(self) -> None:
        """All listeners valid → Accepted=True ``Accepted`` (SPEC-NOTES §10.2)."""
        acc = status(mesh(gateway()), "Gateway", "gw", parent=None).condition("Accepted")
        assert acc is not None
        assert (acc.status, acc.reason) == ("True", "Accepted")


class TestPartiallyInvalid:
    def test_partially_invalid_only_true_with_dropped_rule_message(self) -> None:
        """PartiallyInvalid is only ever True, says ``Dropped Rule``, names the rule
        (SPEC-NOTES §10.1, checklist 163)."""
        c = route_condition(zoo(), "partial", "PartiallyInvalid")
        assert (c.status, c.reason) == ("True", "UnsupportedValue")
        assert c.message.startswith("Dropped Rule")
        assert "1" in c.message
        assert "FETCH" in c.message

    @pytest.mark.parametrize("name", ["ok", "bad-value", "not-found"])
    def test_partially_invalid_absent_when_fully_valid_or_invalid(self, name: str) -> None:
        """Never set when the route is fully valid or fully invalid (SPEC-NOTES §10.1,
        checklist 163)."""
        assert status(zoo(), "HTTPRoute", name).condition("PartiallyInvalid") is None

    def test_no_condition_is_ever_partially_invalid_false(self) -> None:
        """PartiallyInvalid=False is never written (SPEC-NOTES §10.1, checklist 163)."""
        for s in zoo().statuses():
            for c in s.conditions:
                assert not (c.type == "PartiallyInvalid" and c.status != "True")

    def test_rejected_flag_follows_conditions(self) -> None:
        """``rejected`` marks statuses a controller would flag (``validate`` exit status)."""
        m = zoo()
        assert not status(m, "HTTPRoute", "ok").rejected
        assert status(m, "HTTPRoute", "partial").rejected
        assert status(m, "HTTPRoute", "not-found").rejected


class TestLastGood:
    def write_route(self, path: Path, rules: str) -> None:
        path.write_text(f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: internal
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: default}}
spec: {{clusterIP: 10.96.9.9, ports: [{{name: http, port: 8080}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [example.com]
  rules:
{rules}
""")

    def source(self, path: Path) -> tuple[Mesh, FileSource]:
        m = Mesh()
        src = FileSource((str(path),), store=m.store, on_change=lambda _: m.refresh())
        src.load()
        return m, src

    def test_bad_reload_keeps_last_good_snapshot(self, tmp_path: Path) -> None:
        """A reload that cannot be read keeps serving the last good objects (SPEC-NOTES §10.3,
        DESIGN.md, checklist 164)."""
        path = tmp_path / "all.yaml"
        self.write_route(path, "  - backendRefs: [{name: svc, port: 8080}]")
        m, src = self.source(path)
        assert get(m, "http://example.com/").action is Action.FORWARD
        path.write_text("kind: [unclosed\n  - : : :\n" + "x" * 50)
        src.reload()
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert [b.name for b in d.backends] == ["svc"]

    def test_reload_with_invalid_rule_drops_only_that_rule(self, tmp_path: Path) -> None:
        """A reload bringing one invalid rule drops that rule and keeps the rest (SPEC-NOTES
        §10.3, checklist 164)."""
        path = tmp_path / "all.yaml"
        self.write_route(path, "  - backendRefs: [{name: svc, port: 8080}]")
        m, src = self.source(path)
        self.write_route(path, """\
  - matches: [{path: {type: PathPrefix, value: /good}}]
    backendRefs: [{name: svc, port: 8080}]
  - matches: [{path: {type: Glob, value: /bad}}]
    backendRefs: [{name: svc, port: 8080}]""")
        src.reload()
        assert get(m, "http://example.com/good").action is Action.FORWARD
        d = get(m, "http://example.com/bad")
        assert (d.action, d.status) == (Action.REJECT, 404)
        assert reason(m, "r", "PartiallyInvalid")[0] == "True"

    def test_invalid_route_does_not_disturb_other_routes(self) -> None:
        """One broken route never takes down what already works (DESIGN.md, checklist 164)."""
        m = mesh(gateway(), service(),
                 http_route("good", hostnames=["good.example.com"]),
                 http_route("broken", hostnames=["Bad_Host"]),
                 http_route("weird", hostnames=["w.example.com"],
                            rules=[rule(filters=[header_filter(set={"a": "1"},
                                                               add={"A": "2"})])]))
        assert get(m, "http://good.example.com/").action is Action.FORWARD
        assert route_condition(m, "broken").status == "False"


