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
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any

import grpc
import grpc.aio

from meshclient import Mesh
from meshclient.balancing import BalancerConfig
from meshclient.routing import RoutingTable
from meshclient.store import Snapshot
from meshclient_grpc._calls import RETRY, Answer, Attempt, CallState, Router
from meshclient_grpc._endpoints import (
    ChannelKey,
    ChannelStatistics,
    Credentials,
    EndpointChannels,
    channel_options,
    live_endpoints,
)
from meshclient_grpc._identity import TokenFile

__all__ = ["AioMeshChannel", "aio_mesh_channel"]

_OK = grpc.StatusCode.OK
_EOF = grpc.aio.EOF


class LocalCall:
    """A status meshclient answered itself, shaped as any grpc.aio call (nothing was sent)."""

    def __init__(self, answer: Answer) -> None:
        self.error = grpc.aio.AioRpcError(answer.code, grpc.aio.Metadata(),
                                          grpc.aio.Metadata(), answer.details)

    def __await__(self) -> Generator[Any, None, Any]:
        raise self.error
        yield  # pragma: no cover  (makes this a generator)

    async def read(self) -> Any:
        raise self.error

    def __aiter__(self) -> LocalCall:
        return self

    async def __anext__(self) -> Any:
        raise self.error

    async def write(self, request: Any) -> None:
        raise self.error

    async def done_writing(self) -> None:
        return None

    async def code(self) -> grpc.StatusCode:
        return self.error.code()

    async def details(self) -> str | None:
        details: str | None = self.error.details()
        return details

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata()

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata()

    async def wait_for_connection(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        return None

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        callback(self)


async def _report(state: CallState, call: Any) -> None:
    if call.cancelled():
        state.abandon()
    else:
        state.finish(await call.code(), await call.details() or "")


def _report_when_done(state: CallState, call: Any) -> None:
    tasks: set[asyncio.Task[None]] = _REPORTS

    def done(c: Any) -> None:
        task = asyncio.ensure_future(_report(state, c))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    call.add_done_callback(done)


_REPORTS: set[asyncio.Task[None]] = set()


class _Retrying:
    """Shared parts of the retrying aio calls: the current attempt and Call methods."""

    _call: Any

    def __init__(self, state: CallState, start: Callable[[Attempt], Any]) -> None:
        self._state = state
        self._start_one = start
        self._start()

    def _start(self) -> None:
        att = self._state.next_attempt()
        self._call = LocalCall(att) if att.__class__ is Answer else self._start_one(
            att)  # type: ignore[arg-type]

    async def _retry_or_raise(self, call: Any, exc: grpc.aio.AioRpcError) -> None:
        """After a failed attempt before any message: start the next one, or raise."""
        state = self._state
        what = state.after(exc.code(), exc.details() or "")
        if what is RETRY:
            if state.delay > 0:
                await asyncio.sleep(state.delay)
            self._start()
            return
        if what.__class__ is Answer:
            self._call = LocalCall(what)
            raise self._call.error from exc
        raise exc

    async def wait_for_connection(self) -> None:
        await self._call.wait_for_connection()

    def time_remaining(self) -> float | None:
        return self._call.time_remaining()  # type: ignore[no-any-return]


class _UnaryCall(_Retrying, grpc.aio.UnaryUnaryCall):  # type: ignore[misc]
    def __init__(self, state: CallState, start: Callable[[Attempt], Any]) -> None:
        super().__init__(state, start)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> Any:
        state = self._state
        while True:
            call = self._call
            try:
                response = await call
            except grpc.aio.AioRpcError as exc:
                if call.__class__ is LocalCall:
                    raise
                await self._retry_or_raise(call, exc)
                continue
            except BaseException:
                state.abandon()
                raise
            state.finish(_OK, "")
            return response

    def __await__(self) -> Generator[Any, None, Any]:
        return self._task.__await__()

    async def _settled(self) -> Any:
        await asyncio.wait([self._task])
        return self._call

    async def code(self) -> grpc.StatusCode:
        return await (await self._settled()).code()

    async def details(self) -> str:
        return await (await self._settled()).details()  # type: ignore[no-any-return]

    async def initial_metadata(self) -> Any:
        return await (await self._settled()).initial_metadata()

    async def trailing_metadata(self) -> Any:
        return await (await self._settled()).trailing_metadata()

    def cancel(self) -> bool:
        self._call.cancel()
        return self._task.cancel()

    def cancelled(self) -> bool:
        return self._task.cancelled()

    def done(self) -> bool:
        return self._task.done()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._task.add_done_callback(lambda _t: callback(self))


class _UnaryStreamCall(_Retrying, grpc.aio.UnaryStreamCall):  # type: ignore[misc]
    def __init__(self, state: CallState, start: Callable[[Attempt], Any]) -> None:
        self._started = False
        super().__init__(state, start)

    async def read(self) -> Any:
        state = self._state
        while True:
            call = self._call
            try:
                message = await call.read()
            except grpc.aio.AioRpcError as exc:
                if call.__class__ is LocalCall:
                    raise
                if self._started:
                    state.finish(exc.code(), exc.details() or "")
                    raise
                await self._retry_or_raise(call, exc)
                continue
            except BaseException:
                state.abandon()
                raise
            if message is _EOF:
                state.finish(_OK, "")
                return message
            if not self._started:
                self._started = True
                _report_when_done(state, call)  # no retry from here; report however it ends
            return message

    async def _messages(self) -> AsyncIterator[Any]:
        while True:
            message = await self.read()
            if message is _EOF:
                return
            yield message

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def code(self) -> grpc.StatusCode:
        return await self._call.code()

    async def details(self) -> str:
        return await self._call.details()  # type: ignore[no-any-return]

    async def initial_metadata(self) -> Any:
        return await self._call.initial_metadata()

    async def trailing_metadata(self) -> Any:
        return await self._call.trailing_metadata()

    def cancel(self) -> bool:
        self._state.abandon()
        return self._call.cancel()  # type: ignore[no-any-return]

    def cancelled(self) -> bool:
        return self._call.cancelled()  # type: ignore[no-any-return]

    def done(self) -> bool:
        return self._call.done()  # type: ignore[no-any-return]

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._call.add_done_callback(lambda _c: callback(self))


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

        def start(att: Attempt) -> Any:
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
        state: CallState = got  # type: ignore[assignment]
        if shape == "unary_unary":
            return _UnaryCall(state, start)
        if shape == "unary_stream":
            return _UnaryStreamCall(state, start)
        # A request iterator cannot be replayed: one attempt, reported when it ends.
        att = state.next_attempt()
        if att.__class__ is Answer:
            return LocalCall(att)
        call = start(att)  # type: ignore[arg-type]
        _report_when_done(state, call)
        return call


class _UnaryUnary(_Multi, grpc.aio.UnaryUnaryMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class _UnaryStream(_Multi, grpc.aio.UnaryStreamMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class _StreamUnary(_Multi, grpc.aio.StreamUnaryMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class _StreamStream(_Multi, grpc.aio.StreamStreamMultiCallable):  # type: ignore[misc]
    __slots__ = ()


class AioMeshChannel(grpc.aio.Channel):  # type: ignore[misc]
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
        token = None
        if token_file is not None:
            token = TokenFile(token_file, key=token_key, clock=time.monotonic)
        self._router = Router(mesh, target, strict=strict, annotations=annotations,
                              spiffe_via_dns_san=spiffe_via_dns_san, token=token,
                              balancer_config=balancer_config,
                              rand=rand or random.Random().random)
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

    def statistics(self) -> ChannelStatistics:
        return self._pool.statistics()

    def __repr__(self) -> str:
        s = self.statistics()
        return (f"<AioMeshChannel {self._router.target.authority} open={s.open} "
                f"retired={s.retired} closed={s.closed}>")


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
