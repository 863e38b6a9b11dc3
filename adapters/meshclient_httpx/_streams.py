"""The backend's response body as the caller reads it: reported and released on close.

Closing the stream (or reading it to the end, which httpx follows with a close) is when an
attempt is over: the balancer hears its outcome and latency, its pool lease is released
(closing a retired pool), and the request is observed. A read error or the route's timeout
expiring mid-body makes the outcome a failure instead of the status.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import anyio
import httpcore
import httpx

from meshclient.resilience import Failure
from meshclient_httpx._exceptions import map_exception
from meshclient_httpx._exchange import Exchange, Upstream
from meshclient_httpx._pools import PoolEntry

__all__ = ["AsyncOwner", "AsyncStream", "SyncOwner", "SyncStream"]

_clock = time.monotonic


class SyncOwner(Protocol):
    def _release(self, entry: PoolEntry[Any]) -> None: ...

    def _report(self, ex: Exchange, up: Upstream, failure: Failure | None) -> None: ...


class AsyncOwner(Protocol):
    def _end_lease(self, entry: PoolEntry[Any]) -> Any: ...

    def _report(self, ex: Exchange, up: Upstream, failure: Failure | None) -> None: ...


class SyncStream(httpx.SyncByteStream):
    """The backend's body; on close, reports the attempt and releases its pool lease."""

    __slots__ = ("_done", "_ex", "_failure", "_t", "_up")

    def __init__(self, transport: SyncOwner, ex: Exchange, up: Upstream) -> None:
        self._t = transport
        self._ex = ex
        self._up = up
        self._done = False
        self._failure: Failure | None = None

    def __iter__(self) -> Iterator[bytes]:
        deadline = self._up.deadline
        try:
            for part in self._up.response.stream:  # type: ignore[union-attr]
                if deadline is not None and _clock() > deadline:
                    self._failure = Failure.TIMEOUT
                    raise httpx.ReadTimeout("the route's timeout expired while reading the "
                                            "response body", request=self._ex.request)
                yield part
        except httpx.ReadTimeout:
            raise
        except Exception as exc:
            self._failure = Failure.TIMEOUT if isinstance(
                exc, httpcore.TimeoutException) else Failure.RESET
            raise map_exception(exc, self._ex.request) from exc

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            # What httpcore's ``Response.close`` does, minus its isinstance check against
            # ``typing.Iterable`` (an ABC walk on every request).
            close = getattr(self._up.response.stream, "close", None)
            if close is not None:
                close()
        finally:
            self._t._release(self._up.entry)
            self._t._report(self._ex, self._up, self._failure)


class AsyncStream(httpx.AsyncByteStream):
    """The async twin of ``SyncStream``."""

    __slots__ = ("_done", "_ex", "_failure", "_t", "_up")

    def __init__(self, transport: AsyncOwner, ex: Exchange, up: Upstream) -> None:
        self._t = transport
        self._ex = ex
        self._up = up
        self._done = False
        self._failure: Failure | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        deadline = self._up.deadline
        stream = self._up.response.stream
        try:
            if deadline is None:
                async for part in stream:  # type: ignore[union-attr]
                    yield part
                return
            parts = stream.__aiter__()  # type: ignore[union-attr]
            while True:
                # One cancel scope per read, never held across a yield (anyio's rule for
                # async generators).
                with anyio.fail_after(max(deadline - _clock(), 0.0)):
                    try:
                        part = await parts.__anext__()
                    except StopAsyncIteration:
                        return
                yield part
        except TimeoutError as exc:
            self._failure = Failure.TIMEOUT
            raise httpx.ReadTimeout("the route's timeout expired while reading the response "
                                    "body", request=self._ex.request) from exc
        except Exception as exc:
            self._failure = Failure.TIMEOUT if isinstance(
                exc, httpcore.TimeoutException) else Failure.RESET
            raise map_exception(exc, self._ex.request) from exc

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            # As ``SyncStream.close``: httpcore's ``aclose`` without its ABC check.
            aclose = getattr(self._up.response.stream, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            # No coroutine for the lease unless a retired pool must close now.
            retired = self._t._end_lease(self._up.entry)
            if retired is not None:
                await retired.aclose()
            self._t._report(self._ex, self._up, self._failure)
