"""TLS to backends: shared SSL contexts, and the peer-identity check made during the handshake.

BackendTLSPolicy (SPEC-NOTES §8) says "connect to this Service with TLS": ``validation.hostname``
is the SNI, and the name verified unless ``subjectAltNames`` is set; then the served
certificate must carry one of those SANs (DNS names or URIs such as SPIFFE IDs) and the
hostname is SNI only. Python's ``ssl`` verifies DNS names itself (``check_hostname``) but not
URI SANs, so a pool whose policy lists SANs gets a network backend that checks the peer right
after the handshake, before httpcore writes a single request byte (ECOSYSTEM.md §1.6).

Contexts are expensive (tens of milliseconds to load a trust store) and are shared by every
pool with the same trust; httpcore sets ALPN on the context at each connect, so a context is
never shared between HTTP/2 and HTTP/1-only pools: one ``TLSContexts`` serves one ALPN choice.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable
from typing import Final

import httpcore

from meshclient_httpx._netstreams import WrappedStream

__all__ = [
    "AsyncCheckingBackend",
    "CheckingBackend",
    "ClientCert",
    "TLSContexts",
    "peer_problem",
]

ClientCert = tuple[str, str] | tuple[str, str, str]
"""(certfile, keyfile) or (certfile, keyfile, password): files, as ``load_cert_chain`` needs."""

Expected = tuple[tuple[str, str], ...]
"""The policy's ``subjectAltNames`` as (type, value) pairs: ``Hostname`` or ``URI``."""

_SAN_KINDS: Final = {"Hostname": "DNS", "URI": "URI"}


class TLSContexts:
    """One ``ssl.SSLContext`` per trust configuration, created on first use and then shared.

    Args:
        default: The context for ``https://`` mesh requests whose backend has no
            BackendTLSPolicy, and for gateway hops; None builds one on the system store.
        client_cert: A client certificate to present on every context built here (the
            caller's own ``default`` context is used as given).
    """

    def __init__(self, *, default: ssl.SSLContext | None = None,
                 client_cert: ClientCert | None = None) -> None:
        self._client_cert = client_cert
        self._default = default
        self._cache: dict[tuple[str | None, bool], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def default(self) -> ssl.SSLContext:
        ctx = self._default
        if ctx is None:
            ctx = self._default = self.for_policy(None, verify_hostname=True)
        return ctx

    def for_policy(self, ca_pem: str | None, *, verify_hostname: bool) -> ssl.SSLContext:
        """The context trusting ``ca_pem`` (None: the system store).

        Args:
            ca_pem: PEM bundle from the policy's ConfigMaps.
            verify_hostname: False when the policy lists ``subjectAltNames``: the chain is
                still verified, and ``peer_problem`` checks the names instead.
        """
        key = (ca_pem, verify_hostname)
        ctx = self._cache.get(key)
        if ctx is not None:
            return ctx
        with self._lock:
            ctx = self._cache.get(key)
            if ctx is None:
                ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else (
                    ssl.create_default_context())
                if not verify_hostname:
                    ctx.check_hostname = False  # CA still verified: verify_mode stays REQUIRED
                if self._client_cert is not None:
                    ctx.load_cert_chain(*self._client_cert)
                self._cache[key] = ctx
            return ctx

    def reload_client_cert(self) -> None:
        """Present the (rotated) client certificate files on the next handshakes.

        Reloading a live context is enough (ECOSYSTEM.md §1.6); open connections keep the
        certificate they were made with until they close.
        """
        if self._client_cert is None:
            return
        with self._lock:
            for ctx in self._cache.values():
                ctx.load_cert_chain(*self._client_cert)


def _dns_matches(pattern: str, name: str) -> bool:
    # RFC 6125 §6.4.3: a wildcard covers exactly one left-most label.
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, dot, rest = name.partition(".")
        return bool(head) and bool(dot) and rest == pattern[2:]
    return False


def peer_problem(peer: object, expected: Expected) -> str | None:
    """Why the peer certificate fails the policy's ``subjectAltNames``; None when it passes.

    BTP ``validation.subjectAltNames``: the certificate MUST carry at least one SAN equal to
    one entry (a Hostname entry may be a wildcard, and a wildcard DNS SAN covers a name).

    Args:
        peer: ``SSLObject``/``SSLSocket.getpeercert()`` of a verified connection.
        expected: The policy's entries.
    """
    if not isinstance(peer, dict):
        return "the server presented no verified certificate"
    sans: Iterable[tuple[str, str]] = peer.get("subjectAltName", ())
    dns = [v for k, v in sans if k == "DNS"]
    uris = {v for k, v in sans if k == "URI"}
    for kind, value in expected:
        if kind == "URI" and value in uris:
            return None
        if kind == "Hostname" and any(
            _dns_matches(d, value) or _dns_matches(value, d) for d in dns
        ):
            return None
    want = ", ".join(f"{_SAN_KINDS.get(k, k)}:{v}" for k, v in expected)
    got = ", ".join(f"{k}:{v}" for k, v in sans) or "none"
    return f"peer identity mismatch: certificate SANs [{got}] include none of [{want}]"


def _check(stream: httpcore.NetworkStream | httpcore.AsyncNetworkStream,
           expected: Expected) -> str | None:
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return "no TLS session after the handshake"
    return peer_problem(ssl_object.getpeercert(), expected)


class _CheckingStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, expected: Expected) -> None:
        self._s = inner
        self._expected = expected

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._s.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._s.write(buffer, timeout)

    def close(self) -> None:
        self._s.close()

    def get_extra_info(self, info: str) -> object:
        return self._s.get_extra_info(info)

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._s.start_tls(ssl_context, server_hostname, timeout)
        problem = _check(tls, self._expected)
        if problem is not None:
            tls.close()
            raise httpcore.ConnectError(f"{server_hostname}: {problem}")
        return tls


class CheckingBackend(httpcore.NetworkBackend):
    """``SyncBackend`` whose TLS streams are refused unless the peer has an expected SAN."""

    def __init__(self, expected: Expected) -> None:
        self._inner = httpcore.SyncBackend()
        self._expected = expected

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _CheckingStream(stream, self._expected)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncCheckingStream(WrappedStream):
    __slots__ = ("_expected",)

    def __init__(self, inner: httpcore.AsyncNetworkStream, expected: Expected) -> None:
        super().__init__(inner)
        self._expected = expected

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        tls = await self._s.start_tls(ssl_context, server_hostname, timeout)
        problem = _check(tls, self._expected)
        if problem is not None:
            await tls.aclose()
            raise httpcore.ConnectError(f"{server_hostname}: {problem}")
        return tls


class AsyncCheckingBackend(httpcore.AsyncNetworkBackend):
    """The async twin of ``CheckingBackend`` (anyio: asyncio and trio alike)."""

    def __init__(self, expected: Expected) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._expected = expected

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address,
                                               socket_options)
        return _AsyncCheckingStream(stream, self._expected)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
