"""Against a real cluster (kind works): skipped unless ``MESHCLIENT_TEST_KUBECONFIG`` is set.

See README.md, "Kubernetes", for running it on kind. The kubeconfig's user needs read access
to the watched kinds, and, for the route round trip, create/delete on HTTPRoutes in
``default`` (kind's admin user has both).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from meshclient import Mesh
from meshclient.sources import Phase
from tests.sources.kube.conftest import run, until

KUBECONFIG = os.environ.get("MESHCLIENT_TEST_KUBECONFIG")

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="MESHCLIENT_TEST_KUBECONFIG is not set")


def test_real_cluster_sync_sees_kubernetes_service_and_route_round_trip() -> None:
    """A real API server syncs (the default/kubernetes Service is there), and an HTTPRoute
    created with kubectl's API appears in the table and leaves it when deleted."""

    async def body() -> None:
        from kubernetes_asyncio import client, config

        mesh = await Mesh.connect_kubernetes(kubeconfig=KUBECONFIG, timeout=60)
        try:
            assert mesh.ready
            assert mesh.snapshot.get("Service", "default", "kubernetes") is not None
            status = mesh.sync_status()
            assert status is not None and not status.errors, status.errors
            routes = next(k for k in status.kinds if k.kind == "HTTPRoute")
            if routes.phase is Phase.ABSENT:
                pytest.skip("the cluster has no Gateway API CRDs (HTTPRoute)")
            name = f"meshclient-test-{uuid.uuid4().hex[:8]}"
            api = await config.new_client_from_config(config_file=KUBECONFIG)
            async with api:
                custom = client.CustomObjectsApi(api)
                body = {"apiVersion": f"gateway.networking.k8s.io/{routes.version}",
                        "kind": "HTTPRoute", "metadata": {"name": name},
                        "spec": {"hostnames": [f"{name}.example.com"],
                                 "rules": [{"backendRefs": [{"name": "kubernetes",
                                                             "port": 443}]}]}}
                started = time.monotonic()
                await custom.create_namespaced_custom_object(
                    "gateway.networking.k8s.io", routes.version, "default", "httproutes", body)
                try:
                    await until(lambda: mesh.snapshot.get("HTTPRoute", "default", name)
                                is not None, timeout=30, what="the created route")
                    print(f"route visible after {time.monotonic() - started:.3f} s")
                finally:
                    await custom.delete_namespaced_custom_object(
                        "gateway.networking.k8s.io", routes.version, "default", "httproutes",
                        name)
                await until(lambda: mesh.snapshot.get("HTTPRoute", "default", name) is None,
                            timeout=30, what="the deleted route to go")
        finally:
            await mesh.aclose()

    run(body(), timeout=120)
