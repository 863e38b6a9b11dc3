"""The sync channel's multicallables: each call decided, sent and retried by the core's plan.

``UnaryUnary`` retries on another endpoint (``__call__``/``with_call``/``future``),
``UnaryStream`` until its first message; ``StreamUnary``/``StreamStream`` are routed and
reported but sent once, since their request iterator cannot be replayed. Every one of them
chooses the endpoint per call, when the metadata is known (ECOSYSTEM.md §2.1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc

from meshclient_grpc._calls import RETRY, Answer, Attempt, CallState
from meshclient_grpc._calls_sync import LocalRpcError, MeshFuture, MeshStream, finish_from
from meshclient_grpc._endpoints import ChannelKey
from meshclient_grpc._mirror import mirror_attempts, mirror_done

if TYPE_CHECKING:
    from meshclient_grpc._channel import MeshChannel

__all__ = ["StreamStream", "StreamUnary", "UnaryStream", "UnaryUnary"]

_OK = grpc.StatusCode.OK


class _Multi:
    __slots__ = ("_de", "_method", "_owner", "_reg", "_ser")

    def __init__(self, owner: MeshChannel, method: str, ser: Any, de: Any, reg: bool) -> None:
        self._owner = owner
        self._method = method
        self._ser = ser
        self._de = de
        self._reg = reg

    def _mc(self, shape: str, key: ChannelKey) -> Any:
        pool = self._owner._pool
        return pool.call(pool.get(key), shape, self._method, self._ser, self._de, self._reg)

    def _mirror(self, state: CallState, request: Any) -> None:
        router = self._owner._router
        for att, pick, t0 in mirror_attempts(state):
            try:
                fut = self._mc("unary_unary", att.key).future(
                    request, timeout=att.timeout, metadata=att.metadata)
            except Exception:
                router.balancer.report(pick, None, None, now=router.wall())
                continue
            fut.add_done_callback(lambda f, p=pick, t=t0: mirror_done(
                router, p, t, f, None if f.cancelled() else f.code(), f.details() or ""))

    def _route(self, shape: str, metadata: Any, timeout: float | None
               ) -> tuple[Any, Attempt, CallState | None]:
        """The multicallable and attempt of a call that is not retried (stream requests)."""
        got = self._owner._router.begin(self._method, metadata, timeout)
        state = None
        if got.__class__ is CallState:
            state = got
            got = state.next_attempt()
        if got.__class__ is Answer:
            raise LocalRpcError.of(got)
        att: Attempt = got  # type: ignore[assignment]
        return self._mc(shape, att.key), att, state


class UnaryUnary(_Multi, grpc.UnaryUnaryMultiCallable):  # type: ignore[misc]
    def __call__(self, request: Any, timeout: float | None = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: bool | None = None,
                 compression: Any = None) -> Any:
        return self._blocking(request, timeout, metadata, credentials, wait_for_ready,
                              compression, False)

    def with_call(self, request: Any, timeout: float | None = None, metadata: Any = None,
                  credentials: Any = None, wait_for_ready: bool | None = None,
                  compression: Any = None) -> Any:
        return self._blocking(request, timeout, metadata, credentials, wait_for_ready,
                              compression, True)

    def _blocking(self, request: Any, timeout: float | None, metadata: Any, credentials: Any,
                  wait_for_ready: bool | None, compression: Any, with_call: bool) -> Any:
        got = self._owner._router.begin(self._method, metadata, timeout)
        cls = got.__class__
        if cls is Attempt:
            att: Attempt = got  # type: ignore[assignment]
            mc = self._mc("unary_unary", att.key)
            send = mc.with_call if with_call else mc
            return send(request, timeout=att.timeout, metadata=att.metadata,
                        credentials=credentials, wait_for_ready=wait_for_ready,
                        compression=compression)
        if cls is Answer:
            raise LocalRpcError.of(got)  # type: ignore[arg-type]
        state: CallState = got  # type: ignore[assignment]
        while True:
            nxt = state.next_attempt()
            if nxt.__class__ is Answer:
                raise LocalRpcError.of(nxt)
            att = nxt  # type: ignore[assignment]
            if state.mirrors_due:
                self._mirror(state, request)
            mc = self._mc("unary_unary", att.key)
            try:
                # with_call builds a rendezvous object; a plain call skips it (≈80 µs).
                got = (mc.with_call if with_call else mc)(
                    request, timeout=att.timeout, metadata=att.metadata,
                    credentials=credentials, wait_for_ready=wait_for_ready,
                    compression=compression)
            except grpc.RpcError as exc:
                what = state.after(exc.code(), exc.details() or "")
                if what is RETRY:
                    if state.delay > 0:
                        time.sleep(state.delay)
                    continue
                if what.__class__ is Answer:
                    raise LocalRpcError.of(what) from exc
                raise
            except BaseException:
                state.abandon()
                raise
            state.finish(_OK, "")
            return got

    def future(self, request: Any, timeout: float | None = None, metadata: Any = None,
               credentials: Any = None, wait_for_ready: bool | None = None,
               compression: Any = None) -> Any:
        got = self._owner._router.begin(self._method, metadata, timeout)
        options = {"credentials": credentials, "wait_for_ready": wait_for_ready,
                   "compression": compression}
        if got.__class__ is Attempt:
            att: Attempt = got
            return self._mc("unary_unary", att.key).future(
                request, timeout=att.timeout, metadata=att.metadata, **options)
        if got.__class__ is Answer:
            return LocalRpcError.of(got)

        state: CallState = got  # type: ignore[assignment]

        def start(att: Attempt, opts: dict[str, Any]) -> Any:
            if state.mirrors_due:
                self._mirror(state, request)
            return self._mc("unary_unary", att.key).future(
                request, timeout=att.timeout, metadata=att.metadata, **opts)

        return MeshFuture(state, start, options)


class UnaryStream(_Multi, grpc.UnaryStreamMultiCallable):  # type: ignore[misc]
    def __call__(self, request: Any, timeout: float | None = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: bool | None = None,
                 compression: Any = None) -> Any:
        got = self._owner._router.begin(self._method, metadata, timeout)
        options = {"credentials": credentials, "wait_for_ready": wait_for_ready,
                   "compression": compression}
        if got.__class__ is Attempt:
            att: Attempt = got
            return self._mc("unary_stream", att.key)(
                request, timeout=att.timeout, metadata=att.metadata, **options)
        if got.__class__ is Answer:
            return LocalRpcError.of(got)

        def start(att: Attempt, opts: dict[str, Any]) -> Any:
            return self._mc("unary_stream", att.key)(
                request, timeout=att.timeout, metadata=att.metadata, **opts)

        return MeshStream(got, start, options)  # type: ignore[arg-type]


class StreamUnary(_Multi, grpc.StreamUnaryMultiCallable):  # type: ignore[misc]
    def __call__(self, request_iterator: Iterator[Any], timeout: float | None = None,
                 metadata: Any = None, credentials: Any = None,
                 wait_for_ready: bool | None = None, compression: Any = None) -> Any:
        return self.with_call(request_iterator, timeout, metadata, credentials,
                              wait_for_ready, compression)[0]

    def with_call(self, request_iterator: Iterator[Any], timeout: float | None = None,
                  metadata: Any = None, credentials: Any = None,
                  wait_for_ready: bool | None = None, compression: Any = None) -> Any:
        mc, att, state = self._route("stream_unary", metadata, timeout)
        try:
            got = mc.with_call(request_iterator, timeout=att.timeout, metadata=att.metadata,
                               credentials=credentials, wait_for_ready=wait_for_ready,
                               compression=compression)
        except grpc.RpcError as exc:
            if state is not None:
                state.finish(exc.code(), exc.details() or "")
            raise
        except BaseException:
            if state is not None:
                state.abandon()
            raise
        if state is not None:
            state.finish(_OK, "")
        return got

    def future(self, request_iterator: Iterator[Any], timeout: float | None = None,
               metadata: Any = None, credentials: Any = None,
               wait_for_ready: bool | None = None, compression: Any = None) -> Any:
        try:
            mc, att, state = self._route("stream_unary", metadata, timeout)
        except LocalRpcError as exc:
            return exc
        fut = mc.future(request_iterator, timeout=att.timeout, metadata=att.metadata,
                        credentials=credentials, wait_for_ready=wait_for_ready,
                        compression=compression)
        if state is not None:
            fut.add_done_callback(lambda f: finish_from(state, f))
        return fut


class StreamStream(_Multi, grpc.StreamStreamMultiCallable):  # type: ignore[misc]
    def __call__(self, request_iterator: Iterator[Any], timeout: float | None = None,
                 metadata: Any = None, credentials: Any = None,
                 wait_for_ready: bool | None = None, compression: Any = None) -> Any:
        try:
            mc, att, state = self._route("stream_stream", metadata, timeout)
        except LocalRpcError as exc:
            return exc
        call = mc(request_iterator, timeout=att.timeout, metadata=att.metadata,
                  credentials=credentials, wait_for_ready=wait_for_ready,
                  compression=compression)
        if state is not None:
            call.add_done_callback(lambda f: finish_from(state, f))
        return call
