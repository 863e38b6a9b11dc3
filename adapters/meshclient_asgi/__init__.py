"""ASGI server-side authorization for meshclient: ``AuthzMiddleware``.

``meshclient_asgi.uvicorn_tls`` runs uvicorn with the ASGI TLS extension filled in, so that the
middleware sees the client certificate (ECOSYSTEM §3.2).
"""

try:
    from meshclient_asgi._middleware import IDENTITY_KEY as IDENTITY_KEY
    from meshclient_asgi._middleware import AuthzMiddleware as AuthzMiddleware
except ImportError as exc:  # pragma: no cover - the core's own dependencies are missing
    raise ImportError(
        "meshclient_asgi needs meshclient's dependencies: pip install 'meshclient[asgi]'"
    ) from exc

__all__ = ["IDENTITY_KEY", "AuthzMiddleware"]
