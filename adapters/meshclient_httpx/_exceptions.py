"""httpcore exceptions to httpx ones, in one place (as httpx's own transport does)."""

from __future__ import annotations

from typing import Final

import httpcore
import httpx

__all__ = ["map_exception"]

_MAP: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    # Most specific first: the first match wins.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def map_exception(exc: Exception, request: httpx.Request) -> Exception:
    """The httpx exception for ``exc`` (chained to it); other exceptions come back as they are.

    The caller raises the result; ``__cause__`` keeps the httpcore original.
    """
    if isinstance(exc, httpx.HTTPError):
        return exc
    for src, dst in _MAP:
        if isinstance(exc, src):
            mapped = dst(str(exc) or src.__name__, request=request)
            mapped.__cause__ = exc
            return mapped
    return exc
