"""``aio_mesh_channel``: the ``grpc.aio.Channel`` twin of ``mesh_channel``.

The same ``Router``/``CallState`` decide, pick and retry (``_calls``); this module awaits
attempts and sleeps between them. As in grpc.aio, a multicallable's ``__call__`` is
synchronous and returns the call object at once (ECOSYSTEM.md §2.2): the endpoint is chosen
right there, from the in-memory table, and the first attempt starts immediately; a task
carries any retries. Endpoint channels are made inside the running loop on first use (aio
channels bind to their loop, grpc/grpc#32480) and closed there: a retired endpoint's channel
gets ``close(grace)``, which lets its calls finish.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from meshclient import Mesh
from meshclient.balancing import BalancerConfig, live_endpoints
from meshclient.routing import RoutingTable
from meshclient.store import Snapshot
from meshclient_grpc._calls import Answer, Attempt, CallState, Router, RouterChannel
from meshclient_grpc._calls_aio import LocalCall, UnaryCall, UnaryStreamCall, report_when_done
from meshclient_grpc._endpoints import (
    ChannelKey,
    Credentials,
    EndpointChannels,
    channel_options,
)
from meshclient_grpc._mirror import mirror_attempts, mirror_done

__all__ = ["AioMeshChannel", "aio_mesh_channel"]

_OK = grpc.StatusCode.OK
_EOF = grpc.aio.EOF


class _Multi:
    __slots__ = ("_de", "_method", "_owner", "_reg", "_ser", "_shape")

    def __init__(self, owner: AioMeshChannel, shape: str, method: str, ser: Any, de: Any,
                 reg: bool) -> None:
        self._owner = owner
        self._shape = shape
        self._method = method
        self._ser = ser
        self._de = de
        self._reg = reg

    def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: bool | None = None,
                 compression: Any = None) -> Any:
        pool = self._owner._pool
        shape = self._shape
        state: CallState | None = None

        def start(att: Attempt) -> Any:
            if state is not None and state.mirrors_due and shape == "unary_unary":
                self._mirror(state, request)
            mc = pool.call(pool.get(att.key), shape, self._method, self._ser, self._de,
                           self._reg)
            return mc(request, timeout=att.timeout, metadata=att.metadata,
                      credentials=credentials, wait_for_ready=wait_for_ready,
                      compression=compression)

        got = self._owner._router.begin(self._method, metadata, timeout)
        cls = got.__class__
        if cls is Attempt:
            return start(got)  # type: ignore[arg-type]
        if cls is Answer:
            return LocalCall(got)  # type: ignore[arg-type]
        state = got  # type: ignore[assignment]
        assert state is not None
        if shape == "unary_unary":
            return UnaryCall(state, start)
        if shape == "unary_stream":
            return UnaryStreamCall(state, start)
        # A request iterator cannot be replayed: one attempt, reported when it ends.
        att = state.next_attempt()
        if att.__class__ is Answer:
            return LocalCall(att)
        call = start(att)  # type: ignore[arg-type]
        report_when_done(state, call)
        return call


    def _mirror(self, state: CallState, request: Any) -> None:
        router = self._owner._router
        pool = self._owner._pool
        for att, pick, t0 in mirror_attempts(state):
            try:
                mc = pool.call(pool.get(att.key), "unary_unary", self._method, self._ser,
                               self._de, self._reg)
                call = mc(request, timeout=att.timeout, metadata=att.metadata)
            except Exception:
                router.balancer.report(pick, None, None, now=router.wall())
                continue
            _MIRRORS.add(call)
            call.add_done_callback(lambda c, p=pick, t=t0: _mirrored(router, p, t, c))


_MIRRORS: set[Any] = set()
"""Mirror calls in flight (held so they are not collected before they finish)."""


def _mirrored(router: Router, pick: Any, t0: float, call: Any) -> None:
    _MIRRORS.discard(call)
    if call.cancelled():
        mirror_done(router, pick, t0, call, None, "")
        return

    async def report() -> None:
        mirror_done(router, pick, t0, call, await call.code(), await call.details() or "")

    task = asyncio.ensure_future(report())
    _MIRRORS.add(task)
    task.add_done_callback(_MIRRORS.discard)


class _UnaryUnary(_Multi, grpc.aio.UnaryUnaryMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class _UnaryStream(_Multi, grpc.aio.UnaryStreamMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class _StreamUnary(_Multi, grpc.aio.StreamUnaryMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class _StreamStream(_Multi, grpc.aio.StreamStreamMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class AioMeshChannel(RouterChannel, grpc.aio.Channel):  # type: ignore[misc]
    """A ``grpc.aio.Channel`` whose calls go straight to the pods their route chooses.

    Build it with ``aio_mesh_channel`` (arguments as for ``mesh_channel``), inside the event
    loop that will use it.
    """

    def __init__(
        self, mesh: Mesh, target: str, *, strict: bool = False, annotations: bool = True,
        spiffe_via_dns_san: bool = False, root_certificates: bytes | None = None,
        client_cert: tuple[bytes, bytes] | None = None,
        token_file: str | os.PathLike[str] | None = None, token_key: str = "authorization",
        options: Sequence[tuple[str, Any]] = (), retire_grace: float = 30.0,
        interceptors: Sequence[Any] | None = None,
        balancer_config: BalancerConfig | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._router = Router(mesh, target, strict=strict, annotations=annotations,
                              spiffe_via_dns_san=spiffe_via_dns_san, token_file=token_file,
                              token_key=token_key, balancer_config=balancer_config, rand=rand)
        self._creds = Credentials(root_certificates, client_cert)
        self._options = tuple(options)
        self._interceptors = list(interceptors) if interceptors else None
        self._pool: EndpointChannels[grpc.aio.Channel] = EndpointChannels(self._make)
        self._grace = retire_grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retiring: dict[grpc.aio.Channel, asyncio.Task[None]] = {}
        self._closed = asyncio.Event()
        ref = weakref.ref(self)

        def listener(table: RoutingTable, snapshot: Snapshot) -> None:
            me = ref()
            if me is not None and not me._closed.is_set():
                me._retire(live_endpoints(snapshot))

        mesh.subscribe(listener)

    def _make(self, key: ChannelKey) -> grpc.aio.Channel:
        self._loop = asyncio.get_running_loop()
        options = channel_options(key, self._options)
        if key.tls_name is None:
            return grpc.aio.insecure_channel(key.target, options=options,
                                             interceptors=self._interceptors)
        return grpc.aio.secure_channel(key.target, self._creds.for_ca(key.ca),
                                       options=options, interceptors=self._interceptors)

    def _retire(self, live: frozenset[tuple[str, int]]) -> None:
        channels = self._pool.retire(live)
        loop = self._loop
        if channels and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._close_later, channels)

    def _close_later(self, channels: list[grpc.aio.Channel]) -> None:
        for channel in channels:
            self._retiring[channel] = asyncio.ensure_future(self._close_retired(channel))

    async def _close_retired(self, channel: grpc.aio.Channel) -> None:
        await channel.close(self._grace)
        self._retiring.pop(channel, None)
        self._pool.closed_one(retired=True)

    # -- grpc.aio.Channel -----------------------------------------------------------------

    def unary_unary(self, method: str, request_serializer: Any = None,
                    response_deserializer: Any = None, _registered_method: bool = False,
                    ) -> _UnaryUnary:
        return _UnaryUnary(self, "unary_unary", method, request_serializer,
                           response_deserializer, _registered_method)

    def unary_stream(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: bool = False,
                     ) -> _UnaryStream:
        return _UnaryStream(self, "unary_stream", method, request_serializer,
                            response_deserializer, _registered_method)

    def stream_unary(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: bool = False,
                     ) -> _StreamUnary:
        return _StreamUnary(self, "stream_unary", method, request_serializer,
                            response_deserializer, _registered_method)

    def stream_stream(self, method: str, request_serializer: Any = None,
                      response_deserializer: Any = None, _registered_method: bool = False,
                      ) -> _StreamStream:
        return _StreamStream(self, "stream_stream", method, request_serializer,
                             response_deserializer, _registered_method)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """READY until closed: there is no single connection (each endpoint has its own)."""
        if self._closed.is_set():
            return grpc.ChannelConnectivity.SHUTDOWN
        return grpc.ChannelConnectivity.READY

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity
                                    ) -> None:
        if last_observed_state is not self.get_state():
            return
        await self._closed.wait()

    async def channel_ready(self) -> None:
        return None

    async def close(self, grace: float | None = None) -> None:
        """Close every endpoint channel, letting calls run for up to ``grace`` seconds."""
        if self._closed.is_set():
            return
        self._closed.set()
        closing = [c.close(grace) for c in self._pool.drain()]
        retiring, self._retiring = self._retiring, {}
        for task in retiring.values():
            task.cancel()
        closing += [c.close(grace) for c in retiring]
        await asyncio.gather(*closing, return_exceptions=True)
        for _ in closing:
            self._pool.closed_one(retired=False)

    async def __aenter__(self) -> AioMeshChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(None)



def aio_mesh_channel(
    mesh: Mesh, target: str, *, strict: bool = False, annotations: bool = True,
    spiffe_via_dns_san: bool = False, root_certificates: bytes | None = None,
    client_cert: tuple[bytes, bytes] | None = None,
    token_file: str | os.PathLike[str] | None = None, token_key: str = "authorization",
    options: Sequence[tuple[str, Any]] = (), retire_grace: float = 30.0,
    interceptors: Sequence[Any] | None = None,
    balancer_config: BalancerConfig | None = None, rand: Callable[[], float] | None = None,
) -> AioMeshChannel:
    """The ``grpc.aio`` twin of ``mesh_channel`` (same arguments).

    Args:
        interceptors: grpc.aio client interceptors, installed on every endpoint channel
            (grpc.aio has no ``intercept_channel``).

    Raises:
        ValueError: ``target`` cannot be parsed.
        OSError: ``token_file`` cannot be read.
    """
    return AioMeshChannel(mesh, target, strict=strict, annotations=annotations,
                          spiffe_via_dns_san=spiffe_via_dns_san,
                          root_certificates=root_certificates, client_cert=client_cert,
                          token_file=token_file, token_key=token_key, options=options,
                          retire_grace=retire_grace, interceptors=interceptors,
                          balancer_config=balancer_config, rand=rand)
