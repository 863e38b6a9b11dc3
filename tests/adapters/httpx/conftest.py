"""Real backends on loopback for the httpx adapter tests, and the manifests that point at them.

Each ``Backend`` is a stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) bound to its own
loopback address (127.0.0.N, port 0), so every endpoint has a distinct IP as pods do. It
records every request it sees (method, path, headers, body, TLS SNI) and answers by a
``behave`` function the test sets. TLS backends wrap each connection in the handler thread,
so a client that refuses the handshake never blocks the server.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import pytest
import trustme

from meshclient import Mesh
from tests.routing import helpers as h

Obj = dict[str, Any]
HOST = "reviews.mesh.test"
"""A hostname of the test Gateway's listener (``*.mesh.test``, HTTP on port 80)."""

_addresses = itertools.count(10)


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    sni: str | None
    at: float
    peer: str | None = None
    """The client certificate's common name (mTLS backends)."""


@attrs.define
class Reply:
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


def _read_chunked(rfile: Any) -> bytes:
    out = b""
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return out
        out += rfile.read(size)
        rfile.readline()


class Backend:
    """One endpoint: a threaded HTTP server recording requests and answering by ``behave``."""

    def __init__(self, name: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.host = f"127.0.0.{next(_addresses)}"
        self.requests: list[Seen] = []
        self.behave: Callable[[Seen], Reply] = lambda seen: Reply(body=name.encode())
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    body = _read_chunked(self.rfile)
                else:
                    body = self.rfile.read(int(self.headers.get("content-length") or 0))
                peer = None
                if isinstance(self.connection, ssl.SSLSocket):
                    cert = self.connection.getpeercert()
                    if cert:
                        names: Any = cert["subject"]
                        peer = next((v for rdn in names for k, v in rdn
                                     if k == "commonName"), None)
                seen = Seen(self.command, self.path,
                            {k.lower(): v for k, v in self.headers.items()}, body,
                            getattr(self.connection, "sni", None), time.monotonic(), peer)
                with owner.lock:
                    owner.requests.append(seen)
                reply = owner.behave(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(reply.body)))
                self.send_header("x-served-by", owner.name)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve  # noqa: N815

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def finish_request(self, request: Any, client_address: Any) -> None:
                conn = request
                if tls is not None:
                    try:
                        conn = tls.wrap_socket(request, server_side=True)
                    except (ssl.SSLError, OSError):
                        return
                with owner.lock:
                    owner.connections.add(conn)
                try:
                    super().finish_request(conn, client_address)
                finally:
                    with owner.lock:
                        owner.connections.discard(conn)
                    if conn is not request:
                        conn.close()

        self.server = Server((self.host, 0), Handler)
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.alive = True

    def kill(self) -> None:
        """Die as a pod does: stop listening (connections are refused) and drop open ones."""
        if self.alive:
            self.alive = False
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(timeout=5)
            with self.lock:
                conns, self.connections = self.connections, set()
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def drop_connections(self) -> None:
        """Close every open connection (clients must reconnect; the server keeps listening)."""
        with self.lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def hits(self) -> int:
        with self.lock:
            return len(self.requests)


def tls_context(cert: trustme.LeafCert, sni: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)

    def remember(sock: Any, name: str | None, _ctx: Any) -> None:
        sock.sni = name

    ctx.sni_callback = remember
    return ctx


# -- manifests ----------------------------------------------------------------------------------


def service(name: str, backends: Sequence[Backend | H2CBackend], *, namespace: str = "default",
            app_protocol: str | None = None) -> list[Obj]:
    """Service ``name`` (port 8080, named ``http``) and one EndpointSlice per backend."""
    ports = (("http", 8080, app_protocol),) if app_protocol else (("http", 8080),)
    out = [h.service(name, namespace, ports=ports)]
    for i, b in enumerate(backends):
        out.append(endpoint_slice(name, b, i, namespace=namespace))
    return out


def endpoint_slice(name: str, b: Backend | H2CBackend, i: int, *,
                   namespace: str = "default") -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-{i}", "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [b.host], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": f"{name}-{i}",
                                     "namespace": namespace}}],
        "ports": [{"name": "http", "port": b.port}],
    }


def gateway(*, addresses: Sequence[str] = ()) -> Obj:
    return h.gateway("gw", listeners=[h.listener("http", 80, "HTTP", "*.mesh.test")],
                     addresses=addresses)


def route(*rules: Obj, hostnames: Sequence[str] = (HOST,), name: str = "r") -> Obj:
    return h.http_route(name, hostnames=list(hostnames), rules=list(rules))


def mesh_of(*objects: Obj | list[Obj]) -> Mesh:
    flat: list[Obj] = []
    for o in objects:
        flat.extend(o if isinstance(o, list) else [o])
    return Mesh.from_objects(flat)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    """``backends(name, tls=None)`` starts a Backend; all are stopped at the end of the test."""
    made: list[Backend] = []

    def make(name: str, *, tls: ssl.SSLContext | None = None) -> Backend:
        b = Backend(name, tls=tls)
        made.append(b)
        return b

    yield make
    for b in made:
        b.kill()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


def free_address() -> tuple[str, int]:
    """A loopback address and port where nothing listens (connections are refused)."""
    host = f"127.0.0.{next(_addresses)}"
    with socket.socket() as s:
        s.bind((host, 0))
        return host, s.getsockname()[1]


class AsyncLoop:
    """An event loop in a thread, so a test can drive an ``AsyncClient`` step by step."""

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
    """The same blocking calls over ``httpx.Client`` + ``MeshTransport`` or their async twins."""

    def __init__(self, kind: str, mesh: Mesh, loop: AsyncLoop | None, **options: Any) -> None:
        import httpx

        from meshclient_httpx import AsyncMeshTransport, MeshTransport

        self.kind = kind
        self._loop = loop
        follow = options.pop("follow_redirects", False)
        timeout = options.pop("timeout", 5.0)
        if kind == "sync":
            self.transport: Any = MeshTransport(mesh, **options)
            self.http: Any = httpx.Client(transport=self.transport, follow_redirects=follow,
                                          timeout=timeout)
        else:
            assert loop is not None

            async def make() -> Any:
                t = AsyncMeshTransport(mesh, **options)
                return t, httpx.AsyncClient(transport=t, follow_redirects=follow,
                                            timeout=timeout)

            self.transport, self.http = loop.run(make())

    def request(self, method: str, url: str, **kw: Any) -> Any:
        if self.kind == "sync":
            return self.http.request(method, url, **kw)
        assert self._loop is not None
        return self._loop.run(self.http.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)

    def close(self) -> None:
        if self.kind == "sync":
            self.http.close()
        else:
            assert self._loop is not None
            self._loop.run(self.http.aclose())


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """``client(mesh, **transport_options)``: a Client of the parametrized kind, closed after."""
    kind: str = request.param
    loop = AsyncLoop() if kind == "async" else None
    made: list[Client] = []

    def make(mesh: Mesh, **options: Any) -> Client:
        c = Client(kind, mesh, loop, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
    if loop is not None:
        loop.close()


class H2CBackend:
    """A cleartext HTTP/2 (prior knowledge) endpoint built on ``h2``; answers 200 ``h2c``."""

    def __init__(self) -> None:
        self.host = f"127.0.0.{next(_addresses)}"
        self.listener = socket.socket()
        self.listener.bind((self.host, 0))
        self.listener.listen()
        self.port: int = self.listener.getsockname()[1]
        self.requests: list[dict[str, str]] = []
        self._conns: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        heads: dict[int, dict[str, str]] = {}
        with contextlib.suppress(OSError):
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65535)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id] = dict(ev.headers)  # type: ignore[arg-type]
                    elif isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        self.requests.append(heads.pop(ev.stream_id, {}))
                        conn.send_headers(ev.stream_id, [(":status", "200"),
                                                         ("content-length", "3")])
                        conn.send_data(ev.stream_id, b"h2c", end_stream=True)
                sock.sendall(conn.data_to_send())

    def kill(self) -> None:
        self._stop = True
        self.listener.close()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
