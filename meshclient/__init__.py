"""meshclient: a proxyless implementation of the Kubernetes Gateway API for Python.

``Mesh`` holds the configuration (from manifests or a cluster) and decides where each
request goes; the adapters (``meshclient_httpx``, ``meshclient_grpc``, ``meshclient_asgi``)
carry the decisions out.
"""

from meshclient.errors import ConfigError as ConfigError
from meshclient.errors import MeshError as MeshError
from meshclient.errors import SourceError as SourceError
from meshclient.mesh import Mesh as Mesh
from meshclient.routing import Action as Action
from meshclient.routing import Decision as Decision
from meshclient.routing import RequestHead as RequestHead
from meshclient.routing import Via as Via

__version__ = "0.1.0.dev0"

__all__ = [
    "Action",
    "ConfigError",
    "Decision",
    "Mesh",
    "MeshError",
    "RequestHead",
    "SourceError",
    "Via",
    "__version__",
]
