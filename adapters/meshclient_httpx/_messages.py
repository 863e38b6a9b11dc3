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


def _lowered_pairs_kept() -> bool:
    # httpx.Headers keeps (raw name, lower-cased name, value) triples in ``_list``; reading
    # them spares the ``raw`` copy and a lower() per header (≈0.6 µs a request). Private, so
    # checked once here: any other layout falls back to the public ``raw``.
    try:
        return httpx.Headers([(b"X-A", b"v")])._list == [(b"X-A", b"x-a", b"v")]
    except Exception:  # pragma: no cover - another httpx
        return False


_TRIPLES: Final = _lowered_pairs_kept()


def head_of(request: httpx.Request) -> RequestHead | None:
    """The core's view of ``request``; None for a scheme the mesh never handles."""
    url = request.url
    raw_scheme = url.raw_scheme
    scheme = _SCHEMES.get(raw_scheme)
    if scheme is None:
        return None
    raw_host = url.raw_host
    authority = raw_host.decode("ascii")
    given_port = url.port
    port = given_port or _DEFAULT_PORTS[raw_scheme]
    # httpx has lower-cased the URL host already. latin-1 decodes any byte, as the wire
    # allows.
    if _TRIPLES:
        triples = request.headers._list
        headers = tuple([(k.decode("latin-1"), v.decode("latin-1")) for _, k, v in triples])
        first = (triples[0][1], triples[0][2]) if triples else None
    else:
        raw = request.headers.raw
        headers = tuple([(k.lower().decode("latin-1"), v.decode("latin-1")) for k, v in raw])
        first = (raw[0][0].lower(), raw[0][1]) if raw else None
    # The Host header httpx made itself (first, equal to the URL's host[:port]) names the
    # URL's host: say so, and RequestHead skips finding and normalizing it again. Anything
    # else (a Host the caller set, upper case, IPv6 brackets) is left to RequestHead.
    host = None
    if first is not None and first[0] == b"host":
        value = first[1]
        if value == raw_host or (given_port is not None and b":" not in raw_host
                                 and value == b"%b:%d" % (raw_host, given_port)):
            host = authority
    return RequestHead(request.method, scheme, authority, port,
                       url.raw_path.decode("ascii"), headers, host)


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
