"""Where the API server is and how to authenticate: kubeconfig, in-cluster, or given."""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config

from meshclient.errors import SourceError

__all__ = ["load_configuration", "make_api_client"]


async def load_configuration(
    *, kubeconfig: str | None = None, context: str | None = None,
) -> client.Configuration:
    """The API server and credentials: a kubeconfig if given, in-cluster if in a pod, else
    the default kubeconfig (``KUBECONFIG`` or ``~/.kube/config``).

    Raises:
        SourceError: No configuration could be loaded.
    """
    # type.__call__: a fresh Configuration, not a copy of the process-wide default.
    cfg: client.Configuration = type.__call__(client.Configuration)
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(config_file=kubeconfig, context=context,
                                          client_configuration=cfg, persist_config=False)
    except (config.ConfigException, OSError) as exc:
        raise SourceError(f"no Kubernetes configuration: {exc}") from exc
    return cfg


async def make_api_client(
    configuration: client.Configuration | None = None, *, kubeconfig: str | None = None,
    context: str | None = None,
) -> client.ApiClient:
    """An ``ApiClient`` for ``configuration``, or for the one ``load_configuration`` finds."""
    if configuration is None:
        configuration = await load_configuration(kubeconfig=kubeconfig, context=context)
    return client.ApiClient(configuration)
