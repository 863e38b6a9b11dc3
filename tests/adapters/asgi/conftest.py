"""A real uvicorn (h11 + wsproto) with the meshclient TLS shim, mTLS on loopback.

The app echoes what the middleware left in the scope; the server requests client
certificates (CERT_OPTIONAL, so token-only callers can connect too) from the SPIFFE test CA.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import uvicorn

from meshclient.authz import Caller
from meshclient_asgi import IDENTITY_KEY
from meshclient_asgi.uvicorn_tls import config as tls_config
from tests.authz import pki

LIFESPAN: list[str] = []


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            LIFESPAN.append(msg["type"])
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    caller: Caller = scope["state"][IDENTITY_KEY]
    assert scope[IDENTITY_KEY] is caller
    who = {
        "peer": caller.peer.spiffe_id if caller.peer else None,
        "via": caller.peer.authenticated_by if caller.peer else None,
        "user": caller.user.principal if caller.user else None,
        "path": scope["path"],
    }
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        msg = await receive()
        await send({"type": "websocket.send", "text": json.dumps(who) + msg.get("text", "")})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = json.dumps(who).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class Served:
    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port
        self.url = f"https://127.0.0.1:{port}"

    def client_context(self, spiffe_id: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=pki.spiffe_ca().cert_pem.decode())
        if spiffe_id is not None:
            cert, key = pki.spiffe_ca().issue([spiffe_id]).files(pki.tmpdir())
            ctx.load_cert_chain(cert, key)
        return ctx

    def raw(self, target: bytes, spiffe_id: str | None = None,
            headers: bytes = b"") -> tuple[int, bytes]:
        """Send one HTTP/1.1 request with the target exactly as given (no normalising)."""
        ctx = self.client_context(spiffe_id)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock, \
                ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"GET " + target + b" HTTP/1.1\r\nhost: localhost\r\n" + headers
                        + b"connection: close\r\n\r\n")
            data = b""
            for _ in range(100):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body


def serve(asgi_app: Any) -> Iterator[Served]:
    ca = pki.spiffe_ca()
    cert, key = ca.issue([], dns=("localhost",)).files(pki.tmpdir())
    config = tls_config(
        asgi_app, host="127.0.0.1", port=0, ssl_certfile=cert, ssl_keyfile=key,
        ssl_ca_certs=ca.ca_file(pki.tmpdir()), ssl_cert_reqs=ssl.CERT_OPTIONAL,
        log_level="warning", lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    else:  # pragma: no cover
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(server, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served_factory() -> Iterator[Any]:
    gens: list[Iterator[Served]] = []

    def make(asgi_app: Any) -> Served:
        gen = serve(asgi_app)
        gens.append(gen)
        return next(gen)

    yield make
    for gen in gens:
        for _ in gen:
            pass
