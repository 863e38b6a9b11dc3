"""Mesh channel routing: GRPCRoute matches, weights, call shapes, answers, passthrough."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.adapters.grpc_client.conftest import (
    SERVICE,
    Client,
    Server,
    grpc_route,
    mesh_of,
    rule,
    service,
)
from tests.routing import helpers as h

Make = Callable[..., Client]


def two_versions(servers: Callable[..., Server], *routes: Any) -> tuple[Server, Server, Any]:
    v1, v2 = servers("v1"), servers("v2")
    m = mesh_of(service("pay", []), service("pay-v1", [v1]), service("pay-v2", [v2]), *routes)
    return v1, v2, m


class TestMatching:
    def test_method_match_routes_to_its_backend(self, client: Make, servers: Any) -> None:
        """An Exact service+method match sends that method to its backend, the rest to the
        catch-all rule (SPEC-NOTES §6)."""
        _v1, _v2, m = two_versions(servers, grpc_route(
            rule(("pay-v2", 9000), method="Other"), rule(("pay-v1", 9000))))
        c = client(m)
        assert c.unary("Other") == b"v2:hi"
        assert c.unary("Unary") == b"v1:hi"

    def test_header_match_routes_by_call_metadata(self, client: Make, servers: Any) -> None:
        """A header match reads the call's metadata at call time (GR headers, Exact)."""
        _v1, _v2, m = two_versions(servers, grpc_route(
            rule(("pay-v2", 9000), headers={"x-version": "2"}), rule(("pay-v1", 9000))))
        c = client(m)
        assert c.unary(metadata=(("x-version", "2"),)) == b"v2:hi"
        assert c.unary(metadata=(("x-version", "1"),)) == b"v1:hi"
        assert c.unary() == b"v1:hi"

    def test_unmatched_method_answers_unimplemented(self, client: Make, servers: Any) -> None:
        """A call no rule matches fails with UNIMPLEMENTED and is not sent
        (CT:grpcroute-exact-method-matching)."""
        v1, _v2, m = two_versions(servers, grpc_route(rule(("pay-v1", 9000), method="Other")))
        c = client(m)
        with pytest.raises(grpc.RpcError) as info:
            c.unary("Unary")
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert "meshclient" in (info.value.details() or "")
        assert v1.hits == 0

    def test_invalid_backend_answers_unavailable(self, client: Make, servers: Any) -> None:
        """A backendRef to a missing Service fails with UNAVAILABLE, its reason in the
        details (GR: invalid backend → UNAVAILABLE)."""
        _v1, _v2, m = two_versions(servers, grpc_route(rule(("missing", 9000))))
        c = client(m)
        with pytest.raises(grpc.RpcError) as info:
            c.unary()
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert info.value.details()

    def test_weights_split_calls_in_proportion(self, client: Make, servers: Any) -> None:
        """Weights 3:1 split 400 calls about 3:1 (SH weights; bounds hold for any seed at
        over 6 standard deviations)."""
        _v1, _v2, m = two_versions(servers, grpc_route(
            rule(("pay-v1", 9000, 3), ("pay-v2", 9000, 1))))
        c = client(m)
        got = Counter(c.unary().split(b":")[0] for _ in range(400))
        assert 250 <= got[b"v1"] <= 350, got

    def test_request_header_modifier_edits_metadata(self, client: Make, servers: Any) -> None:
        """A RequestHeaderModifier sets and removes metadata before the call is sent
        (CT:grpcroute-request-header-modifier)."""
        edit = h.header_filter(set={"x-env": "canary"}, remove=["x-drop"])
        v1, _v2, m = two_versions(servers, grpc_route(
            rule(("pay-v1", 9000), filters=[edit])))
        c = client(m)
        c.unary(metadata=(("x-drop", "1"), ("x-keep", "2")))
        seen = v1.calls[-1].metadata
        assert seen.get("x-env") == "canary"
        assert "x-drop" not in seen
        assert seen.get("x-keep") == "2"


class TestShapes:
    def test_all_four_shapes_reach_the_routed_backend(self, client: Make,
                                                      servers: Any) -> None:
        """Unary, server-, client- and bidirectional streaming calls all go to the rule's
        backend (issue 7)."""
        v1, _v2, m = two_versions(servers, grpc_route(rule(("pay-v2", 9000))))
        c = client(m)
        assert c.unary() == b"v2:hi"
        assert c.server_stream() == [b"v2:0", b"v2:1", b"v2:2"]
        assert c.client_stream([b"a", b"b"]) == b"v2:a+b"
        assert c.bidi([b"a", b"b"]) == [b"v2:a", b"v2:b"]
        assert v1.hits == 0

    def test_sync_with_call_and_future_return_grpc_objects(self, servers: Any) -> None:
        """``with_call`` returns (response, call) and ``future`` a grpc.Future, as on a plain
        channel (grpc.UnaryUnaryMultiCallable)."""
        from meshclient_grpc import mesh_channel

        _v1, _v2, m = two_versions(servers, grpc_route(rule(("pay-v1", 9000))))
        with mesh_channel(m, "grpc://pay.shop:9000") as ch:
            mc = ch.unary_unary(f"/{SERVICE}/Unary")
            response, call = mc.with_call(b"w", timeout=5)
            assert response == b"v1:w"
            assert call.code() is grpc.StatusCode.OK
            fut = mc.future(b"f", timeout=5)
            assert isinstance(fut, grpc.Future)
            assert fut.result(timeout=5) == b"v1:f"
            assert fut.code() is grpc.StatusCode.OK

    def test_sync_answer_is_a_call_and_a_done_future(self, servers: Any) -> None:
        """A call the mesh answers raises an RpcError that is also a grpc.Call, and
        ``future`` returns it done (grpc.RpcError contract)."""
        from meshclient_grpc import mesh_channel

        _v1, _v2, m = two_versions(servers, grpc_route(rule(("pay-v1", 9000), method="Other")))
        with mesh_channel(m, "grpc://pay.shop:9000") as ch:
            fut = ch.unary_unary(f"/{SERVICE}/Unary").future(b"x", timeout=5)
            assert fut.done()
            error = fut.exception()
            assert isinstance(error, grpc.Call)
            assert error.code() is grpc.StatusCode.UNIMPLEMENTED
            with pytest.raises(grpc.RpcError):
                list(ch.unary_stream(f"/{SERVICE}/ServerStream")(b"x", timeout=5))

    def test_generated_style_registered_method_is_accepted(self, servers: Any) -> None:
        """Stubs generated by grpcio-tools pass ``_registered_method=True``; the channel takes
        it (ECOSYSTEM.md §2.1)."""
        from meshclient_grpc import mesh_channel

        _v1, _v2, m = two_versions(servers, grpc_route(rule(("pay-v1", 9000))))
        with mesh_channel(m, "grpc://pay.shop:9000") as ch:
            mc = ch.unary_unary(f"/{SERVICE}/Unary", _registered_method=True)
            assert mc(b"r", timeout=5) == b"v1:r"
            intercepted = grpc.intercept_channel(ch)
            assert intercepted.unary_unary(f"/{SERVICE}/Unary")(b"i", timeout=5) == b"v1:i"

    def test_compression_option_passes_through(self, client: Make, servers: Any) -> None:
        """A call with ``compression`` still reaches its backend (the option is handed to
        the endpoint channel)."""
        _v1, _v2, m = two_versions(servers, grpc_route(rule(("pay-v1", 9000))))
        c = client(m)
        mc = c.channel.unary_unary(f"/{SERVICE}/Unary")
        if c.kind == "sync":
            assert mc(b"z", timeout=5, compression=grpc.Compression.Gzip) == b"v1:z"
        else:
            async def go() -> bytes:
                return await mc(b"z", timeout=5, compression=grpc.Compression.Gzip)  # type: ignore[no-any-return]
            assert c._run(go()) == b"v1:z"


class TestOutsideTheMesh:
    def test_non_mesh_target_passes_through(self, client: Make, servers: Any) -> None:
        """A target no Service or listener claims goes to a plain channel to the target
        itself (DESIGN.md passthrough)."""
        plain = servers("plain")
        m = mesh_of(service("pay", []))
        c = client(m, f"{plain.host}:{plain.port}")
        assert c.unary() == b"plain:hi"

    def test_strict_mode_refuses_non_mesh_target(self, client: Make, servers: Any) -> None:
        """In strict mode a non-mesh target fails with FAILED_PRECONDITION, nothing sent."""
        plain = servers("plain")
        m = mesh_of(service("pay", []))
        c = client(m, f"{plain.host}:{plain.port}", strict=True)
        with pytest.raises(grpc.RpcError) as info:
            c.unary()
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert plain.hits == 0

    def test_service_without_routes_balances_over_its_endpoints(self, client: Make,
                                                                servers: Any) -> None:
        """A Service without routes is still the mesh's: calls go to its endpoints
        (SPEC-NOTES §7.2 step 4)."""
        a, b = servers("a"), servers("b")
        m = mesh_of(service("pay", [a, b]))
        c = client(m)
        got = {c.unary().split(b":")[0] for _ in range(20)}
        assert got == {b"a", b"b"}

    def test_via_gateway_sends_to_gateway_address(self, client: Make, servers: Any) -> None:
        """A rule meshclient cannot carry out (ExtensionRef) goes to the Gateway's address
        with the original authority (SPEC-NOTES §3.8, DESIGN.md via gateway)."""
        gw, v1 = servers("gateway"), servers("v1")
        route = {"apiVersion": h.GW_API, "kind": "GRPCRoute",
                 "metadata": {"name": "pay", "namespace": "default"},
                 "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["pay.example.com"],
                          "rules": [rule(("pay-v1", 9000),
                                         filters=[h.extension_ref()])]}}
        m = mesh_of(h.gateway(listeners=[h.listener("grpc", gw.port, "HTTP")],
                              addresses=[gw.host]),
                    service("pay-v1", [v1], namespace="default"), route)
        c = client(m, f"grpc://pay.example.com:{gw.port}")
        assert c.unary() == b"gateway:hi"
        assert v1.hits == 0


class TestMirrors:
    def test_request_mirror_sends_a_copy_and_ignores_it(self, client: Make,
                                                        servers: Any) -> None:
        """A RequestMirror filter sends each unary call to the mirror too; the caller gets
        the primary's answer even when the mirror fails (GR RequestMirror)."""
        import time

        primary, shadow = servers("primary"), servers("shadow")
        shadow.fail = grpc.StatusCode.INTERNAL
        m = mesh_of(service("pay", []), service("pay-v1", [primary]),
                    service("shadow", [shadow]),
                    grpc_route(rule(("pay-v1", 9000), filters=[h.mirror("shadow", 9000)])))
        c = client(m)
        assert [c.unary(metadata=(("x-id", str(i)),)) for i in range(5)] == [b"primary:hi"] * 5
        deadline = time.monotonic() + 5
        while shadow.hits < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert shadow.hits == 5
        assert {s.metadata["x-id"] for s in shadow.calls} == {"0", "1", "2", "3", "4"}
        while m.balancer(rand=None).statistics().in_flight and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.02)
        assert m.balancer(rand=None).statistics().in_flight == 0  # type: ignore[arg-type]

    def test_via_gateway_without_address_dials_the_target(self, client: Make,
                                                          servers: Any) -> None:
        """Without a Gateway address a via-gateway call goes to the target as dialled, with
        its own authority (DESIGN.md via gateway fallback)."""
        from concurrent import futures

        gw = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        gw.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(lambda r, c: b"by-name:" + r)}),))
        port = gw.add_insecure_port("127.0.0.1:0")
        gw.start()
        try:
            v1 = servers("v1")
            route = {"apiVersion": h.GW_API, "kind": "GRPCRoute",
                     "metadata": {"name": "pay", "namespace": "default"},
                     "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["localhost"],
                              "rules": [rule(("pay-v1", 9000),
                                             filters=[h.extension_ref()])]}}
            m = mesh_of(h.gateway(listeners=[h.listener("grpc", port, "HTTP")]),
                        service("pay-v1", [v1], namespace="default"), route)
            c = client(m, f"grpc://localhost:{port}")
            assert c.channel.describe(f"/{SERVICE}/Unary")["via"] == "gateway"
            assert c.unary() == b"by-name:hi"
            assert v1.hits == 0
        finally:
            gw.stop(None).wait(5)


RESPONSE_FILTER = {"type": "ResponseHeaderModifier",
                   "responseHeaderModifier": {"set": [{"name": "x-by", "value": "mesh"}]}}


class TestResponseHeaderModifier:
    """The channel cannot edit response metadata, so it never pretends to (DESIGN.md)."""

    def test_response_modifier_on_gateway_route_goes_via_gateway(self, client: Make,
                                                                 servers: Any) -> None:
        """A Gateway route that edits response metadata is sent to the real gateway."""
        gw, v1 = servers("gateway"), servers("v1")
        route = {"apiVersion": h.GW_API, "kind": "GRPCRoute",
                 "metadata": {"name": "pay", "namespace": "default"},
                 "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["pay.example.com"],
                          "rules": [rule(("pay-v1", 9000), filters=[RESPONSE_FILTER])]}}
        m = mesh_of(h.gateway(listeners=[h.listener("grpc", gw.port, "HTTP")],
                              addresses=[gw.host]),
                    service("pay-v1", [v1], namespace="default"), route)
        c = client(m, f"grpc://pay.example.com:{gw.port}")
        assert c.unary() == b"gateway:hi"
        assert v1.hits == 0

    def test_response_modifier_on_service_route_is_refused(self, client: Make,
                                                           servers: Any) -> None:
        """A Service-parent route with a ResponseHeaderModifier has no gateway: refused."""
        v1 = servers("v1")
        m = mesh_of(service("pay", []), service("pay-v1", [v1]),
                    grpc_route(rule(("pay-v1", 9000), filters=[RESPONSE_FILTER])))
        c = client(m)
        with pytest.raises(grpc.RpcError) as err:
            c.unary()
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "ResponseHeaderModifier" in (err.value.details() or "")
        assert v1.hits == 0
