"""gRPC integration for meshclient: mesh client channels and server-side authorization."""

try:
    from meshclient_grpc._aio_channel import AioMeshChannel as AioMeshChannel
    from meshclient_grpc._aio_channel import aio_mesh_channel as aio_mesh_channel
    from meshclient_grpc._channel import MeshChannel as MeshChannel
    from meshclient_grpc._channel import mesh_channel as mesh_channel
    from meshclient_grpc._endpoints import ChannelStatistics as ChannelStatistics
    from meshclient_grpc._server import AioAuthzInterceptor as AioAuthzInterceptor
    from meshclient_grpc._server import AuthzInterceptor as AuthzInterceptor
    from meshclient_grpc._server import current_caller as current_caller
except ImportError as exc:
    raise ImportError(
        "meshclient_grpc needs grpcio: pip install 'meshclient[grpc]'"
    ) from exc

__all__ = [
    "AioAuthzInterceptor",
    "AioMeshChannel",
    "AuthzInterceptor",
    "ChannelStatistics",
    "MeshChannel",
    "aio_mesh_channel",
    "current_caller",
    "mesh_channel",
]
