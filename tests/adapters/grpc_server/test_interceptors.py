"""gRPC server interceptors (sync and aio) on loopback with mTLS SVIDs and tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import grpc.aio
import pytest

from meshclient.authz import Issuer, StaticKeys
from meshclient.store import Store
from meshclient_grpc import AioAuthzInterceptor, AuthzInterceptor, current_caller
from tests.authz import pki
from tests.authz.policies import WORKLOAD, istio, snapshot

WEB = "spiffe://cluster.local/ns/app/sa/web"
DB = "spiffe://cluster.local/ns/app/sa/db"
SA = Issuer(issuer=pki.K8S_ISSUER, audiences=[pki.AUDIENCE], kind="service-account")
POLICIES = (
    istio("only-web", {"rules": [{"from": [{"source": {
        "principals": ["cluster.local/ns/app/sa/web"]}}]}]}),
    istio("deny-admin", {"action": "DENY", "rules": [{"to": [{"operation": {
        "paths": ["/test.Echo/Admin"]}}]}]}),
)


def store() -> Store:
    s = Store()
    s.replace(snapshot(*POLICIES).all())
    return s


def who() -> bytes:
    caller = current_caller()
    return json.dumps({"peer": caller.peer.spiffe_id if caller.peer else None,
                       "ip": caller.source_ip}).encode()


def unary(request: bytes, ctx: Any) -> bytes:
    return who()


def server_stream(request: bytes, ctx: Any) -> Iterator[bytes]:
    yield who()
    yield b"done"


def client_stream(requests: Iterator[bytes], ctx: Any) -> bytes:
    return b"".join(requests) + who()


def bidi(requests: Iterator[bytes], ctx: Any) -> Iterator[bytes]:
    for r in requests:
        yield r + who()


async def aio_unary(request: bytes, ctx: Any) -> bytes:
    return who()


async def aio_server_stream(request: bytes, ctx: Any) -> AsyncIterator[bytes]:
    yield who()


async def aio_client_stream(requests: AsyncIterator[bytes], ctx: Any) -> bytes:
    return b"".join([r async for r in requests]) + who()


async def aio_bidi(requests: AsyncIterator[bytes], ctx: Any) -> AsyncIterator[bytes]:
    async for r in requests:
        yield r + who()


def handlers(kind: str = "sync") -> grpc.GenericRpcHandler:
    fns: tuple[Any, Any, Any, Any] = (
        (unary, server_stream, client_stream, bidi) if kind == "sync"
        else (aio_unary, aio_server_stream, aio_client_stream, aio_bidi))
    u, us, su, ss = fns
    return grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(u),
        "Admin": grpc.unary_unary_rpc_method_handler(u),
        "ServerStream": grpc.unary_stream_rpc_method_handler(us),
        "ClientStream": grpc.stream_unary_rpc_method_handler(su),
        "Bidi": grpc.stream_stream_rpc_method_handler(ss),
    })


def server_credentials(require_client_auth: bool) -> grpc.ServerCredentials:
    ca = pki.spiffe_ca()
    leaf = ca.issue([], dns=("localhost",))
    return grpc.ssl_server_credentials([(leaf.key_pem, leaf.cert_pem)],
                                       root_certificates=ca.cert_pem,
                                       require_client_auth=require_client_auth)


def channel_credentials(spiffe_id: str | None) -> grpc.ChannelCredentials:
    ca = pki.spiffe_ca()
    if spiffe_id is None:
        return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
    leaf = ca.issue([spiffe_id])
    return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem,
                                        private_key=leaf.key_pem,
                                        certificate_chain=leaf.cert_pem)


def interceptor_options() -> dict[str, Any]:
    return {"mesh": store(), "workload": WORKLOAD, "port": 8443, "issuers": [SA],
            "keys": StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(pki.rsa_key())}),
            "clock": lambda: pki.NOW}


@pytest.fixture(scope="module")
def sync_servers() -> Iterator[tuple[int, int]]:
    """(mTLS port, TLS-only port) of one sync grpc server."""
    server = grpc.server(ThreadPoolExecutor(4),
                         interceptors=[AuthzInterceptor(**interceptor_options())])
    server.add_generic_rpc_handlers((handlers(),))
    mtls = server.add_secure_port("127.0.0.1:0", server_credentials(True))
    tls = server.add_secure_port("127.0.0.1:0", server_credentials(False))
    server.start()
    yield mtls, tls
    server.stop(None).wait(5)


def call(port: int, method: str, spiffe_id: str | None = None,
         metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    with grpc.secure_channel(f"localhost:{port}", channel_credentials(spiffe_id)) as ch:
        if method == "ServerStream":
            return list(ch.unary_stream(f"/test.Echo/{method}")(b"x", timeout=5,
                                                                 metadata=metadata))
        if method == "ClientStream":
            return ch.stream_unary(f"/test.Echo/{method}")(iter([b"a", b"b"]), timeout=5,
                                                           metadata=metadata)
        if method == "Bidi":
            return list(ch.stream_stream(f"/test.Echo/{method}")(iter([b"a"]), timeout=5,
                                                                 metadata=metadata))
        return ch.unary_unary(f"/test.Echo/{method}")(b"x", timeout=5, metadata=metadata)


@pytest.mark.parametrize("method", ["Unary", "ServerStream", "ClientStream", "Bidi"])
def test_sync_allowed_svid_sees_caller(sync_servers: tuple[int, int], method: str) -> None:
    """An allowed SVID reaches the handler, which reads the caller via current_caller()."""
    got = call(sync_servers[0], method, WEB)
    text = b"".join(got) if isinstance(got, list) else got
    assert WEB.encode() in text and b"127.0.0.1" in text


@pytest.mark.parametrize("method", ["Unary", "ServerStream", "ClientStream", "Bidi"])
def test_sync_other_svid_permission_denied(sync_servers: tuple[int, int], method: str) -> None:
    """Another SVID is aborted with PERMISSION_DENIED and the reason code, for every shape."""
    with pytest.raises(grpc.RpcError) as info:
        call(sync_servers[0], method, DB)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "no_matching_policy"


def test_sync_deny_policy_on_method_path(sync_servers: tuple[int, int]) -> None:
    """A DENY on the gRPC method path denies even the allowed identity."""
    with pytest.raises(grpc.RpcError) as info:
        call(sync_servers[0], "Admin", WEB)
    assert info.value.details() == "denied_by_policy"


def test_sync_no_credentials_unauthenticated(sync_servers: tuple[int, int]) -> None:
    """Without certificate or token the call is UNAUTHENTICATED."""
    with pytest.raises(grpc.RpcError) as info:
        call(sync_servers[1], "Unary")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "missing_credentials"


def test_sync_service_account_token_allowed(sync_servers: tuple[int, int]) -> None:
    """A service-account token in metadata identifies the caller over plain TLS."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web"))
    got = call(sync_servers[1], "Unary", metadata=(("authorization", f"Bearer {tok}"),))
    assert WEB.encode() in got


def test_sync_expired_token_unauthenticated(sync_servers: tuple[int, int]) -> None:
    """An expired token is UNAUTHENTICATED with its reason."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web", lifetime=-3600))
    with pytest.raises(grpc.RpcError) as info:
        call(sync_servers[1], "Unary", metadata=(("authorization", f"Bearer {tok}"),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "token_expired"


def test_interceptor_options_misuse_raises() -> None:
    """Missing mesh/workload or a bad port raises naming it."""
    with pytest.raises(TypeError, match="workload"):
        AuthzInterceptor(mesh=Store())
    with pytest.raises(ValueError, match="port"):
        AuthzInterceptor(mesh=Store(), workload=WORKLOAD, port=0)


# -- aio ---------------------------------------------------------------------------------


async def aio_round(spiffe_id: str | None, method: str) -> Any:
    server = grpc.aio.server(interceptors=[AioAuthzInterceptor(**interceptor_options())])
    server.add_generic_rpc_handlers((handlers("aio"),))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(True))
    await server.start()
    try:
        async with grpc.aio.secure_channel(f"localhost:{port}",
                                           channel_credentials(spiffe_id)) as ch:
            if method == "ServerStream":
                return [r async for r in ch.unary_stream(f"/test.Echo/{method}")(b"x",
                                                                                timeout=5)]
            if method == "Bidi":
                call = ch.stream_stream(f"/test.Echo/{method}")(iter([b"a"]), timeout=5)
                return [r async for r in call]
            if method == "ClientStream":
                return await ch.stream_unary(f"/test.Echo/{method}")(iter([b"a"]), timeout=5)
            return await ch.unary_unary(f"/test.Echo/{method}")(b"x", timeout=5)
    finally:
        await server.stop(None)


@pytest.mark.parametrize("method", ["Unary", "ServerStream", "ClientStream", "Bidi"])
def test_aio_allowed_and_denied(method: str) -> None:
    """The aio interceptor admits the allowed SVID and aborts another with PERMISSION_DENIED."""
    got = asyncio.run(aio_round(WEB, method))
    text = b"".join(got) if isinstance(got, list) else got
    assert WEB.encode() in text
    with pytest.raises(grpc.RpcError) as info:
        asyncio.run(aio_round(DB, method))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "no_matching_policy"
