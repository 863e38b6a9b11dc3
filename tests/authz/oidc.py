"""A local HTTPS OIDC issuer (discovery document + JWKS) on loopback, for tests."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trustme


class OIDCServer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks``; counts requests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.requests: list[tuple[str, str | None]] = []
        self.redirect_jwks = False
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        server_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server_self.requests.append((self.path, self.headers.get("authorization")))
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": server_self.issuer, "jwks_uri": f"{server_self.issuer}/jwks"}
                elif self.path == "/jwks" and server_self.redirect_jwks:
                    self.send_response(302)
                    self.send_header("location", "https://evil.example/jwks")
                    self.end_headers()
                    return
                elif self.path == "/jwks":
                    body = server_self.jwks
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # failed handshakes are part of the tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        # Handshake in the handler thread, so a refused handshake closes its own socket.
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.issuer = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    def jwks_fetches(self) -> int:
        return sum(1 for p, _ in self.requests if p == "/jwks")


@contextmanager
def oidc_server(jwks: dict[str, Any]) -> Iterator[OIDCServer]:
    server = OIDCServer(jwks)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
