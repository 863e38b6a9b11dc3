"""Request mirrors (SPEC-NOTES §3.5): copies sent in the background, their answers ignored.

A copy must never delay or change the main response, so ``submit`` only puts the copy on a
bounded queue and returns; a few worker threads send it (with their own sync pools, which
also serves the async transport without touching its event loop, under asyncio or trio). A
full queue drops the copy and says so in the log: mirroring is best effort, the caller's
request is not. A body can be copied only when it is already in memory (``content=bytes``,
``json=``, ``data=``); streamed bodies are not mirrored (the main request consumes them).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import httpcore
import httpx

from meshclient.balancing import Balancer, Pick
from meshclient.resilience import Failure, Outcome
from meshclient.routing import Backend, Mirror, RequestHead
from meshclient_httpx._messages import encode_headers, encode_path
from meshclient_httpx._observe import log
from meshclient_httpx._pools import PoolKey, PoolSet

__all__ = ["CLOSE_WAIT", "DEFAULT_MIRROR_TIMEOUT", "MirrorSender"]

DEFAULT_MIRROR_TIMEOUT: Final = 10.0
CLOSE_WAIT: Final = 2.0
"""Seconds ``close`` waits, in all, for the workers to finish their queued copies."""
_STOP: Final = object()

KeyFor = Callable[[RequestHead, Backend, "Pick[Backend]"], PoolKey]
_Job = tuple[RequestHead, Backend, bytes]


class MirrorSender:
    """Sends mirror copies with at most ``concurrency`` in flight and ``queue_size`` waiting.

    Args:
        balancer: Picks one endpoint of the mirror's backend per copy (and is told how it
            went, so outlier detection sees mirror backends too).
        make_pool: Builds a sync httpcore pool for a key (shared TLS contexts).
        key_for: The pool key for (request, backend, pick), as for main requests.
        concurrency: Worker threads (started on the first copy).
        queue_size: Copies waiting beyond those in flight; more are dropped.
        timeout: Seconds each copy may take, per operation.
    """

    def __init__(self, *, balancer: Balancer, make_pool: Callable[[PoolKey], Any],
                 key_for: KeyFor, wall: Callable[[], float], concurrency: int = 4,
                 queue_size: int = 64, timeout: float = DEFAULT_MIRROR_TIMEOUT) -> None:
        if concurrency < 1:
            raise ValueError(f"mirror_concurrency: {concurrency!r} must be at least 1")
        self._balancer = balancer
        self._key_for = key_for
        self._wall = wall
        self._pools: PoolSet[httpcore.ConnectionPool] = PoolSet(make_pool)
        self._queue: queue.Queue[_Job | object] = queue.Queue(queue_size)
        self._concurrency = concurrency
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._timeout = {"connect": timeout, "read": timeout, "write": timeout,
                         "pool": timeout}
        self.sent = 0
        """Copies that got a response (any status)."""
        self.failed = 0
        """Copies that got none (or found no endpoint)."""
        self.dropped = 0
        """Copies not sent: queue full, or a body that cannot be copied."""

    @property
    def pools(self) -> PoolSet[httpcore.ConnectionPool]:
        return self._pools

    def submit(self, request: httpx.Request, head: RequestHead,
               mirrors: Sequence[Mirror]) -> int:
        """Queue one copy of ``head`` per mirror; returns how many were queued."""
        stream = request.stream
        if not isinstance(stream, httpx.ByteStream):
            self.dropped += len(mirrors)
            log.debug("not mirroring %s %s: its body is streamed and cannot be copied",
                      head.method, head.path)
            return 0
        body = request.content
        if not self._threads:
            self._start()
        queued = 0
        for m in mirrors:
            try:
                self._queue.put_nowait((head, m.backend, body))
                queued += 1
            except queue.Full:
                self.dropped += 1
                log.info("mirror queue full; dropped the copy of %s %s for %s/%s", head.method,
                         head.path, m.backend.namespace, m.backend.name)
        return queued

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._closed:
                return
            for i in range(self._concurrency):
                t = threading.Thread(target=self._work, name=f"meshclient-mirror-{i}",
                                     daemon=True)
                t.start()
                self._threads.append(t)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            try:
                self._send(job)  # type: ignore[arg-type]
            except Exception:  # a copy must never take a worker down
                log.exception("mirror copy failed unexpectedly")

    def _send(self, job: _Job) -> None:
        head, backend, body = job
        got = self._balancer.pick((backend,), now=self._wall())
        if not isinstance(got, Pick):
            self.failed += 1
            log.debug("mirror %s/%s: %s", backend.namespace, backend.name, got.reason)
            return
        key = self._key_for(head, backend, got)
        entry = self._pools.acquire(key)
        extensions: dict[str, Any] = {"timeout": self._timeout}
        if key.tls_name is not None:
            extensions["sni_hostname"] = key.tls_name
        started = time.monotonic()
        outcome = None
        try:
            response = entry.pool.request(
                head.method.encode("ascii"),
                httpcore.URL(scheme=key.scheme, host=key.host.encode("ascii"), port=key.port,
                             target=encode_path(head.path)),
                headers=encode_headers(head.headers), content=body, extensions=extensions)
            outcome = Outcome.response(response.status)
            self.sent += 1
        except Exception as exc:
            outcome = Outcome.failed(
                Failure.CONNECT if isinstance(exc, httpcore.ConnectError | httpcore.ConnectTimeout)
                else Failure.TIMEOUT if isinstance(exc, httpcore.TimeoutException)
                else Failure.RESET)
            self.failed += 1
            log.debug("mirror copy to %s:%s failed: %s", key.host, key.port, exc)
        finally:
            self._balancer.report(got, outcome, time.monotonic() - started, now=self._wall())
            pool = self._pools.release(entry)
            if pool is not None:
                pool.close()

    def close(self) -> None:
        """Stop the workers (copies still queued are sent first) and close the pools."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_STOP)
        # Copies still queued are sent first, but closing waits for them only so long: a
        # worker stuck on a slow mirror backend is a daemon thread and ends with the process.
        end = time.monotonic() + CLOSE_WAIT
        for t in threads:
            t.join(timeout=max(0.0, end - time.monotonic()))
        for pool in self._pools.drain():
            pool.close()
