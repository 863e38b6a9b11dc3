"""``Mesh``: configuration sources, the current routing table, and ``resolve``."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from meshclient.balancing import Balancer, BalancerConfig, EndpointFeed, Locality
from meshclient.errors import ConfigError
from meshclient.model import Object, parse_object
from meshclient.routing import (
    Decision,
    ObjectStatus,
    RequestHead,
    RoutingOptions,
    RoutingTable,
    compile_table,
)
from meshclient.sources import (
    DEFAULT_SYNC_TIMEOUT,
    FileSource,
    KubeOptions,
    KubernetesRunner,
    ManifestSet,
    SyncStatus,
    Whereabouts,
    whereabouts,
)
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
        self._feed: EndpointFeed | None = None
        self.table: RoutingTable = compile_table(self.store.snapshot, self.options)
        self._compiled_from: Snapshot = self.store.snapshot
        self._seen: Snapshot = self._compiled_from

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
            if snapshot is not self._seen:
                # Routing never reads EndpointSlices (only the balancer does): the most
                # frequent change in a cluster costs a balancer update, not a recompile.
                if snapshot.changed_kinds(self._compiled_from) - _ENDPOINT_KINDS:
                    # The previous table lends its compiled rules to the new one: a change
                    # to one route recompiles that route, not the whole configuration.
                    self.table = compile_table(snapshot, self.options, previous=self.table)
                    self._compiled_from = snapshot
                if self._feed is not None and (
                    snapshot.changed_kinds(self._seen) & _BALANCER_KINDS
                ):
                    self._feed.advance(snapshot)
                self._seen = snapshot
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
        are shared by the HTTP and gRPC sides of one process. Without ``config``, locality
        comes from where the client runs (``NODE_NAME`` and ``MESHCLIENT_ZONE``, or the
        ``from_kubernetes`` arguments).
        """
        with self._lock:
            if self._balancer is None:
                if config is None:
                    # The client's node and zone (from_kubernetes arguments, or the downward
                    # API's environment); without them no endpoint counts as local.
                    where = self.whereabouts or whereabouts()
                    config = BalancerConfig(locality=Locality(node=where.node, zone=where.zone))
                balancer = Balancer(rand=rand, config=config)
                self._feed = EndpointFeed(balancer, self._seen)
                self._balancer = balancer
            return self._balancer

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(table, snapshot)`` after every recompile (adapters' endpoint sets)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener`` (a closed transport or channel); unknown ones are ignored."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

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
        if self._kube is not None:
            self._kube.stop()

    # == Kubernetes source =================================================================
    # Owned by the Kubernetes source (issue 5): construction, readiness, staleness, stop.
    # The watching happens in meshclient.sources (_kube_watch, _kube_client, _kubernetes).

    _kube: KubernetesRunner | None = None
    whereabouts: Whereabouts | None = None
    """The client's own namespace, node and zone (Kubernetes meshes; None otherwise)."""

    @classmethod
    def _for_kubernetes(
        cls, *, configuration: object | None, kubeconfig: str | None, context: str | None,
        namespaces: Iterable[str] | None, options: KubeOptions | None,
        namespace: str | None, node: str | None, zone: str | None, mesh_options: Any,
    ) -> tuple[Mesh, KubernetesRunner]:
        where = whereabouts(namespace, node, zone)
        mesh = cls(namespace=where.namespace, **mesh_options)
        mesh.whereabouts = where
        opts = options or KubeOptions()
        if namespaces is not None:
            opts = attrs.evolve(opts, namespaces=tuple(namespaces))

        async def make_client() -> object:
            from meshclient.sources._kube_config import make_api_client

            return await make_api_client(configuration,  # type: ignore[arg-type]
                                         kubeconfig=kubeconfig, context=context)

        runner = KubernetesRunner(mesh.store, opts, make_client, mesh.refresh)
        mesh._kube = runner
        return mesh, runner

    @classmethod
    def from_kubernetes(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        configuration: object | None = None,
        namespaces: Iterable[str] | None = None,
        options: KubeOptions | None = None,
        namespace: str | None = None,
        node: str | None = None,
        zone: str | None = None,
        wait: bool = True,
        timeout: float | None = DEFAULT_SYNC_TIMEOUT,
        **mesh_options: Any,
    ) -> Mesh:
        """A mesh that follows the cluster, for sync code: watches on a background thread.

        Args:
            kubeconfig: A kubeconfig file; without one: in-cluster config in a pod, else
                ``KUBECONFIG`` / ``~/.kube/config``.
            context: The kubeconfig context (its current one by default).
            configuration: A ready ``kubernetes_asyncio.client.Configuration`` instead.
            namespaces: Watch namespaced kinds only in these (None: all namespaces).
            options: Kinds, selectors, timeouts, batching (``KubeOptions``).
            namespace, node, zone: The client's own; default ``POD_NAMESPACE``,
                ``NODE_NAME``, ``MESHCLIENT_ZONE`` from the environment (downward API).
            wait: Return only once every kind's initial list is in the table.
            timeout: How long ``wait`` may take.
            **mesh_options: ``gateways``, ``gateway_classes``, ``cluster_domain``.

        Raises:
            SourceError: No configuration, or not synced within ``timeout`` (the message
                names the kinds still missing and the errors, e.g. a missing RBAC rule);
                the watch thread is stopped before raising.
        """
        mesh, runner = cls._for_kubernetes(
            configuration=configuration, kubeconfig=kubeconfig, context=context,
            namespaces=namespaces, options=options, namespace=namespace, node=node, zone=zone,
            mesh_options=mesh_options)
        runner.start_thread()
        if wait:
            try:
                runner.wait_blocking(timeout)
            except BaseException:
                runner.stop()
                raise
        return mesh

    @classmethod
    async def connect_kubernetes(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        configuration: object | None = None,
        namespaces: Iterable[str] | None = None,
        options: KubeOptions | None = None,
        namespace: str | None = None,
        node: str | None = None,
        zone: str | None = None,
        wait: bool = True,
        timeout: float | None = DEFAULT_SYNC_TIMEOUT,
        **mesh_options: Any,
    ) -> Mesh:
        """A mesh that follows the cluster, for async code: watches on the running loop.

        Recompiles run in the loop's default executor, so they never block it. Arguments
        and errors as ``from_kubernetes``; ``await mesh.aclose()`` stops it.
        """
        mesh, runner = cls._for_kubernetes(
            configuration=configuration, kubeconfig=kubeconfig, context=context,
            namespaces=namespaces, options=options, namespace=namespace, node=node, zone=zone,
            mesh_options=mesh_options)
        await runner.start()
        if wait:
            try:
                await runner.wait(timeout)
            except BaseException:
                await runner.aclose()
                raise
        return mesh

    @property
    def ready(self) -> bool:
        """Whether every source has delivered its initial state into the table (a mesh
        without a Kubernetes source is ready at once)."""
        return self._kube is None or self._kube.ready

    async def wait_synced(self, timeout: float | None = DEFAULT_SYNC_TIMEOUT) -> None:
        """Wait until ``ready``, from any event loop.

        Raises:
            SourceError: Not ready within ``timeout``; the message says what is missing.
        """
        if self._kube is not None:
            await self._kube.wait(timeout)

    def wait_synced_blocking(self, timeout: float | None = DEFAULT_SYNC_TIMEOUT) -> None:
        """Block until ``ready`` (sync code; never call it on the watch loop itself).

        Raises:
            SourceError: Not ready within ``timeout``.
        """
        if self._kube is not None:
            self._kube.wait_blocking(timeout)

    def sync_status(self) -> SyncStatus | None:
        """The Kubernetes source's state: synced, stale, age of the last sync, per-kind
        phases and errors (None without a Kubernetes source)."""
        return self._kube.status() if self._kube is not None else None

    async def aclose(self) -> None:
        """``close()`` for async code: waits until the watches have closed their client."""
        if self._kube is not None:
            await self._kube.aclose()
        for source in self._sources:
            source.stop()

    # == end of the Kubernetes source section ==============================================

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        t = self.table
        hosts = sum(len(c.exact) + len(c.wildcard) for c in t.claims.values())
        return f"<Mesh version={t.version} gateway_hosts={hosts} service_hosts={len(t.services)}>"


_ENDPOINT_KINDS: frozenset[str] = frozenset({"EndpointSlice"})
_BALANCER_KINDS: frozenset[str] = frozenset({"Service", "EndpointSlice"})
