"""Server interceptors that authorize every call (sync ``grpc`` and ``grpc.aio``).

``intercept_service`` sees only the method and metadata, not the peer (grpc/grpc#18459), so
the interceptor wraps the handler it gets and decides inside it, where the ``ServicerContext``
gives the auth context (ECOSYSTEM §2.4). A denied call is aborted with PERMISSION_DENIED (or
UNAUTHENTICATED for missing or bad credentials) and the reason code as details. The caller's
identity is available to handlers through ``current_caller()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import grpc
import grpc.aio

from meshclient.authz import (
    ANONYMOUS,
    Authorizer,
    AuthzResult,
    Caller,
    DecisionHook,
    Issuer,
    KeyStore,
    SnapshotSource,
    Workload,
)
from meshclient.authz._audit import DENY_ON_ERROR, LogDecisions

__all__ = ["AioAuthzInterceptor", "AuthzInterceptor", "current_caller"]

_log = logging.getLogger("meshclient.authz")
_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar(
    "meshclient_grpc_caller", default=ANONYMOUS
)
_CODES: Final = {401: grpc.StatusCode.UNAUTHENTICATED}


def current_caller() -> Caller:
    """The authorized caller of the call being handled (``ANONYMOUS`` outside one)."""
    return _CALLER.get()


def _peer_ip(peer: str) -> str | None:
    # "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path"
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        host = rest.rsplit(":", 1)[0]
        return host.strip("[]")
    return None


def _first(ctx_auth: Mapping[str, Iterable[bytes]], key: str) -> str | None:
    values = list(ctx_auth.get(key, ()))
    return values[0].decode("ascii", "replace") if len(values) == 1 else None


class _Base:
    # The one constructor of both interceptors (their defaults are the documented ones).
    def __init__(
        self, *, mesh: SnapshotSource | None = None,
        workload: Workload | Mapping[str, Any] | None = None, port: int | None = None,
        issuers: Iterable[Issuer] = (), keys: KeyStore | None = None,
        token_headers: Iterable[str] = ("authorization",), trusted_proxies: Iterable[str] = (),
        reject_invalid_tokens: bool = True, log_decisions: LogDecisions = "deny",
        on_decision: DecisionHook | None = None, authorizer: Authorizer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if authorizer is None:
            if mesh is None or workload is None:
                raise TypeError("give mesh= and workload= (or authorizer=)")
            wl = workload if isinstance(workload, Workload) else Workload(**workload)
            authorizer = Authorizer(
                mesh, wl, issuers=issuers, keys=keys, token_headers=token_headers,
                trusted_proxies=trusted_proxies, reject_invalid_tokens=reject_invalid_tokens,
                log_decisions=log_decisions, on_decision=on_decision,
            )
        elif mesh is not None or workload is not None:
            raise TypeError("give authorizer= or mesh=/workload=, not both")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port: {port!r} is not a port number")
        self.authorizer = authorizer
        self.port = port
        self._clock = clock

    def _check(self, method: str, ctx: grpc.ServicerContext | grpc.aio.ServicerContext
               ) -> AuthzResult:
        try:
            auth = ctx.auth_context()
            metadata = [
                (k, v) for k, v in (ctx.invocation_metadata() or ())
                if isinstance(v, str) and not k.endswith("-bin")
            ]
            # The SPIFFE ID only when the cert has exactly one spiffe:// URI SAN (ECOSYSTEM §2.4).
            spiffe = _first(auth, "peer_spiffe_id")
            return self.authorizer.check(
                method="POST", path=method, headers=metadata, now=self._clock(),
                host=_first(auth, "ssl_requested_server_name"), port=self.port,
                source_ip=_peer_ip(ctx.peer() or ""), peer_spiffe_id=spiffe,
                sni=_first(auth, "ssl_requested_server_name"),
            )
        except Exception:
            _log.exception("authorization could not decide; denying")
            return AuthzResult(verdict=DENY_ON_ERROR)


def _code(result: AuthzResult) -> grpc.StatusCode:
    return _CODES.get(result.verdict.status, grpc.StatusCode.PERMISSION_DENIED)


class AuthzInterceptor(_Base, grpc.ServerInterceptor):  # type: ignore[misc]
    """Authorization for a sync ``grpc.server``.

    Args:
        mesh: Where policies come from (``meshclient.Mesh`` or a ``Store``).
        workload: This server's ``Workload`` or a mapping of its fields.
        port: The port the server listens on (policies on ports; gRPC does not tell).
        authorizer: Use this ``Authorizer`` instead of building one.

    The other options are ``meshclient.authz.Authorizer``'s.
    """

    def _guard(self, method: str, ctx: grpc.ServicerContext) -> Caller:
        result = self._check(method, ctx)
        if result.refresh is not None:
            result.refresh()  # blocking key fetch in this handler thread, then once more
            result = self._check(method, ctx)
        if not result.verdict.allowed:
            ctx.abort(_code(result), result.verdict.reason)  # raises
        return result.caller

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        guard = self._guard

        if handler.unary_unary:
            uu = handler.unary_unary

            def unary_unary(request: Any, ctx: grpc.ServicerContext) -> Any:
                token = _CALLER.set(guard(method, ctx))
                try:
                    return uu(request, ctx)
                finally:
                    _CALLER.reset(token)

            return handler._replace(unary_unary=unary_unary)
        if handler.unary_stream:
            us = handler.unary_stream

            def unary_stream(request: Any, ctx: grpc.ServicerContext) -> Iterator[Any]:
                caller = guard(method, ctx)
                token = _CALLER.set(caller)
                try:
                    yield from us(request, ctx)
                finally:
                    _CALLER.reset(token)

            return handler._replace(unary_stream=unary_stream)
        if handler.stream_unary:
            su = handler.stream_unary

            def stream_unary(requests: Iterator[Any], ctx: grpc.ServicerContext) -> Any:
                token = _CALLER.set(guard(method, ctx))
                try:
                    return su(requests, ctx)
                finally:
                    _CALLER.reset(token)

            return handler._replace(stream_unary=stream_unary)
        if handler.stream_stream:
            ss = handler.stream_stream

            def stream_stream(requests: Iterator[Any], ctx: grpc.ServicerContext
                              ) -> Iterator[Any]:
                caller = guard(method, ctx)
                token = _CALLER.set(caller)
                try:
                    yield from ss(requests, ctx)
                finally:
                    _CALLER.reset(token)

            return handler._replace(stream_stream=stream_stream)
        # A handler of no known shape cannot be guarded: refuse it rather than pass it.
        _log.error("unknown gRPC handler shape for %s; denying", method)
        return _deny_all_handler()


def _deny_all_handler() -> grpc.RpcMethodHandler:
    def deny(request: Any, ctx: grpc.ServicerContext) -> Any:
        ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "error")

    return grpc.unary_unary_rpc_method_handler(deny)


class AioAuthzInterceptor(_Base, grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authorization for a ``grpc.aio.server``; same options as ``AuthzInterceptor``."""

    async def _guard(self, method: str, ctx: grpc.aio.ServicerContext) -> Caller:
        result = self._check(method, ctx)
        if result.refresh is not None:
            await asyncio.get_running_loop().run_in_executor(None, result.refresh)
            result = self._check(method, ctx)
        if not result.verdict.allowed:
            await ctx.abort(_code(result), result.verdict.reason)  # raises
        return result.caller

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        guard = self._guard

        def wrap_unary(f: Callable[..., Any]) -> Callable[..., Any]:
            async def call(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                _CALLER.set(await guard(method, ctx))  # the call's own task context
                result = f(request, ctx)
                return await result if inspect.isawaitable(result) else result

            return call

        def wrap_stream(f: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.isasyncgenfunction(f):
                async def gen(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                    _CALLER.set(await guard(method, ctx))
                    async for item in f(request, ctx):
                        yield item

                return gen
            return wrap_unary(f)  # a coroutine writing with ctx.write()

        if handler.unary_unary:
            return handler._replace(unary_unary=wrap_unary(handler.unary_unary))
        if handler.unary_stream:
            return handler._replace(unary_stream=wrap_stream(handler.unary_stream))
        if handler.stream_unary:
            return handler._replace(stream_unary=wrap_unary(handler.stream_unary))
        if handler.stream_stream:
            return handler._replace(stream_stream=wrap_stream(handler.stream_stream))
        _log.error("unknown gRPC handler shape for %s; denying", method)
        return _deny_all_handler()
