"""httpx transports that carry out meshclient's decisions: straight to the right pod.

::

    import httpx, meshclient
    from meshclient_httpx import MeshTransport

    mesh = meshclient.Mesh.from_files("deploy/")
    client = httpx.Client(transport=MeshTransport(mesh))   # AsyncMeshTransport for AsyncClient
    client.get("http://reviews.internal.example.com/api/v1/reviews/1")

Hosts that are not the mesh's pass through unchanged to the inner transport (or are refused
with ``strict=True``). Every request can be observed through ``on_request`` (a
``RequestRecord``) and the ``meshclient.httpx`` logger.
"""

try:
    import httpcore as _httpcore  # noqa: F401
    import httpx as _httpx  # noqa: F401
    import sniffio as _sniffio  # noqa: F401  (httpcore's async path retries the import per request without it)
except ImportError as _exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "meshclient_httpx needs httpx: pip install 'meshclient[httpx]'"
    ) from _exc

from meshclient_httpx._observe import RequestRecord as RequestRecord
from meshclient_httpx._transport import AsyncMeshTransport as AsyncMeshTransport
from meshclient_httpx._transport import MeshTransport as MeshTransport

__all__ = ["AsyncMeshTransport", "MeshTransport", "RequestRecord"]
