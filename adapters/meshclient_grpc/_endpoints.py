"""One underlying grpc channel per endpoint, and the bookkeeping that retires them.

A mesh channel sends each call on the channel of the endpoint the balancer picked. Channels
are keyed by everything that identifies the connection (``ChannelKey``): the target
(``ipv4:10.0.0.7:8080`` skips the DNS resolver), the TLS name and trust, and the
``:authority`` the server sees (the name the caller dialled, not the pod IP). Every endpoint
channel gets the options that matter for pods (ECOSYSTEM.md §2.1): no HTTP proxy (proxy env
vars would otherwise apply to pod IPs), a local subchannel pool (the process-global one grows
when channels come and go, grpc/grpc#38327), keepalive within what servers accept by default
(one ping per 5 minutes with calls open), and reconnect backoff capped at 5 s rather than
120 s, since the mesh drops dead endpoints by itself.

``EndpointChannels`` only keeps books (STYLE.md §3): it makes channels on first use, caches
their multicallables, and hands back the channels to close when their endpoint leaves the
EndpointSlices; the owner closes them after a grace period (sync ``close()`` kills in-flight
calls; aio ``close(grace)`` waits for them), outside the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any, Final, Generic, NamedTuple, TypeVar

import attrs

__all__ = [
    "DEFAULT_OPTIONS",
    "ChannelKey",
    "ChannelStatistics",
    "Credentials",
    "EndpointChannels",
    "Target",
    "channel_options",
    "endpoint_target",
    "parse_target",
]

C = TypeVar("C")

DEFAULT_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.enable_http_proxy", 0),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 2),
    ("grpc.initial_reconnect_backoff_ms", 1_000),
    ("grpc.min_reconnect_backoff_ms", 1_000),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)
"""Options of every endpoint and gateway channel (callers' ``options`` are added after)."""

ENDPOINT: Final = "endpoint"
GATEWAY: Final = "gateway"
PASSTHROUGH: Final = "passthrough"


class Target:
    """What the caller dialled: ``grpc://host:port``, ``grpcs://host:port`` or ``host:port``."""

    __slots__ = ("authority", "host", "plain", "port", "scheme")

    def __init__(self, scheme: str, host: str, port: int, authority: str, plain: str) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.authority = authority
        """The ``:authority`` calls carry (as written, port included when given)."""
        self.plain = plain
        """The target a plain grpc channel would be given (passthrough)."""


def parse_target(target: str) -> Target:
    """Parse a mesh channel target.

    Raises:
        ValueError: ``target`` has no host, an invalid port or an unknown scheme.
    """
    rest = target
    scheme = "grpc"
    if "://" in target:
        scheme, _, rest = target.partition("://")
        scheme = scheme.lower()
        if scheme == "dns":
            scheme, rest = "grpc", rest.lstrip("/")
        elif scheme not in ("grpc", "grpcs"):
            raise ValueError(f"target {target!r}: scheme {scheme!r} is not grpc, grpcs or dns")
    rest = rest.rstrip("/")
    if rest.startswith("["):
        end = rest.find("]")
        host, port_text = rest[1:end], rest[end + 2:] if end > 0 else ""
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            host, port_text = rest, ""
    default = 80 if scheme == "grpc" and "://" in target else 443
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ValueError(f"target {target!r}: {port_text!r} is not a port")
    if not host:
        raise ValueError(f"target {target!r} has no host")
    port = int(port_text) if port_text else default
    return Target(scheme, host.lower(), port, rest.lower(), f"{rest}" if port_text else
                  f"{rest}:{port}")


class ChannelKey(NamedTuple):
    kind: str
    """``endpoint`` (retired with its EndpointSlice entry), ``gateway`` or ``passthrough``."""
    target: str
    """The grpc target: ``ipv4:ip:port``, ``ipv6:[ip]:port`` or the caller's own target."""
    address: str
    """The endpoint IP (what retirement matches); the host for other kinds."""
    port: int
    tls_name: str | None
    """None: plaintext. Otherwise TLS, verifying (and sending as SNI) this name; ``""``
    leaves the name to grpc (passthrough)."""
    ca: str | None
    """The BackendTLSPolicy CA bundle (PEM); None: the channel's default roots."""
    authority: str | None
    """``grpc.default_authority``; None lets grpc derive it from the target."""


def endpoint_target(address: str, port: int) -> str:
    """The resolver-free grpc target of an endpoint address."""
    return f"ipv6:[{address}]:{port}" if ":" in address else f"ipv4:{address}:{port}"


def channel_options(key: ChannelKey, extra: tuple[tuple[str, Any], ...]
                    ) -> list[tuple[str, Any]]:
    """The options of the channel for ``key``: ours for mesh hops, then the caller's."""
    if key.kind == PASSTHROUGH:
        return list(extra)
    out: list[tuple[str, Any]] = list(DEFAULT_OPTIONS)
    if key.authority:
        out.append(("grpc.default_authority", key.authority))
    if key.tls_name:
        out.append(("grpc.ssl_target_name_override", key.tls_name))
    out.extend(extra)
    return out


class Entry(Generic[C]):
    """One channel and the multicallables made on it."""

    __slots__ = ("calls", "channel", "key")

    def __init__(self, key: ChannelKey, channel: C) -> None:
        self.key = key
        self.channel = channel
        self.calls: dict[tuple[object, ...], Any] = {}


@attrs.frozen(kw_only=True)
class ChannelStatistics:
    open: int
    """Channels held now (endpoint, gateway and passthrough)."""
    retired: int
    """Channels whose endpoint went away, waiting for their grace period to end."""
    closed: int
    """Channels closed since the mesh channel was made."""
    targets: tuple[str, ...]
    """Targets of the open channels, sorted."""


class EndpointChannels(Generic[C]):
    """Channels by ``ChannelKey``, made on first use by ``make``; thread-safe."""

    def __init__(self, make: Callable[[ChannelKey], C]) -> None:
        self._make = make
        self._entries: dict[ChannelKey, Entry[C]] = {}
        self._lock = threading.Lock()
        self._retired = 0
        self._closed = 0
        self.closing = False

    def get(self, key: ChannelKey) -> Entry[C]:
        entry = self._entries.get(key)
        if entry is None:
            with self._lock:
                if self.closing:
                    raise ValueError("the mesh channel is closed")
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = Entry(key, self._make(key))
        return entry

    def call(self, entry: Entry[C], shape: str, method: str, ser: Any, de: Any,
             registered: bool) -> Any:
        """The ``shape`` multicallable for ``method`` on ``entry``'s channel, made once.

        Made under the lock: with ``_registered_method=True`` grpcio registers the method on
        the channel, which it documents as not thread-safe (ECOSYSTEM.md §2.1).
        """
        ck = (shape, method, ser, de, registered)
        got = entry.calls.get(ck)
        if got is None:
            with self._lock:
                got = entry.calls.get(ck)
                if got is None:
                    factory = getattr(entry.channel, shape)
                    got = factory(method, request_serializer=ser, response_deserializer=de,
                                  _registered_method=registered)
                    entry.calls[ck] = got
        return got

    def retire(self, live: Collection[tuple[str, int]]) -> list[C]:
        """Forget endpoint channels whose (address, port) is not in ``live``.

        Returns:
            Their channels, for the owner to close after its grace period. A call already
            running on one finishes there; new calls make a fresh channel if the endpoint
            comes back.
        """
        out: list[C] = []
        with self._lock:
            for key, entry in list(self._entries.items()):
                if key.kind == ENDPOINT and (key.address, key.port) not in live:
                    del self._entries[key]
                    out.append(entry.channel)
            self._retired += len(out)
        return out

    def closed_one(self, retired: bool) -> None:
        with self._lock:
            self._closed += 1
            if retired:
                self._retired -= 1

    def drain(self) -> list[C]:
        """Forget every channel and return them, to be closed (mesh channel close)."""
        with self._lock:
            self.closing = True
            out = [e.channel for e in self._entries.values()]
            self._entries.clear()
        return out

    def statistics(self) -> ChannelStatistics:
        with self._lock:
            return ChannelStatistics(
                open=len(self._entries), retired=self._retired, closed=self._closed,
                targets=tuple(sorted(k.target for k in self._entries)),
            )

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<EndpointChannels open={s.open} retired={s.retired} closed={s.closed}>"


class Credentials:
    """``grpc.ChannelCredentials`` per trust bundle, made once (sync and aio share them).

    Args:
        root_certificates: PEM roots for TLS hops whose backend has no BackendTLSPolicy CA
            (``grpcs://`` targets, gateway hops); None: grpc's default (system) roots.
        client_cert: ``(certificate_chain_pem, private_key_pem)`` presented on every TLS
            hop, for backends that require mTLS.
    """

    def __init__(self, root_certificates: bytes | None,
                 client_cert: tuple[bytes, bytes] | None) -> None:
        self._roots = root_certificates
        self._chain: bytes | None = client_cert[0] if client_cert is not None else None
        self._key: bytes | None = client_cert[1] if client_cert is not None else None
        self._cache: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def for_ca(self, ca_pem: str | None) -> Any:
        got = self._cache.get(ca_pem)
        if got is None:
            import grpc

            with self._lock:
                roots = ca_pem.encode("ascii") if ca_pem else self._roots
                got = self._cache[ca_pem] = grpc.ssl_channel_credentials(
                    root_certificates=roots, private_key=self._key,
                    certificate_chain=self._chain)
        return got
