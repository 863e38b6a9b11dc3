"""httpcore requests built from parts that are checked already.

httpcore's constructors check each argument, header pairs against typing ABCs one by one:
``Request(headers=...)`` alone took ≈4 µs here, more than routing and balancing a request
together, and httpx's own transport pays it on every request. What the mesh transport hands
over is bytes by construction (httpx's header list, an address encoded once per pool, a path
httpx parsed), so the request and its URL get their documented attributes set directly.
``tests/adapters/httpx/test_wire.py`` pins the attributes httpcore's constructors set, so an
httpcore that adds one fails there rather than here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import httpcore

__all__ = ["wire_request"]

_METHODS: Final = {m.decode(): m for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE",
                                           b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT")}
_new: Final = object.__new__
_Request: Final = httpcore.Request
_URL: Final = httpcore.URL


def wire_request(method: str, scheme: bytes, host: bytes, port: int, target: bytes,
                 headers: list[tuple[bytes, bytes]], stream: Iterable[bytes] | Any,
                 extensions: dict[str, Any]) -> httpcore.Request:
    """``httpcore.Request(method, URL(...), headers=..., ...)`` without re-checking the parts.

    Args:
        headers: Pairs of bytes (not checked).
        stream: The body stream (httpx's request stream).
    """
    wire_method = _METHODS.get(method)
    if wire_method is None or "target" in extensions or stream is None or (
            stream.__class__ is bytes):
        # Anything unusual takes httpcore's own checks (and their errors).
        request = _Request(method, _URL(scheme=scheme, host=host, port=port, target=target),
                           content=stream, extensions=extensions)
        request.headers = headers
        return request
    url = _new(_URL)
    url.scheme = scheme
    url.host = host
    url.port = port
    url.target = target
    request = _new(_Request)
    request.method = wire_method
    request.url = url
    request.headers = headers
    request.stream = stream
    request.extensions = extensions
    return request
