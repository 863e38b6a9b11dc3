"""The Kubernetes source end to end: the real kubernetes-asyncio client, the fake API server."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
import time
from pathlib import Path

import attrs
import pytest
import yaml

from meshclient import Mesh
from meshclient.errors import SourceError
from meshclient.routing import Action
from meshclient.sources import DEFAULT_KINDS, Phase
from tests.routing import helpers as h
from tests.sources.kube.apiserver import FakeApiServer
from tests.sources.kube.conftest import (
    FAST,
    configuration,
    connect,
    names,
    run,
    until,
    until_blocking,
)


def _world(api: FakeApiServer) -> None:
    api.apply(h.gateway())
    api.apply(h.service("svc"))
    api.apply(h.endpoint_slice("svc"))
    api.apply(h.http_route("r1"))


def _route_names(mesh: Mesh) -> set[str]:
    return {name for _, name in names(mesh, "HTTPRoute")}


class TestSync:
    def test_connect_initial_lists_ready_and_routing(self, api: FakeApiServer) -> None:
        """After connect every kind is listed, the mesh is ready and routes requests."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            try:
                assert mesh.ready
                status = mesh.sync_status()
                assert status is not None and status.synced and not status.stale
                assert all(k.synced for k in status.kinds)
                assert mesh.resolve("GET", "http://example.com/").action is Action.FORWARD
            finally:
                await mesh.aclose()

        run(body())

    def test_connect_initial_sync_compiles_once(self, api: FakeApiServer) -> None:
        """Lists of all kinds are held back and published as one batch, one compile."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            try:
                status = mesh.sync_status()
                assert status is not None and status.batches == 1
                assert mesh.table.version == mesh.snapshot.version == 1
            finally:
                await mesh.aclose()

        run(body())

    def test_from_kubernetes_sync_thread_follows_changes(self, api: FakeApiServer) -> None:
        """The sync entry point watches on its own thread; close() stops it."""
        _world(api)
        mesh = Mesh.from_kubernetes(configuration=configuration(api), options=FAST, timeout=10)
        try:
            assert mesh.ready
            api.apply(h.http_route("r2", hostnames=["b.example.com"]))
            until_blocking(lambda: mesh.resolve("GET", "http://b.example.com/").action
                           is Action.FORWARD, what="the new route")
        finally:
            mesh.close()
        until_blocking(lambda: api.open_watches() == 0, what="the watches to close")

    def test_connect_namespaces_watch_only_those(self, api: FakeApiServer) -> None:
        """Namespace scoping lists namespaced kinds under /namespaces/{ns}/ only."""
        api.apply(h.http_route("mine", namespace="team-a"))
        api.apply(h.http_route("theirs", namespace="team-b"))

        async def body() -> None:
            mesh = await connect(api, namespaces=["team-a"])
            try:
                assert names(mesh, "HTTPRoute") == {("team-a", "mine")}
                routes = [p for p, _ in api.requests if p.endswith("/httproutes")]
                assert routes and all("/namespaces/team-a/" in p for p in routes)
            finally:
                await mesh.aclose()

        run(body())

    def test_connect_own_namespace_node_zone_from_env(
        self, api: FakeApiServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """POD_NAMESPACE, NODE_NAME and MESHCLIENT_ZONE give the client's whereabouts."""
        monkeypatch.setenv("POD_NAMESPACE", "shop")
        monkeypatch.setenv("NODE_NAME", "node-1")
        monkeypatch.setenv("MESHCLIENT_ZONE", "zone-a")

        async def body() -> None:
            mesh = await connect(api, zone="zone-b")
            try:
                assert mesh.options.namespace == "shop"
                assert mesh.whereabouts is not None
                assert (mesh.whereabouts.node, mesh.whereabouts.zone) == ("node-1", "zone-b")
            finally:
                await mesh.aclose()

        run(body())


class TestWatch:
    def test_watch_added_modified_deleted_reach_table(self, api: FakeApiServer) -> None:
        """Each event type changes the table: a new host, a changed one, a removed one."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            try:
                api.apply(h.http_route("r2", hostnames=["b.example.com"]))
                await until(lambda: mesh.resolve("GET", "http://b.example.com/").action
                            is Action.FORWARD, what="ADDED")
                api.apply(h.http_route("r2", hostnames=["c.example.com"]))
                await until(lambda: mesh.resolve("GET", "http://c.example.com/").action
                            is Action.FORWARD, what="MODIFIED")
                api.delete(h.http_route("r2"))
                await until(lambda: "r2" not in _route_names(mesh), what="DELETED")
            finally:
                await mesh.aclose()

        run(body())

    def test_watch_resumes_from_bookmark_version(self) -> None:
        """After a bookmark the next watch asks for the bookmark's resourceVersion."""
        kinds = tuple(k for k in DEFAULT_KINDS if k.kind == "HTTPRoute")
        with FakeApiServer(kinds, bookmark_interval=0.05) as api:
            api.apply(h.http_route("r1"))

            async def body() -> None:
                opts = attrs.evolve(FAST, kinds=kinds, watch_timeout=1)
                mesh = await connect(api, options=opts)
                try:
                    listed = api.resource_version
                    api.bump(5)  # other kinds changed: only a bookmark tells this watch
                    bumped = str(api.resource_version)
                    await until(lambda: any(q.get("resourceVersion") == bumped
                                            and q.get("watch") for _, q in api.requests),
                                timeout=5, what="a watch resumed from the bookmark")
                    assert bumped != str(listed)
                finally:
                    await mesh.aclose()

            run(body())

    def test_watch_expired_relists_without_dropping_snapshot(self, api: FakeApiServer) -> None:
        """410 Gone relists and applies the difference; routes never vanish meanwhile."""
        _world(api)
        api.apply(h.http_route("r3", hostnames=["c.example.com"]))

        async def body() -> None:
            mesh = await connect(api)
            seen: list[set[str]] = []
            mesh.subscribe(lambda table, snap: seen.append(
                {n for _, n in snap.of("HTTPRoute")}))
            try:
                # Changes the watch never hears of (lost to compaction): only a relist finds them.
                api.apply(h.http_route("r2", hostnames=["b.example.com"]), notify=False)
                api.delete(h.http_route("r3"), notify=False)
                api.expire_watches()
                await until(lambda: bool(seen) and seen[-1] == {"r1", "r2"},
                            what="the relist to reach the table")
                status = mesh.sync_status()
                assert status is not None
                routes = next(k for k in status.kinds if k.kind == "HTTPRoute")
                assert routes.relists >= 1
                assert seen and all("r1" in s for s in seen), seen
                assert seen[-1] == {"r1", "r2"}
            finally:
                await mesh.aclose()

        run(body())

    def test_watch_dropped_connection_resumes_without_relist(self, api: FakeApiServer) -> None:
        """A cut connection resumes the watch from its resourceVersion; nothing is relisted."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            try:
                await until(lambda: api.open_watches() >= len(DEFAULT_KINDS),
                            what="every watch open")
                lists_before = _lists(api)
                api.drop_watches()
                api.apply(h.http_route("r2", hostnames=["b.example.com"]))
                await until(lambda: "r2" in _route_names(mesh), what="the resumed watch")
                assert _lists(api) == lists_before
            finally:
                await mesh.aclose()

        run(body())

    def test_watch_cut_mid_line_resumes(self, api: FakeApiServer) -> None:
        """Half an event line then EOF is a broken stream: resume, never a bad object."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            try:
                await until(lambda: api.open_watches() >= len(DEFAULT_KINDS),
                            what="every watch open")
                api.drop_watches(mid_line=True)
                api.apply(h.http_route("r2", hostnames=["b.example.com"]))
                await until(lambda: "r2" in _route_names(mesh), what="the resumed watch")
                assert not mesh.snapshot.errors
            finally:
                await mesh.aclose()

        run(body())

    def test_watch_hung_connection_times_out_and_reconnects(self, api: FakeApiServer) -> None:
        """A watch that sends headers then nothing is abandoned after the read timeout."""
        _world(api)

        async def body() -> None:
            opts = attrs.evolve(FAST, read_timeout=0.3)
            mesh = await connect(api, options=opts)
            try:
                api.hang = True
                api.drop_watches()
                watches = api.watch_count
                await until(lambda: api.watch_count >= watches + 2 * len(DEFAULT_KINDS),
                            timeout=5, what="reconnects after read timeouts")
                api.hang = False
                api.apply(h.http_route("r2", hostnames=["b.example.com"]))
                await until(lambda: "r2" in _route_names(mesh), timeout=5,
                            what="the watch after the hang")
            finally:
                await mesh.aclose()

        run(body())

    def test_watch_burst_coalesces_into_one_recompile(self, api: FakeApiServer) -> None:
        """Fifty quick changes become one batch (a few on a loaded machine), not fifty."""
        _world(api)

        async def body() -> None:
            opts = attrs.evolve(FAST, debounce=0.1, max_delay=2.0)
            mesh = await connect(api, options=opts)
            compiles: list[int] = []
            mesh.subscribe(lambda table, snap: compiles.append(table.version))
            try:
                for i in range(50):
                    api.apply(h.http_route(f"burst{i}", hostnames=[f"h{i}.example.com"]))
                await until(lambda: len(_route_names(mesh)) == 51, what="the whole burst")
                await until(lambda: bool(compiles) and compiles[-1] == mesh.snapshot.version,
                            what="the recompile")
                assert 1 <= len(set(compiles)) <= 5, compiles
            finally:
                await mesh.aclose()

        run(body())

    def test_watch_endpoint_change_skips_routing_recompile(self, api: FakeApiServer) -> None:
        """An EndpointSlice-only change updates the balancer and keeps the routing table."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            balancer = mesh.balancer(rand=random.Random(1).random)
            try:
                table = mesh.table
                api.apply(h.endpoint_slice("svc", addresses=("10.0.0.7",)))
                await until(lambda: any(
                    e.addresses == ("10.0.0.7",)
                    for s in mesh.snapshot.of("EndpointSlice").values()
                    for e in s.endpoints  # type: ignore[union-attr]
                ), what="the new endpoint")
                await until(lambda: _picked(mesh, balancer) == "10.0.0.7",
                            what="the balancer update")
                assert mesh.table is table
            finally:
                await mesh.aclose()

        run(body())


class TestFailures:
    def test_connect_forbidden_kind_names_rbac_rule(self, api: FakeApiServer) -> None:
        """A 403 keeps the mesh unready, and the error names the rule to add."""
        _world(api)
        api.forbidden.add("httproutes")

        async def body() -> None:
            with pytest.raises(SourceError, match=r'resources: \["httproutes"\]') as info:
                await connect(api, timeout=1.0)
            assert "cannot list httproutes.gateway.networking.k8s.io" in str(info.value)
            assert "HTTPRoute" in str(info.value)

        run(body())

    def test_connect_forbidden_then_granted_syncs(self, api: FakeApiServer) -> None:
        """Once the permission is granted the backoff retries and the mesh becomes ready."""
        _world(api)
        api.forbidden.add("services")

        async def body() -> None:
            mesh = await connect(api, wait=False)
            try:
                await until(lambda: any(k.error for k in mesh.sync_status().kinds),  # type: ignore[union-attr]
                            what="the 403")
                assert not mesh.ready
                api.forbidden.clear()
                await mesh.wait_synced(5)
                assert mesh.ready
            finally:
                await mesh.aclose()

        run(body())

    def test_connect_absent_kind_skipped_with_one_log_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Kinds the cluster does not serve are logged once each and never block readiness."""
        kinds = tuple(k for k in DEFAULT_KINDS if k.kind not in ("GRPCRoute", "ListenerSet"))
        with FakeApiServer(kinds) as api:
            _world(api)

            async def body() -> None:
                with caplog.at_level(logging.INFO, "meshclient.sources.kubernetes"):
                    mesh = await connect(api)
                    try:
                        await asyncio.sleep(FAST.recheck_absent * 2)  # rechecks happen
                        status = mesh.sync_status()
                        assert status is not None
                        absent = {k.kind for k in status.kinds if k.phase is Phase.ABSENT}
                        assert absent >= {"GRPCRoute", "ListenerSet"}
                    finally:
                        await mesh.aclose()
                lines = [r for r in caplog.records if "serves none" in r.getMessage()]
                assert sorted(r.getMessage().split(":")[0] for r in lines) == [
                    "grpcroutes.gateway.networking.k8s.io",
                    "listenersets.gateway.networking.k8s.io"]

            run(body())

    def test_connect_slow_api_server_still_syncs(self, api: FakeApiServer) -> None:
        """Slow answers (but within the timeouts) delay the sync, never break it."""
        _world(api)
        api.delay = 0.2

        async def body() -> None:
            started = time.monotonic()
            mesh = await connect(api)
            try:
                assert mesh.ready and time.monotonic() - started >= 0.2
            finally:
                await mesh.aclose()

        run(body())

    # Stopping the fake server while 16 watches reconnect every few milliseconds can leave
    # a server-side socket that aiohttp accepted during its shutdown and never closes (its
    # Server.shutdown() drops connections made meanwhile); the garbage collector then
    # reports it. That is the fake server's socket, not the client's.
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_api_server_down_keeps_snapshot_reports_stale_catches_up(
        self, api: FakeApiServer
    ) -> None:
        """Down: the last table serves and staleness grows; back: changes made meanwhile land."""
        _world(api)

        async def body() -> None:
            mesh = await connect(api)
            try:
                api.stop()
                await until(lambda: mesh.sync_status().stale,  # type: ignore[union-attr]
                            what="staleness")
                await asyncio.sleep(0.1)
                status = mesh.sync_status()
                assert status is not None and status.age >= 0.1 and status.errors
                assert mesh.resolve("GET", "http://example.com/").action is Action.FORWARD
                api.apply(h.http_route("r2", hostnames=["b.example.com"]))
                api.restart()
                await until(lambda: "r2" in _route_names(mesh), what="the catch-up")
                await until(lambda: not mesh.sync_status().stale,  # type: ignore[union-attr]
                            what="fresh again")
                assert mesh.sync_status().age == 0.0  # type: ignore[union-attr]
            finally:
                await mesh.aclose()

        run(body())
        api.close()
        gc.collect()  # any such socket is reported here, under this test's filter

    def test_wait_synced_timeout_raises_naming_missing_kinds(self, api: FakeApiServer) -> None:
        """``wait_synced`` that runs out of time says which kinds are not listed yet."""
        api.forbidden.add("gateways")

        async def body() -> None:
            mesh = await connect(api, wait=False)
            try:
                with pytest.raises(SourceError, match="not yet listed: Gateway"):
                    await mesh.wait_synced(0.5)
            finally:
                await mesh.aclose()

        run(body())


def _lists(api: FakeApiServer) -> int:
    return sum(1 for _, q in api.requests if not q.get("watch"))


def _picked(mesh: Mesh, balancer: object) -> str | None:
    from meshclient.balancing import Pick

    decision = mesh.resolve("GET", "http://example.com/")
    got = balancer.pick(decision.backends, now=0.0)  # type: ignore[attr-defined]
    if not isinstance(got, Pick):
        return None
    balancer.report(got, None, None, now=0.0)  # type: ignore[attr-defined]
    return got.address


class TestListing:
    def test_list_pages_with_limit_and_continue(self, api: FakeApiServer) -> None:
        """Large lists are read in pages of ``page_size``; every object arrives."""
        for i in range(7):
            api.apply(h.http_route(f"r{i}", hostnames=[f"h{i}.example.com"]))

        async def body() -> None:
            mesh = await connect(api, options=attrs.evolve(FAST, page_size=3))
            try:
                assert len(names(mesh, "HTTPRoute")) == 7
                pages = [q for p, q in api.requests if p.endswith("/httproutes")
                         and not q.get("watch")]
                assert [q.get("limit") for q in pages] == ["3", "3", "3"]
                assert sum(1 for q in pages if q.get("continue")) == 2
            finally:
                await mesh.aclose()

        run(body())

    def test_list_expired_continue_token_restarts_list(self, api: FakeApiServer) -> None:
        """A continue token that expired (410) restarts the list from the first page."""
        for i in range(5):
            api.apply(h.http_route(f"r{i}", hostnames=[f"h{i}.example.com"]))
        api.expire_continue = True

        async def body() -> None:
            mesh = await connect(api, options=attrs.evolve(FAST, page_size=2))
            try:
                assert len(names(mesh, "HTTPRoute")) == 5
                firsts = [q for p, q in api.requests if p.endswith("/httproutes")
                          and not q.get("watch") and not q.get("continue")]
                assert len(firsts) == 2
            finally:
                await mesh.aclose()

        run(body())

    def test_config_map_selector_narrows_the_watch(self, api: FakeApiServer) -> None:
        """``config_map_selector`` is sent as labelSelector; unlabelled ConfigMaps stay out."""
        labelled = h.config_map("ca", data={"ca.crt": "PEM"})
        labelled["metadata"]["labels"] = {"meshclient.io/ca": "true"}
        api.apply(labelled)
        api.apply(h.config_map("app-config", data={"x": "y"}))

        async def body() -> None:
            opts = attrs.evolve(FAST, config_map_selector="meshclient.io/ca=true")
            mesh = await connect(api, options=opts)
            try:
                assert names(mesh, "ConfigMap") == {("default", "ca")}
                sent = {q.get("labelSelector") for p, q in api.requests
                        if p.endswith("/configmaps")}
                assert sent == {"meshclient.io/ca=true"}
            finally:
                await mesh.aclose()

        run(body())

    def test_kind_uninstalled_removes_its_objects(self, api: FakeApiServer) -> None:
        """A kind whose CRD is deleted (404) takes its objects out of the table."""
        _world(api)
        api.apply(h.grpc_route("g"))

        async def body() -> None:
            mesh = await connect(api)
            try:
                assert names(mesh, "GRPCRoute") == {("default", "g")}
                api.remove_kind("GRPCRoute")
                await until(lambda: not names(mesh, "GRPCRoute"), what="the GRPCRoutes to go")
                status = mesh.sync_status()
                assert status is not None
                grpc = next(k for k in status.kinds if k.kind == "GRPCRoute")
                assert grpc.phase in (Phase.ABSENT, Phase.DISCOVERING)
            finally:
                await mesh.aclose()

        run(body())

    def test_wait_synced_blocking_from_another_thread(self, api: FakeApiServer) -> None:
        """Sync code can start without waiting and block on readiness later."""
        _world(api)
        mesh = Mesh.from_kubernetes(configuration=configuration(api), options=FAST, wait=False)
        try:
            mesh.wait_synced_blocking(10)
            assert mesh.ready and ("default", "r1") in names(mesh, "HTTPRoute")
        finally:
            mesh.close()


class TestConfiguration:
    def test_connect_kubeconfig_file_reaches_server_with_its_token(
        self, api: FakeApiServer, tmp_path: Path
    ) -> None:
        """A kubeconfig file is loaded (server, token) and its context used."""
        _world(api)
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
            "users": [{"name": "me", "user": {"token": "s3cret"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
        }))

        async def body() -> None:
            mesh = await Mesh.connect_kubernetes(kubeconfig=str(path), options=FAST, timeout=10)
            try:
                assert ("default", "r1") in names(mesh, "HTTPRoute")
                assert api.authorizations and api.authorizations <= {"Bearer s3cret"}
            finally:
                await mesh.aclose()

        run(body())

    def test_connect_missing_kubeconfig_raises_source_error(self, tmp_path: Path) -> None:
        """No usable configuration is a SourceError, not a background failure."""

        async def body() -> None:
            with pytest.raises(SourceError, match="no Kubernetes configuration"):
                await Mesh.connect_kubernetes(kubeconfig=str(tmp_path / "absent"),
                                              options=FAST, timeout=1)

        run(body())

    def test_discovery_older_served_version_is_used(self) -> None:
        """A cluster serving only Gateway v1beta1 is watched at v1beta1."""
        kinds = tuple(attrs.evolve(k, versions=("v1beta1",)) if k.kind == "Gateway" else k
                      for k in DEFAULT_KINDS)
        with FakeApiServer(kinds) as api:
            gw = h.gateway()
            gw["apiVersion"] = "gateway.networking.k8s.io/v1beta1"
            api.apply(gw)

            async def body() -> None:
                mesh = await connect(api)
                try:
                    assert names(mesh, "Gateway") == {("default", "gw")}
                    status = mesh.sync_status()
                    assert status is not None
                    gateways = next(k for k in status.kinds if k.kind == "Gateway")
                    assert gateways.version == "v1beta1"
                finally:
                    await mesh.aclose()

            run(body())

    def test_load_configuration_in_cluster_uses_service_account(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """In a pod (KUBERNETES_SERVICE_HOST set) the service account's token and CA are used."""
        from kubernetes_asyncio.config import incluster_config

        from meshclient.sources._kube_config import load_configuration

        token, ca = tmp_path / "token", tmp_path / "ca.crt"
        token.write_text("sa-token")
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")

        cfg = run(load_configuration())
        assert cfg.host == "https://10.96.0.1:443"
        assert cfg.ssl_ca_cert == str(ca)
        assert "sa-token" in str(cfg.api_key.get("BearerToken") or cfg.api_key)

    def test_from_kubernetes_not_synced_raises_and_stops_thread(
        self, api: FakeApiServer
    ) -> None:
        """The sync entry point raises SourceError on timeout and leaves no watch running."""
        api.forbidden.add("services")
        with pytest.raises(SourceError, match=r'resources: \["services"\]'):
            Mesh.from_kubernetes(configuration=configuration(api), options=FAST, timeout=0.5)
        until_blocking(lambda: api.open_watches() == 0, what="the watches to close")
        assert not any(t.name == "meshclient-kubernetes" for t in threading.enumerate())
