"""``MeshTransport`` and ``AsyncMeshTransport``: drivers of the shared flow, and nothing else.

Each transport decides a request with the mesh, runs ``Flow.start`` (the same one-shot step
or generator for both) and does only the I/O the flow asks for: send an attempt on an
endpoint's httpcore pool, close a response, sleep. The backend's response goes back to the
caller with its stream wrapped (``_streams``), so that when the caller closes it the attempt
is reported to the balancer, its pool lease is released and the request is observed.
"""

from __future__ import annotations

import os
import ssl
import time
from types import GeneratorType
from typing import Any

import anyio
import httpcore
import httpx

from meshclient import Action, Mesh
from meshclient.balancing import BalancerConfig
from meshclient.resilience import Failure, Outcome
from meshclient_httpx._exchange import Exchange, Upstream
from meshclient_httpx._flow import INNER, Done, Flow, Send
from meshclient_httpx._messages import edit_headers, head_of
from meshclient_httpx._observe import Hook, Observer
from meshclient_httpx._pools import PoolEntry, PoolSet, PoolStatistics
from meshclient_httpx._shared import DEFAULT_LIMITS, Shared, map_exception
from meshclient_httpx._streams import AsyncStream, SyncStream
from meshclient_httpx._tls import ClientCert

__all__ = ["AsyncMeshTransport", "MeshTransport"]

_clock = time.monotonic


class _Base:
    _s: Shared
    _flow: Flow
    _observer: Observer

    def _observe(self, ex: Exchange, status: int | None) -> None:
        observer = self._observer
        if observer.idle():
            return
        if observer.active(ex.outcome in ("response", "passthrough", "gateway")
                           and status is not None and status < 500):
            observer.emit(ex.record(status, _clock()))

    def _response(self, ex: Exchange, up: Upstream, stream: httpx.SyncByteStream |
                  httpx.AsyncByteStream) -> httpx.Response:
        resp = up.response
        headers = resp.headers
        if up.edits is not None:
            headers = edit_headers(headers, up.edits)
        if up.extra:
            headers = [*headers, *up.extra]
        return httpx.Response(resp.status, headers=headers, stream=stream,
                              extensions=resp.extensions, request=ex.request)

    def _report(self, ex: Exchange, up: Upstream, failure: Failure | None) -> None:
        pick = up.pick
        if pick is not None:
            outcome = Outcome.failed(failure) if failure is not None else Outcome.response(
                up.response.status)
            self._flow.balancer.report(pick, outcome, _clock() - up.sent_at, now=time.time())
        if failure is not None:
            ex.error = failure.value
        self._observe(ex, up.response.status)

    def _abandon(self, op: Send) -> None:
        pool = self._pools.release(op.entry)
        if pool is not None:
            self._retired(pool)
        if op.pick is not None:
            self._flow.balancer.report(op.pick, None, None, now=time.time())

    def _retired(self, pool: Any) -> None:
        raise NotImplementedError

    def _end_lease(self, entry: PoolEntry[Any]) -> Any:
        """End one lease; returns the pool to close (retired and now idle), else None."""
        return self._pools.release(entry)

    def reload_client_cert(self) -> None:
        """Present the ``client_cert`` files again (after they were rotated) on new handshakes.

        Connections already open keep the certificate they were made with until they close.
        """
        self._s.tls.reload_client_cert()

    def statistics(self) -> PoolStatistics:
        """Counters of the endpoint pools (tests and operators: ``repr`` shows them too)."""
        return self._pools.statistics()

    _pools: PoolSet[Any]


class MeshTransport(_Base, httpx.BaseTransport):
    """An httpx transport that sends mesh requests straight to the right pod.

    Args:
        mesh: The mesh configuration (``meshclient.Mesh``).
        inner: Where requests for other hosts go unchanged (and ``via: gateway`` requests
            when the Gateway has no address); a plain ``httpx.HTTPTransport()`` by default.
        strict: Refuse requests for hosts that are not the mesh's
            (``httpx.UnsupportedProtocol``) instead of passing them through.
        http2: Offer HTTP/2 (ALPN) on TLS connections to endpoints (needs ``h2``).
            ``kubernetes.io/h2c`` backends always get HTTP/2 with prior knowledge.
        limits: Connection limits of *each* endpoint's pool.
        verify: Trust for ``https://`` mesh requests whose backend has no BackendTLSPolicy
            (and for the gateway hop); None: the system store. Policies bring their own CA.
            httpcore sets ALPN on the context at every connect, so do not share one context
            between transports that differ in ``http2``.
        client_cert: ``(certfile, keyfile[, password])`` presented to backends over TLS.
        token_file: A projected service-account token file, sent with each mesh request
            (re-read when it rotates) unless the request already has that header.
        token_header: ``authorization`` (sends ``Bearer <token>``) or a header of your own.
        plaintext_same_node: Operator option: speak plaintext to endpoints on this node
            even where TLS is asked for (needs ``BalancerConfig.locality.node``).
        mirror_concurrency: Mirror copies in flight at most (background threads).
        on_request: Called with a ``RequestRecord`` when each request is over.
        balancer_config: Balancer settings, used if this is the first balancer of ``mesh``.
        rand: Uniform floats in [0, 1) for weights, mirrors and jitter (tests: a seed).
    """

    def __init__(
        self,
        mesh: Mesh,
        *,
        inner: httpx.BaseTransport | None = None,
        strict: bool = False,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | None = None,
        client_cert: ClientCert | None = None,
        token_file: str | os.PathLike[str] | None = None,
        token_header: str = "authorization",
        plaintext_same_node: bool = False,
        mirror_concurrency: int = 4,
        on_request: Hook | None = None,
        balancer_config: BalancerConfig | None = None,
        rand: Any = None,
    ) -> None:
        self._s = Shared(mesh, strict=strict, http2=http2, limits=limits, verify=verify,
                         client_cert=client_cert, token_file=token_file,
                         token_header=token_header, plaintext_same_node=plaintext_same_node,
                         mirror_concurrency=mirror_concurrency, on_request=on_request,
                         balancer_config=balancer_config, rand=rand)
        self._inner = inner if inner is not None else httpx.HTTPTransport()
        self._pools: PoolSet[httpcore.ConnectionPool] = PoolSet(self._s.sync_pool)
        self._mesh = mesh
        self._flow = self._s.flow
        self._observer = self._s.observer
        self._s.subscribe(self._endpoints_changed)

    def _endpoints_changed(self, live: frozenset[tuple[str, int]]) -> None:
        for pool in self._pools.retire(live):
            pool.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = _clock()
        head = head_of(request)
        decision = self._mesh.decide(head) if head is not None else None
        if decision is None or decision.action is Action.PASSTHROUGH:
            if self._s.strict:
                raise self._s.refuse(request)
            return self._inner.handle_request(request)
        ex = Exchange(request, head, decision, start)  # type: ignore[arg-type]
        flow: Any = self._flow.start(ex, self._pools)
        if flow.__class__ is Send:
            try:
                response = flow.entry.pool.handle_request(flow.request)
            except Exception as exc:
                error = self._flow.failed(ex, flow, map_exception(exc, request))
            except BaseException:  # interrupted: the attempt is abandoned
                self._abandon(flow)
                raise
            else:
                up = self._flow.upstream(ex, flow, response)
                return self._response(ex, up, SyncStream(self, ex, up))
            # Raised outside the handler: the error carries its own cause (map_exception).
            self._release(flow.entry)
            self._observe(ex, None)
            raise error
        reply: Any = None
        try:
            while flow.__class__ is GeneratorType:
                op = flow.send(reply)
                cls = op.__class__
                if cls is Send:
                    reply = self._send(op, request)
                elif cls is Done:
                    self._done(op)
                    reply = None
                else:
                    time.sleep(op.delay)
                    reply = None
            result = flow
        except StopIteration as stop:
            result = stop.value
        except Exception:
            self._observe(ex, None)
            raise
        if result.__class__ is Upstream:
            return self._response(ex, result, SyncStream(self, ex, result))
        if result is INNER:
            response = self._inner.handle_request(request)
            self._observe(ex, response.status_code)
            return response
        self._observe(ex, result.status_code)
        return result  # type: ignore[no-any-return]

    def _send(self, op: Send, request: httpx.Request) -> tuple[Any, Any, bool]:
        try:
            return op.entry.pool.handle_request(op.request), None, False
        except BaseException as exc:
            if not isinstance(exc, Exception):  # interrupted: the attempt is abandoned
                self._abandon(op)
                raise
            deadline = op.deadline
            hit = deadline is not None and isinstance(
                exc, httpcore.TimeoutException) and _clock() >= deadline - 0.005
            return None, map_exception(exc, request), hit

    def _done(self, op: Done) -> None:
        try:
            if op.response is not None:
                op.response.close()
        finally:
            self._release(op.entry)

    def _retired(self, pool: Any) -> None:
        pool.close()

    def _release(self, entry: PoolEntry[httpcore.ConnectionPool]) -> None:
        pool = self._pools.release(entry)
        if pool is not None:
            pool.close()

    def close(self) -> None:
        self._s.mirrors.close()
        for pool in self._pools.drain():
            pool.close()
        self._inner.close()

    def __repr__(self) -> str:
        return f"<MeshTransport {self._pools!r}>"


class AsyncMeshTransport(_Base, httpx.AsyncBaseTransport):
    """The async twin of ``MeshTransport`` (asyncio and trio), with the same arguments."""

    def __init__(
        self,
        mesh: Mesh,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        strict: bool = False,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | None = None,
        client_cert: ClientCert | None = None,
        token_file: str | os.PathLike[str] | None = None,
        token_header: str = "authorization",
        plaintext_same_node: bool = False,
        mirror_concurrency: int = 4,
        on_request: Hook | None = None,
        balancer_config: BalancerConfig | None = None,
        rand: Any = None,
    ) -> None:
        self._s = Shared(mesh, strict=strict, http2=http2, limits=limits, verify=verify,
                         client_cert=client_cert, token_file=token_file,
                         token_header=token_header, plaintext_same_node=plaintext_same_node,
                         mirror_concurrency=mirror_concurrency, on_request=on_request,
                         balancer_config=balancer_config, rand=rand)
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self._pools: PoolSet[httpcore.AsyncConnectionPool] = PoolSet(
            self._s.async_pool, shards=self._s.async_shards)
        self._mesh = mesh
        self._flow = self._s.flow
        self._observer = self._s.observer
        # Pools retired by a mesh change (another thread) are closed in this event loop.
        self._to_close: list[httpcore.AsyncConnectionPool] = []
        self._s.subscribe(self._endpoints_changed)

    def _endpoints_changed(self, live: frozenset[tuple[str, int]]) -> None:
        self._to_close.extend(self._pools.retire(live))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = _clock()
        if self._to_close:
            await self._close_retired()
        head = head_of(request)
        decision = self._mesh.decide(head) if head is not None else None
        if decision is None or decision.action is Action.PASSTHROUGH:
            if self._s.strict:
                raise self._s.refuse(request)
            return await self._inner.handle_async_request(request)
        ex = Exchange(request, head, decision, start)  # type: ignore[arg-type]
        flow: Any = self._flow.start(ex, self._pools)
        if flow.__class__ is Send:
            try:
                response = await flow.entry.pool.handle_async_request(flow.request)
            except Exception as exc:
                error = self._flow.failed(ex, flow, map_exception(exc, request))
            except BaseException:  # cancelled: see _send
                self._abandon(flow)
                raise
            else:
                up = self._flow.upstream(ex, flow, response)
                return self._response(ex, up, AsyncStream(self, ex, up))
            # Raised outside the handler: the error carries its own cause (map_exception).
            await self._release(flow.entry)
            self._observe(ex, None)
            raise error
        reply: Any = None
        try:
            while flow.__class__ is GeneratorType:
                op = flow.send(reply)
                cls = op.__class__
                if cls is Send:
                    reply = await self._send(op, request)
                elif cls is Done:
                    await self._done(op)
                    reply = None
                else:
                    await anyio.sleep(op.delay)
                    reply = None
            result = flow
        except StopIteration as stop:
            result = stop.value
        except Exception:
            self._observe(ex, None)
            raise
        if result.__class__ is Upstream:
            return self._response(ex, result, AsyncStream(self, ex, result))
        if result is INNER:
            response = await self._inner.handle_async_request(request)
            self._observe(ex, response.status_code)
            return response
        self._observe(ex, result.status_code)
        return result  # type: ignore[no-any-return]

    async def _send(self, op: Send, request: httpx.Request) -> tuple[Any, Any, bool]:
        try:
            return await self._send_once(op, request)
        except BaseException:
            # Cancelled (or interrupted): nothing to await now; count the attempt as
            # abandoned and let the pool close later in this loop if it was retired.
            self._abandon(op)
            raise

    async def _send_once(self, op: Send, request: httpx.Request) -> tuple[Any, Any, bool]:
        deadline = op.deadline
        try:
            if deadline is None:
                return await op.entry.pool.handle_async_request(op.request), None, False
            # httpcore's timeouts bound each read; the route bounds the whole try.
            with anyio.fail_after(max(deadline - _clock(), 0.0)):
                return await op.entry.pool.handle_async_request(op.request), None, False
        except TimeoutError as exc:
            timeout = httpx.ReadTimeout("the route's timeout expired", request=request)
            timeout.__cause__ = exc
            return None, timeout, True
        except Exception as exc:
            hit = deadline is not None and isinstance(
                exc, httpcore.TimeoutException) and _clock() >= deadline - 0.005
            return None, map_exception(exc, request), hit

    async def _done(self, op: Done) -> None:
        try:
            if op.response is not None:
                await op.response.aclose()
        finally:
            await self._release(op.entry)

    def _retired(self, pool: Any) -> None:
        self._to_close.append(pool)

    async def _release(self, entry: PoolEntry[httpcore.AsyncConnectionPool]) -> None:
        pool = self._pools.release(entry)
        if pool is not None:
            await pool.aclose()

    async def _close_retired(self) -> None:
        pools, self._to_close = self._to_close, []
        for pool in pools:
            await pool.aclose()

    async def aclose(self) -> None:
        # Joining the mirror threads blocks; do it off the event loop.
        await anyio.to_thread.run_sync(self._s.mirrors.close)
        await self._close_retired()
        for pool in self._pools.drain():
            await pool.aclose()
        await self._inner.aclose()

    def __repr__(self) -> str:
        return f"<AsyncMeshTransport {self._pools!r}>"
