"""The call objects the aio channel hands out when it answers or retries a call itself.

* ``LocalCall``: a status meshclient answered without sending anything, shaped as any
  grpc.aio call (awaiting, reading or iterating it raises ``grpc.aio.AioRpcError``).
* ``UnaryCall``: a unary-unary call whose retries run in a task started with the call, so
  every attempt is reported even when nobody awaits it.
* ``UnaryStreamCall``: a unary-stream call retried on another endpoint until its first
  message arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import grpc
import grpc.aio

from meshclient_grpc._calls import RETRY, Answer, Attempt, CallState

__all__ = ["LocalCall", "UnaryCall", "UnaryStreamCall", "report_when_done"]

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


def report_when_done(state: CallState, call: Any) -> None:
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


class UnaryCall(_Retrying, grpc.aio.UnaryUnaryCall):  # type: ignore[misc]
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


class UnaryStreamCall(_Retrying, grpc.aio.UnaryStreamCall):  # type: ignore[misc]
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
                report_when_done(state, call)  # no retry from here; report however it ends
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
