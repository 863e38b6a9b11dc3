"""Real gRPC servers on loopback for the mesh channel tests, and manifests pointing at them.

Each ``Server`` is a grpcio server on its own loopback address (127.1.x.y, port 0), so every
endpoint has a distinct IP as pods do. It serves ``test.Echo`` with bytes in and out through
one generic handler, records each call (method and metadata), and behaves as the test sets:
fail with a status, sleep, or answer with its name.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
import pytest
import trustme

from meshclient import Mesh
from tests.routing import helpers as h

Obj = dict[str, Any]
SERVICE = "test.Echo"
_addresses = itertools.count()
TLS = tuple[bytes, bytes] | Callable[[str], tuple[bytes, bytes]] | None
"""(certificate chain PEM, key PEM), or a function of the server's host giving them."""


class Seen:
    def __init__(self, method: str, metadata: dict[str, str]) -> None:
        self.method = method
        self.metadata = metadata


class Server:
    """One endpoint: a grpcio server recording calls and answering by its settings."""

    def __init__(self, name: str, *, tls: TLS = None, client_ca: bytes | None = None) -> None:
        self.name = name
        n = next(_addresses)
        self.host = f"127.1.{n // 250}.{n % 250 + 1}"
        if callable(tls):
            tls = tls(self.host)
        self.calls: list[Seen] = []
        self.fail: grpc.StatusCode | None = None
        self.fail_times = 10**9
        """Fail only this many calls (then answer normally)."""
        self.delay = 0.0
        self.lock = threading.Lock()
        owner = self

        def record(details: Any, context: grpc.ServicerContext) -> bool:
            md = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            with owner.lock:
                owner.calls.append(Seen(details, md))
                failing = owner.fail is not None and owner.fail_times > 0
                if failing:
                    owner.fail_times -= 1
            if owner.delay:
                time.sleep(owner.delay)
            if failing:
                assert owner.fail is not None
                context.abort(owner.fail, f"{owner.name} fails")
            return True

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            record("Unary", context)
            return owner.name.encode() + b":" + request

        def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            record("ServerStream", context)
            for i in range(3):
                yield f"{owner.name}:{i}".encode()

        def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            record("ClientStream", context)
            return owner.name.encode() + b":" + b"+".join(requests)

        def bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            record("Bidi", context)
            for r in requests:
                yield owner.name.encode() + b":" + r

        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Other": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        })
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers((handler,))
        if tls is None:
            self.port = self.server.add_insecure_port(f"{self.host}:0")
        else:
            creds = grpc.ssl_server_credentials([(tls[1], tls[0])], root_certificates=client_ca,
                                                require_client_auth=client_ca is not None)
            self.port = self.server.add_secure_port(f"{self.host}:0", creds)
        self.server.start()
        self.alive = True

    def kill(self) -> None:
        """Die as a pod does: stop listening and drop open calls."""
        if self.alive:
            self.alive = False
            self.server.stop(None).wait(5)

    @property
    def hits(self) -> int:
        with self.lock:
            return len(self.calls)


# -- manifests ----------------------------------------------------------------------------------


def service(name: str, servers: Sequence[Server], *, namespace: str = "shop",
            port: int = 9000, annotations: dict[str, str] | None = None) -> list[Obj]:
    """Service ``name`` (port ``port`` named ``grpc``) and one EndpointSlice per server."""
    svc = h.service(name, namespace, ports=(("grpc", port),))
    if annotations:
        svc["metadata"]["annotations"] = dict(annotations)
    out = [svc]
    for i, s in enumerate(servers):
        out.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-{i}", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [s.host], "conditions": {"ready": True}}],
            "ports": [{"name": "grpc", "port": s.port}],
        })
    return out


def grpc_route(*rules: Obj, name: str = "pay", namespace: str = "shop", parent: str = "pay",
               port: int = 9000, annotations: dict[str, str] | None = None) -> Obj:
    """A GRPCRoute with Service ``parent`` as its GAMMA parent."""
    meta: Obj = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": h.GW_API, "kind": "GRPCRoute", "metadata": meta,
            "spec": {"parentRefs": [h.service_parent(parent, port=port)], "rules": list(rules)}}


def rule(*backends: tuple[str, int] | tuple[str, int, int], method: str | None = None,
         service_name: str | None = SERVICE, headers: dict[str, str] | None = None,
         filters: list[Obj] | None = None) -> Obj:
    out: Obj = {"backendRefs": [
        {"name": b[0], "port": b[1], **({"weight": b[2]} if len(b) == 3 else {})}
        for b in backends]}
    m: Obj = {}
    if method is not None:
        m["method"] = {"service": service_name, "method": method}
    if headers:
        m["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
    if m:
        out["matches"] = [m]
    if filters:
        out["filters"] = filters
    return out


def mesh_of(*objects: Obj | list[Obj]) -> Mesh:
    flat: list[Obj] = []
    for o in objects:
        flat.extend(o if isinstance(o, list) else [o])
    return Mesh.from_objects(flat)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    """``servers(name, tls=None)`` starts a Server; all are stopped at the end of the test."""
    made: list[Server] = []

    def make(name: str, *, tls: TLS = None, client_ca: bytes | None = None) -> Server:
        s = Server(name, tls=tls, client_ca=client_ca)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


def leaf(ca: trustme.CA, *names: str) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM) of a server certificate for ``names``."""
    cert = ca.issue_cert(*names)
    return cert.cert_chain_pems[0].bytes(), cert.private_key_pem.bytes()


def call(channel: grpc.Channel, method: str = "Unary", request: bytes = b"hi",
         **kw: Any) -> bytes:
    got: bytes = channel.unary_unary(f"/{SERVICE}/{method}")(request, timeout=kw.pop(
        "timeout", 5.0), **kw)
    return got


class AsyncLoop:
    """An event loop in a thread, so a test can drive aio calls one blocking step at a time."""

    def __init__(self) -> None:
        import asyncio

        self._asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return self._asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class Client:
    """The four call shapes as blocking calls, over ``mesh_channel`` or ``aio_mesh_channel``."""

    def __init__(self, kind: str, mesh: Mesh, target: str, loop: AsyncLoop | None,
                 **options: Any) -> None:
        from meshclient_grpc import aio_mesh_channel, mesh_channel

        self.kind = kind
        self._loop = loop
        if kind == "sync":
            self.channel: Any = mesh_channel(mesh, target, **options)
        else:
            assert loop is not None

            async def make() -> Any:
                return aio_mesh_channel(mesh, target, **options)

            self.channel = loop.run(make())

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        return self._loop.run(coro)

    def unary(self, method: str = "Unary", request: bytes = b"hi", *,
              timeout: float | None = 5.0, metadata: Any = None) -> bytes:
        mc = self.channel.unary_unary(f"/{SERVICE}/{method}")
        if self.kind == "sync":
            return mc(request, timeout=timeout, metadata=metadata)  # type: ignore[no-any-return]

        async def go() -> bytes:
            return await mc(request, timeout=timeout, metadata=metadata)  # type: ignore[no-any-return]

        return self._run(go())  # type: ignore[no-any-return]

    def server_stream(self, request: bytes = b"s", *, timeout: float | None = 5.0,
                      metadata: Any = None) -> list[bytes]:
        mc = self.channel.unary_stream(f"/{SERVICE}/ServerStream")
        if self.kind == "sync":
            return list(mc(request, timeout=timeout, metadata=metadata))

        async def go() -> list[bytes]:
            return [m async for m in mc(request, timeout=timeout, metadata=metadata)]

        return self._run(go())  # type: ignore[no-any-return]

    def client_stream(self, requests: Sequence[bytes] = (b"1", b"2"), *,
                      timeout: float | None = 5.0, metadata: Any = None) -> bytes:
        mc = self.channel.stream_unary(f"/{SERVICE}/ClientStream")
        if self.kind == "sync":
            return mc(iter(requests), timeout=timeout, metadata=metadata)  # type: ignore[no-any-return]

        async def go() -> bytes:
            async def gen() -> Any:
                for r in requests:
                    yield r

            return await mc(gen(), timeout=timeout, metadata=metadata)  # type: ignore[no-any-return]

        return self._run(go())  # type: ignore[no-any-return]

    def bidi(self, requests: Sequence[bytes] = (b"1", b"2"), *, timeout: float | None = 5.0,
             metadata: Any = None) -> list[bytes]:
        mc = self.channel.stream_stream(f"/{SERVICE}/Bidi")
        if self.kind == "sync":
            return list(mc(iter(requests), timeout=timeout, metadata=metadata))

        async def go() -> list[bytes]:
            async def gen() -> Any:
                for r in requests:
                    yield r

            return [m async for m in mc(gen(), timeout=timeout, metadata=metadata)]

        return self._run(go())  # type: ignore[no-any-return]

    def statistics(self) -> Any:
        return self.channel.statistics()

    def close(self) -> None:
        if self.kind == "sync":
            self.channel.close()
        else:
            self._run(self.channel.close())


@pytest.fixture(params=["sync", "aio"])
def client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """``client(mesh, target, **options)``: a Client of the parametrized kind, closed after."""
    kind: str = request.param
    loop = AsyncLoop() if kind == "aio" else None
    made: list[Client] = []

    def make(mesh: Mesh, target: str = "grpc://pay.shop:9000", **options: Any) -> Client:
        c = Client(kind, mesh, target, loop, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
    if loop is not None:
        loop.close()


def update(mesh: Mesh, *objects: Obj | list[Obj]) -> None:
    """Replace the mesh's objects with these, as a source reload does."""
    from meshclient.model import parse_object

    flat: list[Obj] = []
    for o in objects:
        flat.extend(o if isinstance(o, list) else [o])
    parsed = []
    for raw in flat:
        got, _errors = parse_object(raw, "default")
        if got is not None:
            parsed.append(got)
    mesh.store.replace(parsed, [])
    mesh.refresh()
