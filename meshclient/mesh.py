"""``Mesh``: configuration sources, the current routing table, and ``resolve``."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from meshclient.balancing import Balancer, BalancerConfig
from meshclient.errors import ConfigError
from meshclient.model import EndpointSlice, Object, Service, parse_object
from meshclient.routing import (
    Decision,
    ObjectStatus,
    RequestHead,
    RoutingOptions,
    RoutingTable,
    compile_table,
)
from meshclient.sources import FileSource, ManifestSet
from meshclient.store import Snapshot, Store

__all__ = ["Mesh"]

_log = logging.getLogger("meshclient")

Listener = Callable[[RoutingTable, Snapshot], object]


class Mesh:
    """The mesh configuration a client acts on, recompiled whenever a source changes.

    Requests read ``table`` once and use that table throughout, so a reload in the middle of
    a request never mixes two configurations. A source that fails to reload keeps the last
    good objects; a bad object is reported and the rest keeps serving.

    Args:
        store: Where sources write objects; a new empty one by default.
        gateways: ``namespace/name`` of the Gateways this client acts for.
        gateway_classes: GatewayClass names whose Gateways this client acts for. With
            neither given, the client acts for every Gateway in its configuration.
        namespace: The client's own namespace (GAMMA consumer routes, short Service names);
            defaults to ``POD_NAMESPACE`` from the environment.
        cluster_domain: The cluster DNS domain for Service names.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        gateways: Iterable[str] = (),
        gateway_classes: Iterable[str] = (),
        namespace: str | None = None,
        cluster_domain: str = "cluster.local",
    ) -> None:
        gateways = tuple(gateways)
        for g in gateways:
            if g.count("/") != 1 or not all(g.split("/")):
                raise ValueError(f"gateways: {g!r} is not 'namespace/name'")
        self.options = RoutingOptions(
            gateways=frozenset(gateways),
            gateway_classes=frozenset(gateway_classes),
            namespace=namespace if namespace is not None else os.environ.get("POD_NAMESPACE"),
            cluster_domain=cluster_domain,
        )
        self.store = store or Store()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._sources: list[FileSource] = []
        self._source_problems: tuple[object, ...] = ()
        self._balancer: Balancer | None = None
        self.table: RoutingTable = compile_table(self.store.snapshot, self.options)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_files(
        cls,
        *paths: str | os.PathLike[str],
        gateways: Iterable[str] = (),
        gateway_classes: Iterable[str] = (),
        namespace: str | None = None,
        watch: bool = True,
        cluster_domain: str = "cluster.local",
    ) -> Mesh:
        """A mesh from YAML manifests (files and directories), reloaded when they change.

        Objects without a namespace go to ``namespace`` (or ``default``). With ``watch``, a
        background thread follows the files; ``close()`` stops it.
        """
        mesh = cls(gateways=gateways, gateway_classes=gateway_classes, namespace=namespace,
                   cluster_domain=cluster_domain)
        source = FileSource(
            tuple(os.fspath(p) for p in paths),
            namespace=mesh.options.namespace or "default",
            store=mesh.store,
            on_change=mesh._manifests_changed,
        )
        source.load()
        mesh._sources.append(source)
        if watch:
            source.start()
        return mesh

    @classmethod
    def from_objects(
        cls, objects: Iterable[Object | Mapping[str, Any]], **options: Any
    ) -> Mesh:
        """A mesh from parsed objects or raw Kubernetes dicts (tests, embedding)."""
        mesh = cls(**options)
        parsed: list[Object] = []
        errors: list[ConfigError] = []
        for obj in objects:
            if isinstance(obj, Mapping):
                got, errs = parse_object(obj, mesh.options.namespace or "default")
                errors.extend(errs)
                if got is not None:
                    parsed.append(got)
            else:
                parsed.append(obj)
        mesh.store.replace(parsed, errors)
        mesh.refresh()
        return mesh

    # -- the table ----------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self.store.snapshot

    def refresh(self) -> RoutingTable:
        """Recompile from the store's current snapshot (sources call this on change)."""
        with self._lock:
            snapshot = self.store.snapshot
            if snapshot.version != self.table.version:
                self.table = compile_table(snapshot, self.options)
                if self._balancer is not None:
                    _update_endpoints(self._balancer, snapshot)
                for listener in tuple(self._listeners):
                    try:
                        listener(self.table, snapshot)
                    except Exception:
                        _log.exception("a mesh change listener failed")
            return self.table

    def balancer(
        self, *, rand: Callable[[], float], config: BalancerConfig | None = None
    ) -> Balancer:
        """The endpoint balancer every adapter of this mesh shares, kept in step with it.

        The first call creates it (adapters pass their random source: the core has none of
        its own); later calls return the same balancer, so outlier state and in-flight counts
        are shared by the HTTP and gRPC sides of one process.
        """
        with self._lock:
            if self._balancer is None:
                balancer = Balancer(rand=rand, config=config or BalancerConfig())
                _update_endpoints(balancer, self.store.snapshot)
                self._balancer = balancer
            return self._balancer

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(table, snapshot)`` after every recompile (adapters' endpoint sets)."""
        self._listeners.append(listener)

    def _manifests_changed(self, manifests: ManifestSet) -> None:
        self._source_problems = tuple(manifests.errors)
        self.refresh()

    # -- deciding -----------------------------------------------------------------------

    def decide(self, head: RequestHead) -> Decision:
        """Route one parsed request against the current table (pure; no I/O)."""
        return self.table.decide(head)

    def resolve(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] | None = None,
    ) -> Decision:
        """What meshclient would do with this request, without sending it.

        Raises:
            ValueError: ``url`` is not an absolute http(s) or grpc URL.
        """
        return self.table.decide(RequestHead.from_url(method, url, headers))

    # -- reporting ----------------------------------------------------------------------

    def statuses(self) -> tuple[ObjectStatus, ...]:
        return self.table.statuses

    @property
    def problems(self) -> tuple[object, ...]:
        """Every problem the sources and the parser found (files, documents, objects)."""
        if self._sources:
            return self._source_problems
        return tuple(self.store.snapshot.errors)

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        for source in self._sources:
            source.stop()

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        t = self.table
        hosts = sum(len(c.exact) + len(c.wildcard) for c in t.claims.values())
        return f"<Mesh version={t.version} gateway_hosts={hosts} service_hosts={len(t.services)}>"


def _update_endpoints(balancer: Balancer, snapshot: Snapshot) -> None:
    balancer.update(
        (s for s in snapshot.of("Service").values() if isinstance(s, Service)),
        (e for e in snapshot.of("EndpointSlice").values() if isinstance(e, EndpointSlice)),
    )
