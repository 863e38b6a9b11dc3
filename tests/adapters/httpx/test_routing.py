"""MeshTransport end to end on loopback: matching, weights, filters, answers, passthrough."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from meshclient_httpx import AsyncMeshTransport, MeshTransport, RequestRecord
from tests.adapters.httpx.conftest import (
    HOST,
    Backend,
    Client,
    Reply,
    gateway,
    mesh_of,
    route,
    service,
)
from tests.routing import helpers as h

Make = Callable[..., Backend]
MakeClient = Callable[..., Client]


def test_transport_path_and_header_matches_reach_their_backends(
    backends: Make, client: MakeClient
) -> None:
    """Path and header matches pick the rule, and each rule's backend gets the request."""
    v1, v2, other = backends("v1"), backends("v2"), backends("other")
    mesh = mesh_of(gateway(), service("v1", [v1]), service("v2", [v2]),
                   service("other", [other]),
                   route(h.rule(h.match("/api", headers={"x-tester": "yes"}),
                                backends=[h.backend("v2")]),
                         h.rule(h.match("/api"), backends=[h.backend("v1")]),
                         h.rule(backends=[h.backend("other")])))
    c = client(mesh)
    assert c.get(f"http://{HOST}/api/x").text == "v1"
    assert c.get(f"http://{HOST}/api/x", headers={"x-tester": "yes"}).text == "v2"
    assert c.get(f"http://{HOST}/elsewhere").text == "other"
    assert v1.requests[0].headers["host"] == HOST
    assert v1.requests[0].path == "/api/x"


def test_transport_weighted_split_within_tolerance(backends: Make, client: MakeClient) -> None:
    """A 3:1 weighted split sends about 75 % to the heavier backend (SPEC-NOTES §4.2)."""
    heavy, light = backends("heavy"), backends("light")
    mesh = mesh_of(gateway(), service("heavy", [heavy]), service("light", [light]),
                   route(h.rule(backends=[h.backend("heavy", weight=3),
                                          h.backend("light", weight=1)])))
    c = client(mesh, rand=random.Random(7).random)
    n = 400
    for _ in range(n):
        c.get(f"http://{HOST}/")
    # Binomial(400, 0.75): sd ≈ 8.7; ±4.5 sd keeps this deterministic in practice.
    assert abs(heavy.hits - 300) <= 40, (heavy.hits, light.hits)
    assert heavy.hits + light.hits == n


def test_transport_redirect_answered_here_with_location(backends: Make,
                                                         client: MakeClient) -> None:
    """A RequestRedirect rule is answered by the transport with its status and Location."""
    target = backends("target")
    mesh = mesh_of(gateway(), service("target", [target]),
                   route(h.rule(h.match("/old", "Exact"),
                                filters=[h.redirect(path=h.path_modifier("ReplaceFullPath",
                                                                         "/new"),
                                                    status=301)], backends=[]),
                         h.rule(backends=[h.backend("target")])))
    c = client(mesh)
    r = c.get(f"http://{HOST}/old")
    assert r.status_code == 301
    assert r.headers["location"] == f"http://{HOST}/new"
    assert target.hits == 0


def test_transport_redirect_followed_by_httpx(backends: Make, client: MakeClient) -> None:
    """httpx follows a redirect made by the transport back through the mesh."""
    target = backends("target")
    mesh = mesh_of(gateway(), service("target", [target]),
                   route(h.rule(h.match("/old", "Exact"),
                                filters=[h.redirect(path=h.path_modifier("ReplaceFullPath",
                                                                         "/new"))],
                                backends=[]),
                         h.rule(backends=[h.backend("target")])))
    c = client(mesh, follow_redirects=True)
    r = c.get(f"http://{HOST}/old")
    assert r.status_code == 200 and r.text == "target"
    assert [s.path for s in target.requests] == ["/new"]
    assert r.history[0].status_code == 302


def test_transport_rewrite_and_header_filters_seen_by_backend(backends: Make,
                                                               client: MakeClient) -> None:
    """URLRewrite (host and prefix) and RequestHeaderModifier reach the backend (HR)."""
    b = backends("b")
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(h.match("/api"), filters=[
                       h.rewrite(hostname="internal.example",
                                 path=h.path_modifier("ReplacePrefixMatch", "/v2")),
                       h.header_filter(set={"x-set": "1"}, add={"x-add": "a"},
                                       remove=["x-drop"]),
                   ], backends=[h.backend("b")])))
    c = client(mesh)
    r = c.get(f"http://{HOST}/api/items?q=1",
              headers={"x-drop": "gone", "x-add": "first", "x-set": "old"})
    assert r.status_code == 200
    seen = b.requests[0]
    assert seen.path == "/v2/items?q=1"
    assert seen.headers["host"] == "internal.example"
    assert seen.headers["x-set"] == "1"
    assert seen.headers["x-add"] == "first,a"
    assert "x-drop" not in seen.headers
    assert str(r.request.url) == f"http://{HOST}/api/items?q=1"  # the caller's own URL


def test_transport_backend_level_filter_applies_only_to_its_backend(
    backends: Make, client: MakeClient
) -> None:
    """A backendRef's own header filter changes only requests sent to that backend."""
    b = backends("b")
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b", filters=[
                       h.header_filter(set={"x-backend": "b"})])])))
    c = client(mesh)
    c.get(f"http://{HOST}/")
    assert b.requests[0].headers["x-backend"] == "b"


def test_transport_response_header_filter_seen_by_client(backends: Make,
                                                          client: MakeClient) -> None:
    """ResponseHeaderModifier edits the backend's response before the caller sees it."""
    b = backends("b")
    b.behave = lambda seen: Reply(headers={"x-internal": "secret", "x-keep": "1"})
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(filters=[h.header_filter(
                       "ResponseHeaderModifier", set={"x-route": "r"}, add={"x-keep": "2"},
                       remove=["x-internal"])], backends=[h.backend("b")])))
    c = client(mesh)
    r = c.get(f"http://{HOST}/")
    assert r.headers["x-route"] == "r"
    assert r.headers["x-keep"] == "1,2"
    assert "x-internal" not in r.headers
    assert r.text == "ok"


def test_transport_invalid_backend_answers_500(client: MakeClient) -> None:
    """A backendRef to a missing Service gets 500 with the reason (SPEC-NOTES §4.3)."""
    mesh = mesh_of(gateway(), route(h.rule(backends=[h.backend("missing")])))
    c = client(mesh)
    r = c.get(f"http://{HOST}/")
    assert r.status_code == 500
    assert "meshclient" in r.text


def test_transport_half_invalid_split_answers_500_for_its_share(
    backends: Make, client: MakeClient
) -> None:
    """Two equal backends, one invalid: about half the requests get 500 (SPEC-NOTES §4.3)."""
    good = backends("good")
    mesh = mesh_of(gateway(), service("good", [good]),
                   route(h.rule(backends=[h.backend("good"), h.backend("missing")])))
    c = client(mesh, rand=random.Random(3).random)
    codes = [c.get(f"http://{HOST}/").status_code for _ in range(200)]
    assert set(codes) == {200, 500}
    assert 60 <= codes.count(500) <= 140


def test_transport_no_endpoints_answers_503(client: MakeClient) -> None:
    """A valid Service without endpoints gets 503 (SPEC-NOTES §4.3 SHOULD)."""
    mesh = mesh_of(gateway(), service("empty", []),
                   route(h.rule(backends=[h.backend("empty")])))
    r = client(mesh).get(f"http://{HOST}/")
    assert r.status_code == 503
    assert "no usable endpoints" in r.text or "not known" in r.text


def test_transport_unmatched_path_answers_404(backends: Make, client: MakeClient) -> None:
    """A mesh host with no matching rule gets 404 from the transport, not the backend."""
    b = backends("b")
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(h.match("/only"), backends=[h.backend("b")])))
    r = client(mesh).get(f"http://{HOST}/else")
    assert r.status_code == 404 and b.hits == 0


def test_transport_cors_preflight_answered_here(backends: Make, client: MakeClient) -> None:
    """A CORS preflight is answered by the transport and never forwarded (G1767)."""
    b = backends("b")
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(filters=[h.cors(allowOrigins=["https://shop.example"],
                                                allowMethods=["GET", "POST"])],
                                backends=[h.backend("b")])))
    r = client(mesh).request("OPTIONS", f"http://{HOST}/", headers={
        "origin": "https://shop.example", "access-control-request-method": "POST"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert b.hits == 0


def test_transport_other_hosts_pass_through_to_inner(backends: Make,
                                                      client: MakeClient) -> None:
    """A host that is not the mesh's goes, unchanged, to the inner transport."""
    outside = backends("outside")
    mesh = mesh_of(gateway())
    r = client(mesh).get(f"http://{outside.host}:{outside.port}/plain")
    assert r.text == "outside"
    assert outside.requests[0].path == "/plain"


def test_transport_strict_mode_refuses_other_hosts(backends: Make, client: MakeClient) -> None:
    """With strict=True a non-mesh host raises a clear error and nothing is sent."""
    outside = backends("outside")
    c = client(mesh_of(gateway()), strict=True)
    with pytest.raises(httpx.UnsupportedProtocol, match="strict mode"):
        c.get(f"http://{outside.host}:{outside.port}/")
    assert outside.hits == 0


def test_transport_via_gateway_goes_to_gateway_address_with_host(backends: Make,
                                                                  client: MakeClient) -> None:
    """A rule meshclient cannot honour goes to the Gateway's address with the original Host."""
    gw = backends("gateway")
    # The test gateway listens on its own port, so the listener (and the URL) use it.
    mesh2 = mesh_of(h.gateway("gw", listeners=[h.listener("http", gw.port, "HTTP",
                                                          "*.mesh.test")],
                              addresses=[gw.host]),
                    service("b", []),
                    route(h.rule(filters=[h.extension_ref()], backends=[h.backend("b")])))
    assert mesh2.resolve("GET", f"http://{HOST}:{gw.port}/x").via.value == "gateway"
    r = client(mesh2).get(f"http://{HOST}:{gw.port}/x")
    assert r.text == "gateway"
    assert gw.requests[0].headers["host"] == f"{HOST}:{gw.port}"


def test_transport_hook_and_log_receive_a_record(backends: Make, client: MakeClient,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Each request produces one RequestRecord naming route, backend, endpoint and outcome."""
    b = backends("b")
    mesh = mesh_of(gateway(), service("b", [b]), route(h.rule(backends=[h.backend("b")])))
    records: list[RequestRecord] = []
    c = client(mesh, on_request=records.append)
    with caplog.at_level("DEBUG", logger="meshclient.httpx"):
        c.get(f"http://{HOST}/p")
    [rec] = records
    assert rec.route is not None and rec.route.name == "r"
    assert rec.backend == "default/b:8080"
    assert rec.endpoint == f"{b.host}:{b.port}"
    assert (rec.attempts, rec.outcome, rec.status) == (1, "response", 200)
    assert rec.latency > 0
    assert any(getattr(r, "meshclient", None) == rec for r in caplog.records)


def test_transport_streams_request_and_response_bodies(backends: Make,
                                                       client: MakeClient) -> None:
    """A generator body reaches the backend and the response can be streamed back."""
    b = backends("b")
    b.behave = lambda seen: Reply(body=seen.body[::-1])
    mesh = mesh_of(gateway(), service("b", [b]), route(h.rule(backends=[h.backend("b")])))
    c = client(mesh)
    if c.kind == "sync":
        def gen() -> Iterator[bytes]:
            yield b"abc"
            yield b"def"
        with c.http.stream("POST", f"http://{HOST}/", content=gen()) as r:
            assert b"".join(r.iter_bytes()) == b"fedcba"
    else:
        async def agen() -> AsyncIterator[bytes]:
            yield b"abc"
            yield b"def"

        async def go() -> bytes:
            async with c.http.stream("POST", f"http://{HOST}/", content=agen()) as r:
                return b"".join([part async for part in r.aiter_bytes()])
        assert c._loop is not None
        assert c._loop.run(go()) == b"fedcba"
    assert b.requests[0].body == b"abcdef"
    assert c.transport.statistics().in_flight == 0


def test_exports_are_sorted_and_complete() -> None:
    """The adapter exports its three public names, sorted (STYLE.md §9)."""
    import meshclient_httpx

    assert meshclient_httpx.__all__ == sorted(meshclient_httpx.__all__)
    assert set(meshclient_httpx.__all__) == {"AsyncMeshTransport", "MeshTransport",
                                             "RequestRecord"}
    assert issubclass(MeshTransport, httpx.BaseTransport)
    assert issubclass(AsyncMeshTransport, httpx.AsyncBaseTransport)


def test_transport_via_gateway_without_address_goes_to_inner(client: MakeClient) -> None:
    """With no Gateway address, a via-gateway request goes unchanged to the inner transport."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(299)

    mesh = mesh_of(gateway(), service("b", []),
                   route(h.rule(filters=[h.extension_ref()], backends=[h.backend("b")])))
    c = client(mesh, inner=httpx.MockTransport(handler))
    r = c.get(f"http://{HOST}/via?x=1")
    assert r.status_code == 299
    assert str(seen[0].url) == f"http://{HOST}/via?x=1"


def test_transport_backend_level_redirect_answered_for_its_share(
    backends: Make, client: MakeClient
) -> None:
    """A backendRef with its own RequestRedirect answers the redirect when it is picked."""
    b = backends("b")
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b", filters=[
                       h.redirect(hostname="elsewhere.example", status=307)])])))
    r = client(mesh).get(f"http://{HOST}/p")
    assert r.status_code == 307
    assert r.headers["location"] == "http://elsewhere.example/p"
    assert b.hits == 0


def test_transport_backend_level_redirect_needs_no_endpoint(client: MakeClient) -> None:
    """A redirecting backendRef answers even when its Service has no endpoints at all."""
    mesh = mesh_of(gateway(), service("b", []),
                   route(h.rule(backends=[h.backend("b", filters=[
                       h.redirect(hostname="elsewhere.example", status=302)])])))
    r = client(mesh).get(f"http://{HOST}/p?q=1")
    assert r.status_code == 302
    assert r.headers["location"] == "http://elsewhere.example/p?q=1"


def test_import_without_httpx_names_the_extra() -> None:
    """Without httpx installed the adapter fails to import, naming the extra (STYLE.md §2)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['httpx'] = None\n"
            "try:\n    import meshclient_httpx\n"
            "except ImportError as e:\n"
            "    print(e, '|', type(e.__cause__).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert "pip install 'meshclient[httpx]'" in out
    assert "ImportError" in out.split("|")[1] or "ModuleNotFoundError" in out.split("|")[1]
