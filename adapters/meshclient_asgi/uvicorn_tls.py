"""Run uvicorn with the ASGI TLS extension (``scope["extensions"]["tls"]``) filled in.

No ASGI server exposes the client certificate today (ECOSYSTEM §3.1; Kludex/uvicorn#3132,
#3133 open). uvicorn accepts protocol *classes* for ``http=`` and ``ws=``; ``with_tls`` wraps
one so that each connection reads its peer certificate once and every scope on it carries the
extension. Only the leaf certificate is available (``client_cert_chain[0]``, PEM) before
Python 3.13. uvicorn's HTTP/2 path (``http="zttp"``) is not covered.

Usage::

    config = meshclient_asgi.uvicorn_tls.config(
        app, host="0.0.0.0", port=8443, ssl_certfile="tls.crt", ssl_keyfile="tls.key",
        ssl_ca_certs="ca.crt")
    uvicorn.Server(config).run()
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, TypeVar

try:
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "meshclient_asgi.uvicorn_tls needs uvicorn: pip install 'meshclient[asgi]'"
    ) from exc

__all__ = ["config", "tls_extension", "with_tls"]

_TLS_VERSIONS: Final = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
P = TypeVar("P", bound=asyncio.Protocol)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI ``tls`` extension for one TLS connection (django/asgiref#466 shape)."""
    der = ssl_object.getpeercert(binary_form=True)
    version = ssl_object.version()
    cipher = ssl_object.cipher()
    return {
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "server_cert": None,
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }


def with_tls(cls: type[P]) -> type[P]:
    """A subclass of a uvicorn protocol class whose scopes carry the TLS extension."""

    class WithTLS(cls):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return
            tls = tls_extension(ssl_object)
            inner: Callable[..., Awaitable[None]] = getattr(self, "app")  # noqa: B009

            async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
                extensions = scope.get("extensions")
                if extensions is None:
                    extensions = scope["extensions"] = {}
                # One dict per scope: the connection's shared one is never handed out.
                extensions["tls"] = dict(tls)
                await inner(scope, receive, send)

            self.app = app

    WithTLS.__name__ = WithTLS.__qualname__ = f"WithTLS{cls.__name__}"
    return WithTLS


def config(app: Any, *, ssl_cert_reqs: int = ssl.CERT_REQUIRED, **kwargs: Any) -> uvicorn.Config:
    """A ``uvicorn.Config`` (h11 + wsproto) whose scopes carry the TLS extension.

    Client certificates are required by default (pass ``ssl_cert_reqs=ssl.CERT_OPTIONAL`` to
    accept token-only callers too); ``ssl_ca_certs`` must name the CA that issues them.

    Raises:
        ValueError: ``ssl_ca_certs`` is missing while client certificates are requested.
    """
    if ssl_cert_reqs != ssl.CERT_NONE and not kwargs.get("ssl_ca_certs"):
        raise ValueError("ssl_ca_certs: required to verify client certificates")
    from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

    kwargs.setdefault("http", with_tls(H11Protocol))
    kwargs.setdefault("ws", with_tls(WSProtocol))
    return uvicorn.Config(app, ssl_cert_reqs=ssl_cert_reqs, **kwargs)
