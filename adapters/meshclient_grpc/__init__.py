"""gRPC integration for meshclient: server-side authorization interceptors."""

try:
    from meshclient_grpc._server import AioAuthzInterceptor as AioAuthzInterceptor
    from meshclient_grpc._server import AuthzInterceptor as AuthzInterceptor
    from meshclient_grpc._server import current_caller as current_caller
except ImportError as exc:
    raise ImportError(
        "meshclient_grpc needs grpcio: pip install 'meshclient[grpc]'"
    ) from exc

__all__ = ["AioAuthzInterceptor", "AuthzInterceptor", "current_caller"]
