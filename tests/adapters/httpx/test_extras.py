"""Session persistence, non-replayable bodies, HTTP/2 options and error records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import trustme

from meshclient_httpx import RequestRecord
from meshclient_httpx._pools import PoolKey
from tests.adapters.httpx.conftest import (
    HOST,
    Backend,
    Client,
    gateway,
    mesh_of,
    route,
    service,
    tls_context,
)
from tests.adapters.httpx.test_resilience import fail_first
from tests.adapters.httpx.test_tls import POLICY_HOST, tls_world
from tests.routing import helpers as h

Make = Callable[..., Backend]
MakeClient = Callable[..., Client]


def test_session_cookie_pins_the_client_to_one_endpoint(backends: Make,
                                                        client: MakeClient) -> None:
    """A Cookie session's first response sets the cookie and later requests follow it."""
    servers = [backends(f"s{i}") for i in range(3)]
    mesh = mesh_of(gateway(), service("b", servers),
                   route(h.rule(backends=[h.backend("b")],
                                sessionPersistence={"type": "Cookie",
                                                    "cookie": {"name": "pin"}})))
    c = client(mesh)
    first = c.get(f"http://{HOST}/")
    assert "pin=" in first.headers["set-cookie"]
    served = {c.get(f"http://{HOST}/").headers["x-served-by"] for _ in range(6)}
    assert served == {first.headers["x-served-by"]}


def test_retry_streamed_body_not_replayed_after_it_was_sent(backends: Make,
                                                            client: MakeClient) -> None:
    """A generator body that reached the backend is not retried (ECOSYSTEM §1.3)."""
    b = backends("b")
    b.behave = fail_first(5)
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 3, "codes": [503], "backoff": "1ms"})))
    c = client(mesh)
    if c.kind == "sync":
        def body() -> Iterator[bytes]:
            yield b"once"
        r = c.request("PUT", f"http://{HOST}/", content=body())
    else:
        async def abody() -> AsyncIterator[bytes]:
            yield b"once"
        r = c.request("PUT", f"http://{HOST}/", content=abody())
    assert r.status_code == 503
    assert [s.body for s in b.requests] == [b"once"]


def test_http2_option_falls_back_to_http11_over_alpn(backends: Make, client: MakeClient,
                                                     ca: trustme.CA) -> None:
    """http2=True offers h2 by ALPN; an HTTP/1.1-only pod still answers."""
    b = backends("b", tls=tls_context(ca.issue_cert(POLICY_HOST)))
    c = client(mesh_of(*tls_world(b, ca)), http2=True)
    r = c.get(f"http://{HOST}/")
    assert (r.status_code, r.http_version) == (200, "HTTP/1.1")


def test_pool_options_h2c_backend_gets_prior_knowledge(client: MakeClient) -> None:
    """appProtocol kubernetes.io/h2c endpoints get HTTP/2-only cleartext pools (G1911)."""
    c = client(mesh_of(gateway()))
    opts = c.transport._s.pool_options(PoolKey(b"http", "10.0.0.1", 80, None, (), None,
                                                True, True))
    assert (opts["http1"], opts["http2"], opts["ssl_context"]) == (False, True, None)


def test_record_of_a_failed_request_names_the_error(backends: Make, client: MakeClient) -> None:
    """A request that ends in a raised error is still observed, with outcome ``error``."""
    b = backends("b")
    b.kill()
    mesh = mesh_of(gateway(), service("b", [b]), route(h.rule(backends=[h.backend("b")])))
    records: list[RequestRecord] = []
    c = client(mesh, on_request=records.append)
    with pytest.raises(httpx.ConnectError):
        c.get(f"http://{HOST}/")
    [rec] = records
    assert (rec.outcome, rec.status, rec.attempts) == ("error", None, 1)
    assert rec.error is not None and rec.error.startswith("connect")



def test_async_cancelled_request_releases_its_attempt(backends: Make) -> None:
    """A cancelled async request gives back its pool lease and its balancer slot."""
    import asyncio

    from meshclient_httpx import AsyncMeshTransport
    from tests.adapters.httpx.conftest import AsyncLoop, Reply

    slow = backends("slow")
    slow.behave = lambda seen: Reply(delay=0.5)
    mesh = mesh_of(gateway(), service("slow", [slow]),
                   route(h.rule(backends=[h.backend("slow")])))
    loop = AsyncLoop()
    try:
        async def go() -> tuple[int, int]:
            t = AsyncMeshTransport(mesh)
            async with httpx.AsyncClient(transport=t) as c:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(c.get(f"http://{HOST}/"), 0.1)
                stats = mesh.balancer(rand=lambda: 0.0).statistics()
                return t.statistics().in_flight, stats.in_flight
        assert loop.run(go()) == (0, 0)
    finally:
        loop.close()


def test_h2c_backend_spoken_to_with_prior_knowledge(client: MakeClient) -> None:
    """appProtocol kubernetes.io/h2c gets HTTP/2 without TLS, :authority = Host (G1911)."""
    from tests.adapters.httpx.conftest import H2CBackend

    b = H2CBackend()
    try:
        mesh = mesh_of(gateway(), service("b", [b], app_protocol="kubernetes.io/h2c"),
                       route(h.rule(backends=[h.backend("b")])))
        c = client(mesh)
        r = c.get(f"http://{HOST}/h2")
        assert (r.status_code, r.text, r.http_version) == (200, "h2c", "HTTP/2")
        assert b.requests[0][":authority"] == HOST
        assert b.requests[0][":path"] == "/h2"
    finally:
        b.kill()


def test_async_concurrent_requests_keep_counts_exact(backends: Make) -> None:
    """64 concurrent async requests over three endpoints: all answered, nothing left held."""
    import asyncio

    from meshclient_httpx import AsyncMeshTransport
    from tests.adapters.httpx.conftest import AsyncLoop

    servers = [backends(f"s{i}") for i in range(3)]
    mesh = mesh_of(gateway(), service("b", servers), route(h.rule(backends=[h.backend("b")])))
    loop = AsyncLoop()
    try:
        async def go() -> tuple[list[int], int]:
            t = AsyncMeshTransport(mesh)
            async with httpx.AsyncClient(transport=t) as c:
                rs = await asyncio.gather(*(c.get(f"http://{HOST}/") for _ in range(64)))
                return [r.status_code for r in rs], t.statistics().in_flight
        codes, in_flight = loop.run(go())
        assert codes == [200] * 64 and in_flight == 0
        assert sum(s.hits for s in servers) == 64
    finally:
        loop.close()
