"""The request path's shortcuts give what the general code gives: heads, requests, leases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from meshclient.balancing import Pick
from meshclient.routing import Action, Backend, Decision, HeaderEdits, RequestHead
from meshclient_httpx import _messages, _netstreams
from meshclient_httpx._flow import Flow, _response_edits
from meshclient_httpx._messages import head_of
from meshclient_httpx._netstreams import ReadableBackend
from meshclient_httpx._pools import PoolKey, PoolSet
from meshclient_httpx._wire import wire_request

HOSTS = ("reviews.mesh.test", "127.0.0.1", "[fd00::1]", "Reviews.Mesh.Test")
USER_HOSTS = (None, "reviews.mesh.test", "REVIEWS.mesh.test", "other.test:8080",
              " reviews.mesh.test ", "[fd00::1]:80", "fd00::1", "fd00::1:8080")


def generic_head(request: httpx.Request) -> RequestHead:
    """The head built the plain way: public httpx API, RequestHead finds the Host itself."""
    url = request.url
    return RequestHead(request.method, url.scheme, url.host,
                       url.port or {"http": 80, "https": 443}[url.scheme],
                       url.raw_path.decode("ascii"),
                       tuple((k.decode("latin-1").lower(), v.decode("latin-1"))
                             for k, v in request.headers.raw))


def fields(head: RequestHead) -> tuple[Any, ...]:
    return (head.method, head.scheme, head.authority, head.port, head.path, head.headers,
            head.host)


@given(scheme=st.sampled_from(("http", "https")), host=st.sampled_from(HOSTS),
       port=st.sampled_from((None, 80, 443, 8080)), user_host=st.sampled_from(USER_HOSTS),
       triples=st.booleans(), by_client=st.booleans())
@example(scheme="http", host="reviews.mesh.test", port=None, user_host=None, triples=True,
         by_client=True)
@example(scheme="http", host="reviews.mesh.test", port=8080, user_host=None, triples=True,
         by_client=True)
@example(scheme="http", host="[fd00::1]", port=8080, user_host="fd00::1:8080", triples=True,
         by_client=False)
def test_head_of_equals_the_generic_head(scheme: str, host: str, port: int | None,
                                         user_host: str | None, triples: bool,
                                         by_client: bool) -> None:
    """head_of's Host shortcut and header read give the head the generic construction gives."""
    url = f"{scheme}://{host}{f':{port}' if port else ''}/a?b=1"
    headers = {} if user_host is None else {"Host": user_host}  # first, when given
    headers.update({"X-Mixed": "Va", "x-b": "1"})
    request = (httpx.Client().build_request("GET", url, headers=headers) if by_client
               else httpx.Request("GET", url, headers=headers))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_messages, "_TRIPLES", triples)
        got = head_of(request)
    assert got is not None
    assert fields(got) == fields(generic_head(request))


def test_head_of_other_schemes_are_not_the_mesh_s() -> None:
    """A scheme the mesh never handles has no head (the request passes through)."""
    assert head_of(httpx.Request("GET", "ws://reviews.mesh.test/")) is None


def _stream() -> httpx.ByteStream:
    return httpx.ByteStream(b"body")


@pytest.mark.parametrize(("method", "extensions"), [
    ("GET", {"timeout": {"read": 1.0}}),
    ("POST", {}),
    ("PURGE", {}),                      # not a standard method: httpcore's own constructor
    ("GET", {"target": b"/elsewhere"}),  # httpcore rewrites the URL for this extension
])
def test_wire_request_equals_httpcore_s_constructor(method: str,
                                                    extensions: dict[str, Any]) -> None:
    """wire_request sets the same attributes, to the same values, as httpcore.Request does."""
    stream = _stream()
    headers = [(b"host", b"reviews.mesh.test"), (b"x-a", b"1")]
    made = httpcore.Request(method, httpcore.URL(scheme=b"http", host=b"10.0.0.1", port=8080,
                                                 target=b"/p?q"),
                            headers=headers, content=stream, extensions=extensions)
    wired = wire_request(method, b"http", b"10.0.0.1", 8080, b"/p?q", headers, stream,
                         extensions)
    assert type(wired) is httpcore.Request and type(wired.url) is httpcore.URL
    assert vars(wired).keys() == vars(made).keys()
    assert vars(wired.url) == vars(made.url)
    assert {k: v for k, v in vars(wired).items() if k != "url"} == {
        k: v for k, v in vars(made).items() if k != "url"}


def _key(host: str) -> PoolKey:
    return PoolKey(b"http", host, 80, None, (), None, False, True)


def test_pools_acquire_for_remembered_pick_leases_the_same_entry() -> None:
    """A remembered pick is leased its pool again; another scheme or pick is not."""
    pools: PoolSet[object] = PoolSet(lambda key: object())
    pick = object()
    assert pools.acquire_for(pick, "http") is None
    entry = pools.acquire(_key("10.0.0.1"))
    pools.remember(pick, "http", entry)
    assert pools.acquire_for(pick, "http") is entry
    assert entry.in_flight == 2
    assert pools.acquire_for(pick, "https") is None
    assert pools.acquire_for(object(), "http") is None


def test_pools_acquire_for_forgets_at_endpoint_changes_and_closes() -> None:
    """An endpoint change forgets remembered picks; a pool that left the set is never leased."""
    pools: PoolSet[object] = PoolSet(lambda key: object())
    pick = object()
    entry = pools.acquire(_key("10.0.0.1"))
    pools.remember(pick, "http", entry)
    assert pools.retire({("10.0.0.1", 80)}) == []
    assert pools.acquire_for(pick, "http") is None  # forgotten, though still open
    pools.remember(pick, "http", entry)
    assert pools.release(entry) is None
    assert pools.retire(set()) == [entry.pool]  # idle and gone: closed now
    assert entry.gone
    pools.remember(pick, "http", entry)  # too late: a gone entry is not remembered
    assert pools.acquire_for(pick, "http") is None
    other = pools.acquire(_key("10.0.0.2"))
    pools.remember(pick, "http", other)
    assert pools.drain() == [other.pool]
    assert pools.acquire_for(pick, "http") is None


def _flow() -> Flow:
    return Flow(balancer=None, retries=None, mirrors=None, token=None,  # type: ignore[arg-type]
                plaintext_same_node=False, clock=float, wall=float, rand=float)


def _pick(backend: Backend) -> Pick[Backend]:
    return Pick(address="10.0.0.1", port=8080, backend=backend, same_node=False,
                app_protocol=None, handle=None)  # type: ignore[arg-type]


def test_flow_lease_remembers_picks_whose_pool_needs_no_request_data() -> None:
    """Plain HTTP (and policy TLS) leases are remembered per pick: one key, built once."""
    flow, pools = _flow(), PoolSet(lambda key: key)
    backend = Backend(kind="Service", namespace="default", name="b", port=80, weight=1)
    pick = _pick(backend)
    head = RequestHead("GET", "http", "a.mesh.test", 80, "/")
    first = flow.lease(pools, head, backend, pick)
    assert pools.acquire_for(pick, "http") is first
    assert flow.lease(pools, RequestHead("GET", "http", "b.mesh.test", 80, "/"), backend,
                      pick) is first
    assert first.in_flight == 3


def test_flow_lease_https_without_policy_keys_by_the_request_host() -> None:
    """https without a BackendTLSPolicy verifies the request's host, so each host has its pool."""
    flow, pools = _flow(), PoolSet(lambda key: key)
    backend = Backend(kind="Service", namespace="default", name="b", port=443, weight=1)
    pick = _pick(backend)
    a = flow.lease(pools, RequestHead("GET", "https", "a.mesh.test", 443, "/"), backend, pick)
    b = flow.lease(pools, RequestHead("GET", "https", "b.mesh.test", 443, "/"), backend, pick)
    assert (a.key.tls_name, b.key.tls_name) == ("a.mesh.test", "b.mesh.test")
    assert pools.acquire_for(pick, "https") is None


def test_readable_backend_is_readable_answers_as_httpcore_s_stream() -> None:
    """The wrapped stream's is_readable polls its socket and agrees with httpcore's answer."""

    async def main() -> list[tuple[object, object]]:
        closed = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(b"x")
            await writer.drain()
            await closed.wait()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stream = await ReadableBackend().connect_tcp("127.0.0.1", port)
        assert isinstance(stream, _netstreams._ReadableStream)
        inner = stream._s
        seen = [(stream.get_extra_info("is_readable"), inner.get_extra_info("is_readable"))]
        await stream.write(b"?")
        for _ in range(100):  # bounded: the byte is on loopback within milliseconds
            if inner.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        seen.append((stream.get_extra_info("is_readable"), inner.get_extra_info("is_readable")))
        assert await stream.read(10) == b"x"
        seen.append((stream.get_extra_info("is_readable"), inner.get_extra_info("is_readable")))
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        closed.set()
        await stream.aclose()
        server.close()
        await server.wait_closed()
        return seen

    assert asyncio.run(main()) == [(False, False), (True, True), (False, False)]


def test_readable_stream_without_a_socket_is_left_alone() -> None:
    """A stream that has no socket to poll (a mock, a proxy's) is returned unwrapped."""
    stream = httpcore.AsyncMockStream([b""])
    assert _netstreams.readable(stream) is stream


@pytest.mark.parametrize(("rule", "own", "want"), [
    ((), (), None),
    ((("x-r", "1"),), (), (("x-r", "1"),)),
    ((), (("x-b", "2"),), (("x-b", "2"),)),
    ((("x-r", "1"),), (("x-b", "2"),), (("x-r", "1"), ("x-b", "2"))),
])
def test_response_edits_merge_rule_and_backend(rule: tuple[tuple[str, str], ...],
                                               own: tuple[tuple[str, str], ...],
                                               want: tuple[tuple[str, str], ...] | None) -> None:
    """The rule's ResponseHeaderModifier comes first, the backendRef's own after; none: None."""
    backend = Backend(kind="Service", namespace="default", name="b", port=80, weight=1,
                      response_edits=HeaderEdits(set=own))
    decision = Decision(action=Action.FORWARD, request=RequestHead("GET", "http", "a", 80, "/"),
                        response_headers=HeaderEdits(set=rule), backends=(backend,))
    got = _response_edits(decision, backend)
    assert (None if got is None else got.set) == want
