"""What ``MeshTransport`` and ``AsyncMeshTransport`` share: options, the flow, pools' recipe."""

from __future__ import annotations

import os
import random
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

import httpcore
import httpx

from meshclient import Mesh
from meshclient.balancing import BalancerConfig, live_endpoints
from meshclient.model import Service
from meshclient.routing import RoutingTable
from meshclient.store import Snapshot
from meshclient_httpx._exceptions import map_exception
from meshclient_httpx._flow import Flow
from meshclient_httpx._identity import TokenFile
from meshclient_httpx._mirror import MirrorSender
from meshclient_httpx._observe import Hook, Observer
from meshclient_httpx._pools import PoolKey
from meshclient_httpx._retry import Retries
from meshclient_httpx._tls import ClientCert, TLSContexts

__all__ = ["DEFAULT_LIMITS", "Shared", "map_exception"]

DEFAULT_LIMITS: Final = httpx.Limits(max_connections=64, max_keepalive_connections=16,
                                     keepalive_expiry=30.0)
"""Per endpoint (each endpoint has its own pool; ECOSYSTEM.md §1.2)."""


class Shared:
    """Options and state of one transport, independent of sync or async I/O."""

    def __init__(
        self,
        mesh: Mesh,
        *,
        strict: bool,
        http2: bool,
        limits: httpx.Limits,
        verify: ssl.SSLContext | None,
        client_cert: ClientCert | None,
        token_file: str | os.PathLike[str] | None,
        token_header: str,
        plaintext_same_node: bool,
        mirror_concurrency: int,
        on_request: Hook | None,
        balancer_config: BalancerConfig | None,
        rand: Callable[[], float] | None,
    ) -> None:
        if http2:
            try:
                import h2  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "http2=True needs the h2 package: pip install 'httpx[http2]'") from exc
        self.mesh = mesh
        self.strict = strict
        self.http2 = http2
        self.limits = limits
        self.clock: Callable[[], float] = time.monotonic
        rand = rand or random.Random().random
        self.tls = TLSContexts(default=verify, client_cert=client_cert)
        self.observer = Observer(on_request)
        balancer = mesh.balancer(rand=rand, config=balancer_config)
        token = None
        if token_file is not None:
            token = TokenFile(token_file, header=token_header, clock=self.clock)
        self.flow = Flow(balancer=balancer, retries=Retries(rand), mirrors=None,  # type: ignore[arg-type]
                         token=token, plaintext_same_node=plaintext_same_node,
                         clock=self.clock, wall=time.time, rand=rand)
        self.mirrors = MirrorSender(balancer=balancer, make_pool=self.sync_pool,
                                    key_for=self.flow.key, wall=time.time,
                                    concurrency=mirror_concurrency)
        self.flow.mirrors = self.mirrors
        self.lock = threading.Lock()

    def subscribe(self, on_change: Callable[[frozenset[tuple[str, int]]], None]) -> None:
        """Call ``on_change(live endpoints)`` after each mesh change, while the owner lives.

        The mesh keeps its listeners for good (it has no ``unsubscribe``), so the listener
        holds only weak references: a transport that is dropped is not kept alive by it.
        """
        method = weakref.WeakMethod(on_change)
        shared = weakref.ref(self)

        def listener(table: RoutingTable, snapshot: Snapshot) -> None:
            me, owner_changed = shared(), method()
            if me is None or owner_changed is None:
                return
            live = live_endpoints(snapshot)
            for pool in me.mirrors.pools.retire(live):
                pool.close()
            # Budgets belong to Services (GEP-3388): drop those of Services that are gone.
            me.flow.retries.budgets.forget({(s.meta.namespace, s.meta.name)
                                            for s in snapshot.of("Service").values()
                                            if isinstance(s, Service)})
            owner_changed(live)

        self.mesh.subscribe(listener)

    @property
    def async_shards(self) -> int:
        """Pools per endpoint for the async transport: never more than its connections."""
        most = self.limits.max_connections
        return ASYNC_SHARDS if most is None else max(1, min(ASYNC_SHARDS, most))

    def pool_options(self, key: PoolKey, shards: int = 1) -> dict[str, Any]:
        ssl_context = None
        https = key.scheme == b"https"
        if https:
            if key.ca is None:
                ssl_context = self.tls.default()
            else:
                ssl_context = self.tls.for_policy(key.ca or None,
                                                  verify_hostname=not key.expected)
        limits = self.limits
        return {
            "ssl_context": ssl_context,
            # An endpoint's shards (PoolSet) split its limits: together they never exceed them.
            "max_connections": _share(limits.max_connections, shards, key.shard),
            "max_keepalive_connections": _share(limits.max_keepalive_connections, shards,
                                                key.shard),
            "keepalive_expiry": limits.keepalive_expiry,
            "http1": not key.h2c,
            "http2": key.h2c or (self.http2 and https),
        }

    def sync_pool(self, key: PoolKey) -> httpcore.ConnectionPool:
        from meshclient_httpx._tls import CheckingBackend
        backend = CheckingBackend(key.expected) if key.expected else None
        return httpcore.ConnectionPool(network_backend=backend, **self.pool_options(key))

    def async_pool(self, key: PoolKey) -> httpcore.AsyncConnectionPool:
        from meshclient_httpx._netstreams import ReadableBackend
        from meshclient_httpx._tls import AsyncCheckingBackend
        backend = ReadableBackend(AsyncCheckingBackend(key.expected) if key.expected else None)
        return httpcore.AsyncConnectionPool(network_backend=backend,
                                            **self.pool_options(key, self.async_shards))

    def refuse(self, request: httpx.Request) -> httpx.UnsupportedProtocol:
        host = request.url.host
        return httpx.UnsupportedProtocol(
            f"meshclient strict mode: {host!r} is not a host of the mesh (no Gateway listener "
            "or Service claims it), so the request was not sent", request=request)


ASYNC_SHARDS: Final = 4
"""Pools per endpoint for the async transport at most (see ``_pools``)."""


def _share(limit: int | None, shards: int, shard: int) -> int | None:
    """Shard ``shard``'s part of ``limit`` split over ``shards`` (the parts sum to it)."""
    if limit is None:
        return None
    return limit // shards + (1 if shard < limit % shards else 0)
