"""The request as routing sees it: a head, no body, parsed once and lazily."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import unquote_plus, urlsplit

__all__ = ["RequestHead"]

DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}

# scheme "://" authority, then path and query up to a fragment (RFC 3986 §3, absolute URLs).
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^#]*)")

HeaderInput = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] | None

_ORIGINS: dict[str, tuple[str, str, int]] = {}
_ORIGINS_SIZE = 1024


class RequestHead:
    """Method, scheme, destination, path and headers of one request.

    ``authority`` and ``port`` are where the request is addressed (the URL), which decides
    whether it is meshclient's and, for Services, which one; ``host`` is the Host header
    (the URL authority unless the caller set one), which Gateway listeners and routes match.
    Header names are lower-case; values keep their order and repetitions.
    """

    __slots__ = ("_headers", "_query", "authority", "headers", "host",
                 "method", "path", "path_only", "port", "scheme")

    def __init__(
        self,
        method: str,
        scheme: str,
        authority: str,
        port: int,
        path: str,
        headers: tuple[tuple[str, str], ...] = (),
        host: str | None = None,
    ) -> None:
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.port = port
        self.path = path or "/"
        self.headers = headers
        if host is None:
            host = authority
            if headers:
                for name, value in headers:
                    if name == "host":
                        host = _strip_port(value.strip().lower())
                        break
        self.host = host
        cut = self.path.find("?")
        self.path_only: str = self.path if cut < 0 else self.path[:cut]
        """The path without its query string (what path matches see)."""
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None

    @classmethod
    def from_url(cls, method: str, url: str, headers: HeaderInput = None) -> RequestHead:
        """Parse an absolute URL; raises ValueError naming the URL when it is not one."""
        # A client calls few origins many times: "scheme://authority" → (scheme, host, port)
        # is remembered, and only the path is cut out of the URL each time.
        end = url.find("/", url.find("://") + 3)
        if end < 0:
            end = len(url)
        origin = _ORIGINS.get(url[:end])
        if origin is not None:
            path = url[end:] or "/"
            cut = path.find("#")
            if cut >= 0:
                path = path[:cut]
            method = method.upper()
            if origin[0] in ("grpc", "grpcs"):
                method = "POST"
            return cls(method, origin[0], origin[1], origin[2], path, normalize_headers(headers))
        head = cls._parse(method, url, headers)
        key = url[:end]
        if "?" not in key and "#" not in key and "@" not in key:
            if len(_ORIGINS) >= _ORIGINS_SIZE:
                _ORIGINS.clear()  # a flood of origins costs speed, never memory
            _ORIGINS[key] = (head.scheme, head.authority, head.port)
        return head

    @classmethod
    def _parse(cls, method: str, url: str, headers: HeaderInput) -> RequestHead:
        m = _URL.match(url)
        if m is None:
            raise ValueError(f"{url!r} is not an absolute http(s) or grpc URL")
        scheme, netloc, path = m.groups()
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"{url!r} is not an absolute http(s) or grpc URL")
        if path[:1] == "?":
            path = "/" + path
        if "@" in netloc or "[" in netloc or not netloc:
            # Userinfo or an IPv6 literal: let urllib find the host and port.
            parts = urlsplit(url)
            host = parts.hostname or ""
            try:
                port = parts.port or DEFAULT_PORTS[scheme]
            except ValueError as exc:
                raise ValueError(f"{url!r} has an invalid port") from exc
        else:
            host, colon, port_text = netloc.rpartition(":")
            if not colon:
                host, port = netloc, DEFAULT_PORTS[scheme]
            elif not port_text:
                port = DEFAULT_PORTS[scheme]
            elif not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"{url!r} has an invalid port")
            else:
                port = int(port_text)
        if not host:
            raise ValueError(f"{url!r} is not an absolute http(s) or grpc URL")
        path = path or "/"
        method = method.upper()
        if scheme in ("grpc", "grpcs"):
            method = "POST"  # every gRPC call is an HTTP/2 POST
        return cls(method, scheme, host.lower(), port, path,
                   normalize_headers(headers))

    # -- lazily parsed views, computed at most once per request ---------------------------

    @property
    def query_string(self) -> str:
        cut = self.path.find("?")
        return "" if cut < 0 else self.path[cut + 1:]

    def header(self, name: str) -> str | None:
        """The header's value, repeated values joined with ',' (RFC 7230 §3.2.2)."""
        if self._headers is None:
            headers = self.headers
            if len(headers) < 8:
                # Few headers and usually one or two lookups: a scan beats building a dict.
                found = None
                for n, v in headers:
                    if n == name:
                        found = v if found is None else f"{found},{v}"
                return found
            combined: dict[str, str] = {}
            for n, v in self.headers:
                combined[n] = f"{combined[n]},{v}" if n in combined else v
            self._headers = combined
        return self._headers.get(name)

    def is_grpc(self) -> bool:
        """A gRPC call: a ``grpc(s)://`` URL or an ``application/grpc`` content type."""
        if self.scheme in ("grpc", "grpcs"):
            return True
        content_type = self.header("content-type")
        return content_type is not None and content_type.startswith("application/grpc")

    def query(self, name: str) -> str | None:
        """The first value of a query parameter (SPEC-NOTES §2.3: repeated → first)."""
        if self._query is None:
            params: dict[str, str] = {}
            for pair in self.query_string.split("&"):
                if not pair:
                    continue
                key, _, value = pair.partition("=")
                key = unquote_plus(key)
                if key not in params:
                    params[key] = unquote_plus(value)
            self._query = params
        return self._query.get(name)

    def replace(
        self,
        *,
        host: str | None = None,
        path: str | None = None,
        headers: tuple[tuple[str, str], ...] | None = None,
    ) -> RequestHead:
        return RequestHead(
            self.method, self.scheme, self.authority, self.port,
            self.path if path is None else path,
            self.headers if headers is None else headers,
            self.host if host is None else host,
        )

    def __repr__(self) -> str:
        return (f"RequestHead({self.method} {self.scheme}://{self.authority}:{self.port}"
                f"{self.path} host={self.host!r})")


def normalize_headers(headers: HeaderInput) -> tuple[tuple[str, str], ...]:
    """Header pairs with lower-case names; a mapping's list values become repeated pairs."""
    if not headers:
        return ()
    # A plain dict is the common case; isinstance against the Mapping ABC costs more than
    # the rest of this function for one header.
    items = headers.items() if type(headers) is dict or isinstance(headers, Mapping) else (
        headers)
    out: list[tuple[str, str]] = []
    for name, value in items:
        if value.__class__ is str:
            out.append((name.lower(), value))
        else:
            low = name.lower()
            out.extend((low, v) for v in value)
    return tuple(out)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host
