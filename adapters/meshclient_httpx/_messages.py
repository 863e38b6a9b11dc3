"""Translations between httpx values and the core's: request heads, header edits, answers.

Everything here is pure and cheap: a request head is built from the URL's raw components
(``raw_scheme``, ``raw_host``, ``port``, ``raw_path``) and httpx's already lower-cased header
list, never by re-parsing the URL (ECOSYSTEM.md §1.1; ``URL.copy_with`` alone costs a quarter
of httpx's own per-request time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

import httpx

from meshclient.routing import HeaderEdits, RequestHead

__all__ = [
    "RawHeaders",
    "answer",
    "edit_headers",
    "encode_headers",
    "encode_path",
    "head_of",
    "is_replayable",
]

RawHeaders = list[tuple[bytes, bytes]]

_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}
_SCHEMES: Final = {b"http": "http", b"https": "https"}
_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")


def head_of(request: httpx.Request) -> RequestHead | None:
    """The core's view of ``request``; None for a scheme the mesh never handles."""
    url = request.url
    raw_scheme = url.raw_scheme
    scheme = _SCHEMES.get(raw_scheme)
    if scheme is None:
        return None
    port = url.port or _DEFAULT_PORTS[raw_scheme]
    # httpx has lower-cased the URL host already; header names are lower-cased here (bytes
    # lower() then one decode is cheaper than multi_items(), which re-reads the encoding per
    # item). latin-1 decodes any byte, as the wire allows.
    headers = tuple([(k.lower().decode("latin-1"), v.decode("latin-1"))
                     for k, v in request.headers.raw])
    return RequestHead(request.method, scheme, url.raw_host.decode("ascii"), port,
                       url.raw_path.decode("ascii"), headers)


def encode_headers(headers: Sequence[tuple[str, str]]) -> RawHeaders:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def encode_path(path: str) -> bytes:
    try:
        return path.encode("ascii")
    except UnicodeEncodeError:
        # A rewrite from the manifests may hold non-ASCII text; send it percent-encoded.
        return quote(path, safe="/?&=%:@!$'()*+,;~-._").encode("ascii")


def edit_headers(headers: RawHeaders, edits: HeaderEdits) -> RawHeaders:
    """``headers`` with a ResponseHeaderModifier's set/add/remove applied (HR)."""
    pairs = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers)
    return encode_headers(edits.apply(pairs))


def answer(
    request: httpx.Request,
    status: int,
    *,
    location: str | None = None,
    edits: HeaderEdits | None = None,
    reason: str | None = None,
    extra: RawHeaders = (),  # type: ignore[assignment]
) -> httpx.Response:
    """A response made here, without a backend (redirect, CORS preflight, reject, 503/504).

    Rejections carry a short text body saying why, so a caller looking at a 500 from a mesh
    host can tell meshclient's answer from its backend's.
    """
    headers: RawHeaders = []
    if location is not None:
        headers.append((b"location", location.encode("latin-1")))
    body = b""
    if reason:
        body = f"meshclient: {reason}\n".encode()
        headers.append(_TEXT)
    headers.append((b"content-length", str(len(body)).encode()))
    headers.extend(extra)
    if edits:
        headers = edit_headers(headers, edits)
    return httpx.Response(status, headers=headers, content=body, request=request,
                          extensions={"http_version": b"HTTP/1.1"})


def is_replayable(stream: object) -> bool:
    """Whether a request body can be sent again: bytes already in memory, or multipart.

    ECOSYSTEM.md §1.3: generators raise ``StreamConsumed`` on a second pass and file-like
    content silently comes back empty, so only these two are replayed. httpx's multipart
    stream is private, hence the name check; it seeks its files back to 0 on every pass.
    """
    return isinstance(stream, httpx.ByteStream) or type(stream).__name__ == "MultipartStream"
