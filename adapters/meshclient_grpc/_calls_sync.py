"""The call objects the sync channel hands out when it answers or retries a call itself.

* ``LocalRpcError``: a status the mesh answered without sending anything (a reject, strict
  mode, a TLS policy grpcio cannot honour). Like grpcio's own errors it is a ``grpc.Call``,
  and also a finished ``grpc.Future`` and an iterator that raises it, so it stands in for the
  result of every call shape.
* ``MeshFuture``: ``future()`` of a unary-unary call whose attempts chain through done
  callbacks (a retry waits on a timer thread, never in grpcio's callback thread).
* ``MeshStream``: a unary-stream call that is retried until its first message arrives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from meshclient_grpc._calls import RETRY, Answer, CallState

__all__ = ["LocalRpcError", "MeshFuture", "MeshStream", "finish_from"]

Start = Callable[[Any, dict[str, Any]], Any]
"""``start(attempt, options)`` sends one attempt and returns grpcio's call object."""


class LocalRpcError(grpc.RpcError, grpc.Call, grpc.Future):  # type: ignore[misc]
    """A status meshclient answered itself; nothing was sent to any server."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    @classmethod
    def of(cls, answer: Answer) -> LocalRpcError:
        return cls(answer.code, answer.details)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def debug_error_string(self) -> str:
        return f"meshclient: {self._code.name}: {self._details}"

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        raise self

    def exception(self, timeout: float | None = None) -> LocalRpcError:
        return self

    def traceback(self, timeout: float | None = None) -> None:
        return None

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)

    def __iter__(self) -> LocalRpcError:
        return self

    def __next__(self) -> Any:
        raise self

    def __str__(self) -> str:
        return f"<LocalRpcError {self._code.name}: {self._details}>"


def finish_from(state: CallState, f: Any) -> None:
    """A done callback that reports a call the channel does not otherwise watch."""
    if f.cancelled():
        state.abandon()
    else:
        state.finish(f.code(), f.details() or "")


class _Delegating(grpc.Call, grpc.Future):  # type: ignore[misc]
    """Call and Future methods answered by the current attempt's grpcio object."""

    _call: Any

    def code(self) -> grpc.StatusCode:
        return self._call.code()

    def details(self) -> str:
        return self._call.details()  # type: ignore[no-any-return]

    def initial_metadata(self) -> Any:
        return self._call.initial_metadata()

    def trailing_metadata(self) -> Any:
        return self._call.trailing_metadata()

    def is_active(self) -> bool:
        return self._call.is_active()  # type: ignore[no-any-return]

    def time_remaining(self) -> float | None:
        return self._call.time_remaining()  # type: ignore[no-any-return]

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return self._call.add_callback(callback)  # type: ignore[no-any-return]

    def cancelled(self) -> bool:
        return self._call.cancelled()  # type: ignore[no-any-return]

    def running(self) -> bool:
        return self._call.running()  # type: ignore[no-any-return]

    def done(self) -> bool:
        return self._call.done()  # type: ignore[no-any-return]

    def result(self, timeout: float | None = None) -> Any:
        return self._call.result(timeout)

    def exception(self, timeout: float | None = None) -> Any:
        return self._call.exception(timeout)

    def traceback(self, timeout: float | None = None) -> Any:
        return self._call.traceback(timeout)

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        self._call.add_done_callback(lambda _f: fn(self))

    def cancel(self) -> bool:
        return self._call.cancel()  # type: ignore[no-any-return]


class MeshStream(_Delegating):
    """A unary-stream call, retried on another endpoint until its first message arrives."""

    def __init__(self, state: CallState, start: Start, options: dict[str, Any]) -> None:
        self._state = state
        self._start_one = start
        self._options = options
        self._started = False
        self._start()

    def _start(self) -> None:
        att = self._state.next_attempt()
        if att.__class__ is Answer:
            self._call = LocalRpcError.of(att)
            return
        self._call = self._start_one(att, self._options)

    def __iter__(self) -> MeshStream:
        return self

    def __next__(self) -> Any:
        state = self._state
        while True:
            call = self._call
            try:
                message = next(call)
            except StopIteration:
                if not self._started:  # else the done callback reports (one thread only)
                    state.finish(grpc.StatusCode.OK, "")
                raise
            except LocalRpcError:
                raise
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if self._started:
                    raise
                what = state.after(code, details)
                if what is RETRY:
                    if state.delay > 0:
                        time.sleep(state.delay)
                    self._start()
                    continue
                if what.__class__ is Answer:
                    self._call = LocalRpcError.of(what)
                    raise self._call from exc
                raise
            if not self._started:
                self._started = True
                # From here on no retry is possible; report whenever the stream ends, even
                # if the caller stops reading.
                call.add_done_callback(lambda f: finish_from(state, f))
            return message

    def cancel(self) -> bool:
        got = self._call.cancel()
        if not self._started:  # a started stream is reported by its done callback
            self._state.abandon()
        return got  # type: ignore[no-any-return]


class MeshFuture(_Delegating):
    """``future()`` of a unary-unary call: attempts chained by done callbacks."""

    def __init__(self, state: CallState, start: Start, options: dict[str, Any]) -> None:
        self._state = state
        self._start_one = start
        self._options = options
        self._cond = threading.Condition()
        self._finished = False
        self._cancelled = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Any], None]] = []
        self._call: Any = None
        self._start()

    def _start(self) -> None:
        att = self._state.next_attempt()
        if att.__class__ is Answer:
            self._set(None, LocalRpcError.of(att))
            return
        fut = self._start_one(att, self._options)
        with self._cond:
            self._call = fut
            cancel = self._cancelled
        if cancel:
            fut.cancel()
        fut.add_done_callback(self._attempt_done)

    def _restart(self) -> None:
        if self._cancelled:
            return
        try:
            self._start()
        except BaseException as exc:  # e.g. the channel was closed meanwhile
            self._state.abandon()
            self._set(None, exc)

    def _attempt_done(self, fut: Any) -> None:
        state = self._state
        if fut.cancelled():
            state.abandon()
            self._set(None, None, cancelled=True)
            return
        error = fut.exception()
        if error is None:
            state.finish(grpc.StatusCode.OK, "")
            self._set(fut.result(), None)
            return
        what = state.after(fut.code(), fut.details() or "")
        if what is RETRY and not self._cancelled:
            timer = threading.Timer(state.delay, self._restart)
            timer.daemon = True
            timer.start()
            return
        if what.__class__ is Answer:
            error = LocalRpcError.of(what)
        self._set(None, error)

    def _set(self, value: Any, error: BaseException | None, *, cancelled: bool = False) -> None:
        with self._cond:
            if self._finished:
                return  # cancelled first; the attempt's own end comes later
            self._value, self._error = value, error
            self._cancelled = self._cancelled or cancelled
            self._finished = True
            if isinstance(error, LocalRpcError):
                self._call = error
            callbacks, self._callbacks = self._callbacks, []
            self._cond.notify_all()
        for fn in callbacks:
            fn(self)

    def _wait(self, timeout: float | None) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._finished, timeout):
                raise grpc.FutureTimeoutError()

    def result(self, timeout: float | None = None) -> Any:
        self._wait(timeout)
        if self._cancelled:
            raise grpc.FutureCancelledError()
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        if self._cancelled:
            raise grpc.FutureCancelledError()
        return self._error

    def traceback(self, timeout: float | None = None) -> Any:
        error = self.exception(timeout)
        return error.__traceback__ if error is not None else None

    def cancel(self) -> bool:
        with self._cond:
            if self._finished:
                return False
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()  # its done callback releases the pick
        self._set(None, None, cancelled=True)
        return True

    def cancelled(self) -> bool:
        with self._cond:
            return self._cancelled and self._finished

    def running(self) -> bool:
        return not self.done()

    def done(self) -> bool:
        with self._cond:
            return self._finished

    def is_active(self) -> bool:
        return not self.done()

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        with self._cond:
            if not self._finished:
                self._callbacks.append(fn)
                return
        fn(self)

    def code(self) -> grpc.StatusCode:
        self._wait(None)
        return self._call.code()

    def details(self) -> str:
        self._wait(None)
        return self._call.details()  # type: ignore[no-any-return]
