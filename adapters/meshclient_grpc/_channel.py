"""``mesh_channel``: a ``grpc.Channel`` that sends each call to the right pod.

A delegating ``grpc.Channel`` (ECOSYSTEM.md §2.1): the four factories return multicallables
that choose the endpoint per call, when the metadata is known, and send the call on that
endpoint's own channel. Routing, balancing and retry decisions are the core's
(``_calls.CallState``); this module only sends attempts, sleeps between them, and maps
answers to grpc errors.

Retries: unary-request calls are retried on another endpoint (``__call__``/``with_call``/
``future``, and unary-stream calls until their first message). Stream-request calls are
routed and reported but never retried: their request iterator cannot be replayed. Which
statuses are retried comes from the policy (``describe()`` names its source); without one,
only calls that never left the client (connect failures) are retried.

Limitations of grpcio, and what the channel does about them:

* Python clients cannot see the server's certificate (no ``auth_context()`` on a client
  call, no verify callback), so a BackendTLSPolicy that names only URI SANs (SPIFFE IDs)
  cannot be checked: such calls fail FAILED_PRECONDITION unless the operator sets
  ``spiffe_via_dns_san`` (workload certificates carry a DNS SAN standing for the identity).
* ``grpc.ssl_target_name_override`` is both SNI and the verified name, and grpc-core
  refuses a call whose ``:authority`` the certificate does not match; so over a
  BackendTLSPolicy the pod sees the verified name as ``:authority``, not the dialled one.
* grpcio hands response metadata out from its own call objects, so a ResponseHeaderModifier
  cannot be applied here: such calls go through the gateway (or, for a Service-parent
  route, fail FAILED_PRECONDITION with the reason), never with the filter skipped. Mirrors
  are sent for unary-request calls only.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from meshclient import Mesh
from meshclient.balancing import BalancerConfig, live_endpoints
from meshclient.routing import RoutingTable
from meshclient.store import Snapshot
from meshclient_grpc._calls import Router, RouterChannel
from meshclient_grpc._endpoints import (
    ChannelKey,
    Credentials,
    EndpointChannels,
    channel_options,
)
from meshclient_grpc._multicallables import StreamStream, StreamUnary, UnaryStream, UnaryUnary

__all__ = ["MeshChannel", "mesh_channel"]

class MeshChannel(RouterChannel, grpc.Channel):  # type: ignore[misc]
    """A ``grpc.Channel`` whose calls go straight to the pods their route chooses.

    Build it with ``mesh_channel``; the arguments are described there.
    """

    def __init__(
        self, mesh: Mesh, target: str, *, strict: bool = False, annotations: bool = True,
        spiffe_via_dns_san: bool = False, root_certificates: bytes | None = None,
        client_cert: tuple[bytes, bytes] | None = None,
        token_file: str | os.PathLike[str] | None = None, token_key: str = "authorization",
        options: Sequence[tuple[str, Any]] = (), retire_grace: float = 30.0,
        balancer_config: BalancerConfig | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._router = Router(mesh, target, strict=strict, annotations=annotations,
                              spiffe_via_dns_san=spiffe_via_dns_san, token_file=token_file,
                              token_key=token_key, balancer_config=balancer_config, rand=rand)
        self._creds = Credentials(root_certificates, client_cert)
        self._options = tuple(options)
        self._pool: EndpointChannels[grpc.Channel] = EndpointChannels(self._make)
        self._grace = retire_grace
        self._timers: dict[threading.Timer, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._subscribers: list[Callable[[grpc.ChannelConnectivity], None]] = []
        ref = weakref.ref(self)

        def listener(table: RoutingTable, snapshot: Snapshot) -> None:
            me = ref()
            if me is not None and not me._closed:
                me._retire(live_endpoints(snapshot))

        mesh.subscribe(listener)

    def _make(self, key: ChannelKey) -> grpc.Channel:
        options = channel_options(key, self._options)
        if key.tls_name is None:
            return grpc.insecure_channel(key.target, options=options)
        return grpc.secure_channel(key.target, self._creds.for_ca(key.ca), options=options)

    def _retire(self, live: frozenset[tuple[str, int]]) -> None:
        for channel in self._pool.retire(live):
            if self._grace <= 0:
                self._close_retired(channel, None)
                continue
            timer = threading.Timer(self._grace, self._close_retired)
            timer.args = (channel, timer)
            timer.daemon = True
            with self._lock:
                self._timers[timer] = channel
            timer.start()

    def _close_retired(self, channel: grpc.Channel, timer: threading.Timer | None) -> None:
        with self._lock:
            if timer is not None and self._timers.pop(timer, None) is None:
                return  # close() got there first
        channel.close()
        self._pool.closed_one(retired=True)

    # -- grpc.Channel ---------------------------------------------------------------------

    def unary_unary(self, method: str, request_serializer: Any = None,
                    response_deserializer: Any = None, _registered_method: bool = False,
                    ) -> UnaryUnary:
        return UnaryUnary(self, method, request_serializer, response_deserializer,
                           _registered_method)

    def unary_stream(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: bool = False,
                     ) -> UnaryStream:
        return UnaryStream(self, method, request_serializer, response_deserializer,
                            _registered_method)

    def stream_unary(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: bool = False,
                     ) -> StreamUnary:
        return StreamUnary(self, method, request_serializer, response_deserializer,
                            _registered_method)

    def stream_stream(self, method: str, request_serializer: Any = None,
                      response_deserializer: Any = None, _registered_method: bool = False,
                      ) -> StreamStream:
        return StreamStream(self, method, request_serializer, response_deserializer,
                             _registered_method)

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None],
                  try_to_connect: bool = False) -> None:
        """Calls ``callback(READY)``: a mesh channel has no single connection state (each
        endpoint has its own, and calls go wherever one is usable)."""
        self._subscribers.append(callback)
        callback(grpc.ChannelConnectivity.READY)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def close(self) -> None:
        """Close every endpoint channel now (in-flight calls on them are cancelled)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            timers, self._timers = self._timers, {}
        for timer, channel in timers.items():
            timer.cancel()
            channel.close()
            self._pool.closed_one(retired=True)
        for channel in self._pool.drain():
            channel.close()
            self._pool.closed_one(retired=False)

    def __enter__(self) -> MeshChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()



def mesh_channel(
    mesh: Mesh, target: str, *, strict: bool = False, annotations: bool = True,
    spiffe_via_dns_san: bool = False, root_certificates: bytes | None = None,
    client_cert: tuple[bytes, bytes] | None = None,
    token_file: str | os.PathLike[str] | None = None, token_key: str = "authorization",
    options: Sequence[tuple[str, Any]] = (), retire_grace: float = 30.0,
    balancer_config: BalancerConfig | None = None, rand: Callable[[], float] | None = None,
) -> MeshChannel:
    """A ``grpc.Channel`` that routes, balances, retries and secures each call by the mesh.

    Stubs work on it unchanged (``GreeterStub(mesh_channel(mesh, "grpc://greeter.shop:80"))``).

    Args:
        mesh: The mesh configuration.
        target: ``grpc://host:port`` (plaintext), ``grpcs://host:port`` (TLS, verifying
            ``host``) or ``host:port`` (plaintext; port 443 when left out).
        strict: Fail calls for hosts that are not the mesh's with FAILED_PRECONDITION
            instead of passing them through on a plain channel to ``target``.
        annotations: Read Linkerd-style retry/timeout annotations on GRPCRoutes and
            Services (SPEC-NOTES §6); False turns them off.
        spiffe_via_dns_san: Honour BackendTLSPolicies that name only URI SANs (SPIFFE IDs)
            by verifying ``validation.hostname`` as a DNS SAN of the workload certificate;
            without it such calls fail with FAILED_PRECONDITION (grpcio cannot check URIs).
        root_certificates: PEM roots for TLS hops without a policy CA; None: system roots.
        client_cert: ``(certificate_chain_pem, private_key_pem)`` for backend mTLS.
        token_file: A projected service-account token, sent on each mesh call as
            ``token_key`` metadata (re-read when it rotates) unless the call has that key.
        token_key: ``authorization`` (sends ``Bearer <token>``) or a key of your own.
        options: Extra grpc channel options for every underlying channel.
        retire_grace: Seconds an endpoint's channel stays open after the endpoint leaves
            the EndpointSlices, so calls on it can finish.
        balancer_config: Balancer settings, used if this is the first balancer of ``mesh``.
        rand: Uniform floats in [0, 1) for weights and jitter (tests: a seeded one).

    Raises:
        ValueError: ``target`` cannot be parsed.
        OSError: ``token_file`` cannot be read.
    """
    return MeshChannel(mesh, target, strict=strict, annotations=annotations,
                       spiffe_via_dns_san=spiffe_via_dns_san,
                       root_certificates=root_certificates, client_cert=client_cert,
                       token_file=token_file, token_key=token_key, options=options,
                       retire_grace=retire_grace, balancer_config=balancer_config, rand=rand)
