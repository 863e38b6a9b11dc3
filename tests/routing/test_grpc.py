"""GRPCRoute routing in the core (SPEC-NOTES §6, checklist 119–125, 136)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshclient import Action
from meshclient.cli import main
from tests.routing.helpers import (
    GW_API,
    Obj,
    backend,
    backend_names,
    condition,
    gateway,
    http_route,
    listener,
    mesh,
    parent,
    rule,
    service,
    service_parent,
    ts,
)

URL = "grpc://pay.example.com"


def grpc_rule(*matches: Obj, backends: list[Obj] | None = None, **extra: Any) -> Obj:
    out: Obj = {"backendRefs": backends if backends is not None else [backend("v1", 9000)]}
    if matches:
        out["matches"] = list(matches)
    out.update(extra)
    return out


def method(service: str | None = None, name: str | None = None, type: str | None = None,
           headers: list[Obj] | None = None) -> Obj:
    m: Obj = {}
    if service is not None:
        m["service"] = service
    if name is not None:
        m["method"] = name
    if type is not None:
        m["type"] = type
    out: Obj = {"method": m}
    if headers is not None:
        out["headers"] = headers
    return out


def route(*rules: Obj, name: str = "g", namespace: str = "default",
          parents: list[Obj] | None = None, hostnames: list[str] | None = None,
          created: str | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    spec: Obj = {"parentRefs": parents or [parent()], "rules": list(rules)}
    spec["hostnames"] = hostnames if hostnames is not None else ["pay.example.com"]
    return {"apiVersion": GW_API, "kind": "GRPCRoute", "metadata": meta, "spec": spec}


def world(*objects: Obj, **options: Any):  # type: ignore[no-untyped-def]
    return mesh(gateway(), *(service(n, ports=(("grpc", 9000),)) for n in ("v1", "v2", "v3")),
                *objects, **options)


class TestMethodMatching:
    def test_grpc_exact_service_and_method_routes_the_call(self) -> None:
        """Exact service+method matches `/svc/method`, case-sensitively (checklist 119)."""
        m = world(route(grpc_rule(method("pay.v1.Payments", "Charge"),
                                  backends=[backend("v2", 9000)])))
        d = m.resolve("POST", f"{URL}/pay.v1.Payments/Charge")
        assert d.action is Action.FORWARD and backend_names(d) == ["v2"]
        assert m.resolve("POST", f"{URL}/pay.v1.Payments/charge").status == 404
        assert m.resolve("POST", f"{URL}/Pay.v1.Payments/Charge").status == 404

    def test_grpc_service_only_and_method_only_match_any_other_part(self) -> None:
        """An omitted service or method matches any (checklist 120, Impl)."""
        m = world(route(grpc_rule(method("pay.v1.Payments"), backends=[backend("v2", 9000)]),
                        grpc_rule(method(name="Health"), backends=[backend("v3", 9000)])))
        assert backend_names(m.resolve("POST", f"{URL}/pay.v1.Payments/Anything")) == ["v2"]
        assert backend_names(m.resolve("POST", f"{URL}/grpc.health.v1.X/Health")) == ["v3"]

    def test_grpc_regular_expression_matches_whole_names(self) -> None:
        """RegularExpression service/method are RE2 full matches (checklist 120)."""
        m = world(route(grpc_rule(method(r"pay\.v[0-9]+\.Payments", "Get.*",
                                         type="RegularExpression"))))
        assert m.resolve("POST", f"{URL}/pay.v2.Payments/GetOrder").action is Action.FORWARD
        assert m.resolve("POST", f"{URL}/xpay.v2.Payments/GetOrder").status == 404
        assert m.resolve("POST", f"{URL}/pay.v2.Payments/ListGet").status == 404

    @pytest.mark.parametrize("bad", ["pay/v1", "1pay", "pay..v1"])
    def test_grpc_invalid_service_name_rejects_the_rule(self, bad: str) -> None:
        """Exact service names are validated (checklist 121)."""
        m = world(route(grpc_rule(method(bad, "Charge"))))
        assert condition(m, "GRPCRoute", "g", "Accepted").status == "False"

    def test_grpc_method_with_neither_part_is_invalid(self) -> None:
        """A method match must set service or method (GR, checklist 121)."""
        m = world(route(grpc_rule({"method": {"type": "Exact"}})))
        assert condition(m, "GRPCRoute", "g", "Accepted").status == "False"

    def test_grpc_unmatched_call_is_unimplemented(self) -> None:
        """No matching rule → 404, reported as gRPC UNIMPLEMENTED (checklist 123)."""
        m = world(route(grpc_rule(method("pay.v1.Payments", "Charge"))))
        d = m.resolve("POST", f"{URL}/other.Service/Method")
        assert d.action is Action.REJECT and d.status == 404
        assert d.to_json()["grpc_status"] == 12


class TestPrecedence:
    def test_grpc_exact_method_beats_service_only(self) -> None:
        """More matched method characters win (checklist 122)."""
        m = world(route(grpc_rule(method("pay.v1.Payments"), backends=[backend("v1", 9000)]),
                        grpc_rule(method("pay.v1.Payments", "Charge"),
                                  backends=[backend("v2", 9000)])))
        assert backend_names(m.resolve("POST", f"{URL}/pay.v1.Payments/Charge")) == ["v2"]

    def test_grpc_service_match_beats_method_only(self) -> None:
        """Matched service characters rank before method characters (checklist 122)."""
        m = world(route(grpc_rule(method(name="Charge"), backends=[backend("v1", 9000)]),
                        grpc_rule(method("pay.v1.Payments"), backends=[backend("v2", 9000)])))
        assert backend_names(m.resolve("POST", f"{URL}/pay.v1.Payments/Charge")) == ["v2"]

    def test_grpc_header_matchers_break_ties(self) -> None:
        """More header matchers win among equal method matches (checklist 122)."""
        m = world(route(
            grpc_rule(method("pay.v1.Payments"), backends=[backend("v1", 9000)]),
            grpc_rule(method("pay.v1.Payments",
                             headers=[{"name": "X-Env", "value": "canary"}]),
                      backends=[backend("v2", 9000)]),
        ))
        call = f"{URL}/pay.v1.Payments/Charge"
        assert backend_names(m.resolve("POST", call, {"x-env": "canary"})) == ["v2"]
        assert backend_names(m.resolve("POST", call)) == ["v1"]

    def test_grpc_older_route_wins_a_tie(self) -> None:
        """Equal matches: the older route, then namespace/name (checklist 122)."""
        newer = route(grpc_rule(method("pay.v1.Payments"), backends=[backend("v1", 9000)]),
                      name="a", created=ts(5))
        older = route(grpc_rule(method("pay.v1.Payments"), backends=[backend("v2", 9000)]),
                      name="b", created=ts(1))
        m = world(newer, older)
        assert backend_names(m.resolve("POST", f"{URL}/pay.v1.Payments/X")) == ["v2"]


class TestBackendsAndFilters:
    def test_grpc_invalid_backend_is_unavailable(self) -> None:
        """A missing backend answers 500, i.e. UNAVAILABLE (checklist 124)."""
        m = world(route(grpc_rule(backends=[backend("missing", 9000)])))
        d = m.resolve("POST", f"{URL}/a.B/C")
        assert d.status == 500 and d.to_json()["grpc_status"] == 14

    def test_grpc_header_modifier_edits_metadata(self) -> None:
        """RequestHeaderModifier applies to call metadata (checklist 125)."""
        f = {"type": "RequestHeaderModifier",
             "requestHeaderModifier": {"set": [{"name": "x-route", "value": "pay"}]}}
        m = world(route(grpc_rule(filters=[f])))
        d = m.resolve("POST", f"{URL}/a.B/C")
        assert ("x-route", "pay") in d.request.headers

    def test_grpc_redirect_filter_is_not_a_grpc_filter(self) -> None:
        """GRPCRoute has no redirect or rewrite filters: such a rule is invalid (checklist 125)."""
        f = {"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}
        m = world(route(grpc_rule(filters=[f])))
        assert condition(m, "GRPCRoute", "g", "Accepted").status == "False"

    def test_grpc_extension_ref_goes_via_gateway(self) -> None:
        """An ExtensionRef filter is never skipped: the call goes through the gateway."""
        f = {"type": "ExtensionRef",
             "extensionRef": {"group": "example.com", "kind": "Auth", "name": "x"}}
        m = world(route(grpc_rule(filters=[f])))
        d = m.resolve("POST", f"{URL}/a.B/C")
        assert d.via.value == "gateway" and d.reasons


class TestKindsOnOneHost:
    def test_grpc_call_falls_back_to_httproutes_without_grpcroutes(self) -> None:
        """A gRPC call to a host with only HTTPRoutes is matched by them (as a POST)."""
        m = world(http_route(hostnames=["pay.example.com"],
                             rules=[rule(backends=[backend("v1", 9000)])]))
        d = m.resolve("POST", f"{URL}/a.B/C")
        assert d.action is Action.FORWARD and backend_names(d) == ["v1"]

    def test_grpc_content_type_marks_a_call_on_an_http_url(self) -> None:
        """``content-type: application/grpc`` makes an http:// request a gRPC call."""
        m = world(route(grpc_rule(method("a.B"))))
        d = m.resolve("POST", "http://pay.example.com/a.B/C",
                      {"content-type": "application/grpc+proto"})
        assert d.action is Action.FORWARD
        assert m.resolve("POST", "http://pay.example.com/a.B/C").status == 404

    def test_grpc_route_outranks_httproute_on_a_service_port(self) -> None:
        """GRPCRoute > HTTPRoute on a Service port; the HTTPRoute is Conflicted (checklist 136)."""
        g = route(grpc_rule(method("a.B"), backends=[backend("v2", 9000)]),
                  parents=[service_parent("v1", port=9000)], hostnames=[])
        h = http_route("h", parents=[service_parent("v1", port=9000)], hostnames=None,
                       rules=[rule(backends=[backend("v3", 9000)])])
        m = world(g, h)
        d = m.resolve("POST", "grpc://v1.default:9000/a.B/C")
        assert backend_names(d) == ["v2"]
        assert condition(m, "HTTPRoute", "h", "Accepted").reason == "Conflicted"

    def test_grpc_route_listener_isolation_by_hostname(self) -> None:
        """GRPCRoute hostnames intersect listener hostnames like HTTPRoute's (§6)."""
        gw = gateway(listeners=[listener(hostname="*.example.com", from_="All")])
        m = mesh(gw, service("v1", ports=(("grpc", 9000),)),
                 route(grpc_rule(), hostnames=["pay.example.org"]))
        assert condition(m, "GRPCRoute", "g", "Accepted").reason == "NoMatchingListenerHostname"


def test_cli_resolve_grpc_url(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`meshclient resolve` takes grpc://host/pkg.Service/Method (DESIGN.md)."""
    docs = [gateway(), service("v1", ports=(("grpc", 9000),)),
            route(grpc_rule(method("pay.v1.Payments", "Charge")))]
    (tmp_path / "m.json").write_text("\n".join(json.dumps(d) for d in docs[:1]))
    for i, d in enumerate(docs[1:]):
        (tmp_path / f"o{i}.json").write_text(json.dumps(d))
    assert main(["resolve", "--config", str(tmp_path), "--json",
                 f"{URL}/pay.v1.Payments/Charge"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["action"] == "forward"
    assert out["request"]["method"] == "POST"
    assert out["route"]["kind"] == "GRPCRoute"
