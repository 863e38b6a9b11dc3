"""HTTPRoute and GRPCRoute filters (SPEC-NOTES §3)."""

from __future__ import annotations

import re
from typing import Final

import attrs

from meshclient.model._names import header_name_problem, precise_hostname_problem
from meshclient.model._reader import INVALID, UNSUPPORTED_VALUE, Reader
from meshclient.model._refs import BackendRef, parse_backend_ref

__all__ = [
    "CORS",
    "ExtensionRef",
    "ExternalAuth",
    "Filter",
    "HeaderModifier",
    "PathModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
]

REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
_ORIGIN: Final = re.compile(
    r"^(https?)://(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)(:\d{1,5})?$"
)


@attrs.frozen(kw_only=True)
class HeaderModifier:
    """Request or ResponseHeaderModifier: names are lower-cased, one action per name."""

    type: str  # "RequestHeaderModifier" | "ResponseHeaderModifier"
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class PathModifier:
    type: str  # "ReplaceFullPath" | "ReplacePrefixMatch"
    value: str


@attrs.frozen(kw_only=True)
class RequestRedirect:
    type: str = "RequestRedirect"
    scheme: str | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = None
    status_code: int = 302


@attrs.frozen(kw_only=True)
class URLRewrite:
    type: str = "URLRewrite"
    hostname: str | None = None
    path: PathModifier | None = None


@attrs.frozen(kw_only=True)
class RequestMirror:
    type: str = "RequestMirror"
    backend_ref: BackendRef
    percent: float = 100.0
    """Share of requests mirrored, 0 to 100 (``fraction`` is converted)."""


@attrs.frozen(kw_only=True)
class CORS:
    type: str = "CORS"
    allow_origins: tuple[str, ...] = ()
    allow_credentials: bool = False
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int = 5


@attrs.frozen(kw_only=True)
class ExtensionRef:
    type: str = "ExtensionRef"
    group: str
    kind: str
    name: str


@attrs.frozen(kw_only=True)
class ExternalAuth:
    type: str = "ExternalAuth"
    protocol: str = ""


Filter = (
    HeaderModifier
    | RequestRedirect
    | URLRewrite
    | RequestMirror
    | CORS
    | ExtensionRef
    | (ExternalAuth)
)

HTTP_FILTER_TYPES: Final = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "RequestMirror",
    "CORS",
    "ExternalAuth",
    "ExtensionRef",
)
GRPC_FILTER_TYPES: Final = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "ExtensionRef",
)
_FIELD: Final = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "RequestMirror": "requestMirror",
    "CORS": "cors",
    "ExternalAuth": "externalAuth",
    "ExtensionRef": "extensionRef",
}
REPEATABLE: Final = frozenset({"RequestMirror", "ExtensionRef"})


def parse_filters(
    r: Reader, key: str, route_namespace: str, *, allowed: tuple[str, ...]
) -> list[Filter]:
    """Parse a filter list; invalid entries are reported and left out."""
    out: list[Filter] = []
    seen: set[str] = set()
    for f in r.children(key, max_items=16):
        kind = f.str("type", required=True)
        if not kind:
            continue
        if kind not in allowed:
            f.error(
                "type", kind, "is not a filter type this route kind supports", UNSUPPORTED_VALUE
            )
            continue
        if kind in seen and kind not in REPEATABLE:
            # HR: only RequestMirror and ExtensionRef may repeat within one list.
            f.error("type", kind, "may appear only once in a filter list", INVALID)
            continue
        seen.add(kind)
        body = f.child(_FIELD[kind])
        if body is None:
            f.missing(_FIELD[kind])
            continue
        parsed = _parse_one(kind, body, route_namespace)
        if parsed is not None:
            out.append(parsed)
    if "RequestRedirect" in seen and "URLRewrite" in seen:
        r.error(
            key,
            "RequestRedirect + URLRewrite",
            "may not combine RequestRedirect and URLRewrite in one filter list",
            INVALID,
        )
    return out


def _parse_one(kind: str, b: Reader, ns: str) -> Filter | None:
    before = len(b.errors)
    result: Filter | None
    if kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
        result = _header_modifier(kind, b)
    elif kind == "RequestRedirect":
        result = _redirect(b)
    elif kind == "URLRewrite":
        hostname = b.opt_str("hostname")
        if hostname is not None and (problem := precise_hostname_problem(hostname)):
            b.error("hostname", hostname, problem, INVALID)
        result = URLRewrite(hostname=hostname, path=_path_modifier(b))
    elif kind == "RequestMirror":
        result = _mirror(b, ns)
    elif kind == "CORS":
        result = _cors(b)
    elif kind == "ExtensionRef":
        result = ExtensionRef(
            group=b.str("group"),
            kind=b.str("kind", required=True),
            name=b.str("name", required=True),
        )
    else:
        result = ExternalAuth(protocol=b.str("protocol"))
    return result if len(b.errors) == before else None


def _header_modifier(kind: str, b: Reader) -> HeaderModifier:
    names: set[str] = set()

    def take(name: str, where: Reader) -> str | None:
        if problem := header_name_problem(name):
            where.error("name", name, problem, INVALID)
            return None
        low = name.lower()
        if low in names:
            # HR: one action per header name per filter, case-insensitively.
            where.error("name", name, "is already modified by this filter", INVALID)
            return None
        names.add(low)
        return low

    pairs: dict[str, list[tuple[str, str]]] = {"set": [], "add": []}
    for action in ("set", "add"):
        for h in b.children(action, max_items=16):
            name = take(h.str("name", required=True), h)
            if name is not None:
                pairs[action].append((name, h.str("value", required=True)))
    removes: list[str] = []
    for index, name in enumerate(b.strings("remove", max_items=16)):
        if problem := header_name_problem(name):
            b.error(f"remove[{index}]", name, problem, INVALID)
        elif name.lower() in names:
            b.error(f"remove[{index}]", name, "is already modified by this filter", INVALID)
        else:
            names.add(name.lower())
            removes.append(name.lower())
    return HeaderModifier(
        type=kind, set=tuple(pairs["set"]), add=tuple(pairs["add"]), remove=tuple(removes)
    )


def _path_modifier(b: Reader) -> PathModifier | None:
    p = b.child("path")
    if p is None:
        return None
    kind = p.str("type", required=True)
    if kind == "ReplaceFullPath":
        value = p.str("replaceFullPath", required=True)
    elif kind == "ReplacePrefixMatch":
        value = p.str("replacePrefixMatch", required=True)
    else:
        p.error("type", kind, "is not ReplaceFullPath or ReplacePrefixMatch", UNSUPPORTED_VALUE)
        return None
    if value and not value.startswith("/"):
        p.error(_FIELD_OF_PATH[kind], value, "must start with '/'", INVALID)
    elif len(value) > 1024:
        p.error(_FIELD_OF_PATH[kind], value, "must be at most 1024 characters", INVALID)
    return PathModifier(type=kind, value=value)


_FIELD_OF_PATH: Final = {
    "ReplaceFullPath": "replaceFullPath",
    "ReplacePrefixMatch": "replacePrefixMatch",
}


def _redirect(b: Reader) -> RequestRedirect:
    scheme = b.opt_str("scheme")
    if scheme is not None and scheme not in ("http", "https"):
        b.error("scheme", scheme, "is not http or https", UNSUPPORTED_VALUE)
    hostname = b.opt_str("hostname")
    if hostname is not None and (problem := precise_hostname_problem(hostname)):
        b.error("hostname", hostname, problem, INVALID)
    code = b.int("statusCode", 302)
    if code not in REDIRECT_CODES:
        b.error("statusCode", code, "is not 301, 302, 303, 307 or 308", UNSUPPORTED_VALUE)
    return RequestRedirect(
        scheme=scheme,
        hostname=hostname,
        path=_path_modifier(b),
        port=b.int("port", minimum=1, maximum=65535),
        status_code=code or 302,
    )


def _mirror(b: Reader, ns: str) -> RequestMirror | None:
    ref_reader = b.child("backendRef")
    if ref_reader is None:
        b.missing("backendRef")
        return None
    ref = parse_backend_ref(ref_reader, ns)
    if ref is None:
        return None
    if ref.is_service and ref.port is None:
        ref_reader.missing("port")
    percent = 100.0
    if b.has("percent") and b.has("fraction"):
        b.error("fraction", b.get("fraction"), "may not be set together with percent", INVALID)
    elif b.has("percent"):
        percent = float(b.int("percent", 100, minimum=0, maximum=100) or 0)
    elif (fraction := b.child("fraction")) is not None:
        numerator = fraction.int("numerator", required=True, minimum=0)
        denominator = fraction.int("denominator", 100, minimum=1)
        if numerator is not None and denominator is not None:
            if numerator > denominator:
                fraction.error(
                    "numerator",
                    numerator,
                    f"must not exceed the denominator ({denominator})",
                    INVALID,
                )
            else:
                percent = 100.0 * numerator / denominator
    return RequestMirror(backend_ref=ref, percent=percent)


def _cors(b: Reader) -> CORS:
    origins = b.strings("allowOrigins", max_items=64)
    for index, origin in enumerate(origins):
        if origin != "*" and not _ORIGIN.match(origin):
            b.error(
                f"allowOrigins[{index}]",
                origin,
                "is not '*' or an origin such as 'https://*.example.com:8443'",
                INVALID,
            )
    methods = b.strings("allowMethods", max_items=9)
    allow_headers = b.strings("allowHeaders", max_items=64)
    expose_headers = b.strings("exposeHeaders", max_items=64)
    for field, values in (
        ("allowOrigins", origins),
        ("allowMethods", methods),
        ("allowHeaders", allow_headers),
        ("exposeHeaders", expose_headers),
    ):
        if "*" in values and len(values) > 1:
            b.error(field, values, "may hold '*' only on its own", INVALID)
    for index, method in enumerate(methods):
        if method != "*" and method not in _METHODS:
            b.error(f"allowMethods[{index}]", method, "is not an HTTP method", UNSUPPORTED_VALUE)
    return CORS(
        allow_origins=tuple(origins),
        allow_credentials=b.bool("allowCredentials"),
        allow_methods=tuple(methods),
        allow_headers=tuple(allow_headers),
        expose_headers=tuple(expose_headers),
        max_age=b.int("maxAge", 5, minimum=1) or 5,
    )


_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
