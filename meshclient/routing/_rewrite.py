"""Request-dependent parts of filters: redirect locations, path rewrites, CORS answers."""

from __future__ import annotations

from typing import Final

from meshclient.model import CORS, PathModifier, RequestRedirect
from meshclient.routing._decision import HeaderEdits
from meshclient.routing._request import RequestHead

__all__ = ["cors_preflight", "cors_response_headers", "redirect_location", "rewrite_path"]

_DEFAULT_PORT: Final = {"http": 80, "https": 443}


def replace_prefix(path: str, prefix: str, replacement: str) -> str:
    """HR ReplacePrefixMatch, consistent with every vector of the spec's table (§3.4).

    ``path`` starts with ``prefix`` on a segment boundary (the match guaranteed it).
    """
    rest = path[len(prefix.rstrip("/")):]
    out = replacement.rstrip("/") + rest
    return out or "/"


def rewrite_path(head: RequestHead, modifier: PathModifier, matched_prefix: str | None) -> str:
    """The new path (query kept) for a URLRewrite or RequestRedirect path modifier."""
    path = head.path_only
    if modifier.type == "ReplaceFullPath":
        new = modifier.value or "/"
    else:
        new = replace_prefix(path, matched_prefix or "/", modifier.value)
    query = head.query_string
    # Unspecified by the spec: keep the query string, as every conformant gateway does.
    return f"{new}?{query}" if query else new


def redirect_location(
    head: RequestHead, f: RequestRedirect, matched_prefix: str | None
) -> str:
    """The Location of a RequestRedirect (HR; the port table in SPEC-NOTES §3.3)."""
    scheme = f.scheme or head.scheme
    if scheme not in _DEFAULT_PORT:
        scheme = "https" if scheme in ("grpcs",) else "http"
    host = f.hostname or head.host
    if f.port is not None:
        port = f.port
    elif f.scheme is not None:
        port = _DEFAULT_PORT[scheme]
    else:
        port = head.port  # the listener port (mesh: the Service port the client used)
    path = rewrite_path(head, f.path, matched_prefix) if f.path is not None else head.path
    if ":" in host:
        host = f"[{host}]"
    if _DEFAULT_PORT[scheme] == port:
        return f"{scheme}://{host}{path}"
    return f"{scheme}://{host}:{port}{path}"


# -- CORS (HR, G1767) ----------------------------------------------------------------------


def _split_origin(origin: str) -> tuple[str, str, int] | None:
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() not in _DEFAULT_PORT or not rest or "/" in rest:
        return None
    scheme = scheme.lower()
    host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not host:
        host, port_text = rest, ""
    if port_text:
        if not port_text.isdigit():
            return None
        port = int(port_text)
    else:
        port = _DEFAULT_PORT[scheme]
    return scheme, host.lower(), port


def origin_allowed(cors: CORS, origin: str) -> bool:
    if "*" in cors.allow_origins:
        return True
    got = _split_origin(origin)
    if got is None:
        return False
    for pattern in cors.allow_origins:
        want = _split_origin(pattern)
        if want is None or want[0] != got[0] or want[2] != got[2]:
            continue
        if want[1] == got[1]:
            return True
        # A '*' in the host is a greedy left wildcard over any number of labels.
        if want[1].startswith("*") and got[1].endswith(want[1][1:]) and (
            len(got[1]) > len(want[1]) - 1
        ):
            return True
    return False


def _credentialed(head: RequestHead) -> bool:
    return head.header("cookie") is not None or head.header("authorization") is not None


def is_preflight(head: RequestHead) -> bool:
    return (
        head.method == "OPTIONS"
        and head.header("origin") is not None
        and head.header("access-control-request-method") is not None
    )


def cors_preflight(cors: CORS, head: RequestHead) -> HeaderEdits:
    """Headers of the local answer to a preflight; empty when the origin is not allowed."""
    origin = head.header("origin") or ""
    if not origin_allowed(cors, origin):
        return HeaderEdits()
    creds = cors.allow_credentials
    out: list[tuple[str, str]] = [("access-control-allow-origin", _allow_origin(cors, origin))]
    if creds:
        out.append(("access-control-allow-credentials", "true"))
    methods = cors.allow_methods
    if methods == ("*",):
        # With credentials a '*' is never sent back: echo what the browser asked for.
        if creds:
            asked = head.header("access-control-request-method")
            if asked:
                out.append(("access-control-allow-methods", asked))
        else:
            out.append(("access-control-allow-methods", "*"))
    elif methods:
        out.append(("access-control-allow-methods", ", ".join(methods)))
    allow_headers = cors.allow_headers
    if allow_headers == ("*",):
        asked = head.header("access-control-request-headers")
        if creds:
            if asked:
                out.append(("access-control-allow-headers", asked))
        else:
            out.append(("access-control-allow-headers", "*"))
    elif allow_headers:
        out.append(("access-control-allow-headers", ", ".join(allow_headers)))
    if cors.expose_headers and not (creds and cors.expose_headers == ("*",)):
        out.append(("access-control-expose-headers", ", ".join(cors.expose_headers)))
    out.append(("access-control-max-age", str(cors.max_age)))
    return HeaderEdits(set=tuple(out))


def cors_response_headers(cors: CORS, head: RequestHead) -> HeaderEdits:
    """Headers added to the upstream response of an actual cross-origin request."""
    origin = head.header("origin")
    if origin is None or not origin_allowed(cors, origin):
        return HeaderEdits()
    creds = cors.allow_credentials
    if _credentialed(head) and not creds:
        # G1767: a credentialed request to a rule without allowCredentials gets no CORS headers.
        return HeaderEdits()
    out: list[tuple[str, str]] = [("access-control-allow-origin", _allow_origin(cors, origin))]
    if creds:
        out.append(("access-control-allow-credentials", "true"))
    if cors.expose_headers and not (creds and cors.expose_headers == ("*",)):
        out.append(("access-control-expose-headers", ", ".join(cors.expose_headers)))
    return HeaderEdits(set=tuple(out))


def _allow_origin(cors: CORS, origin: str) -> str:
    if cors.allow_origins == ("*",) and not cors.allow_credentials:
        return "*"
    return origin
