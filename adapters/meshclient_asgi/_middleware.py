"""``AuthzMiddleware``: a pure ASGI class (STYLE §4) deciding before the app runs.

http and websocket scopes are decided; every other scope type (lifespan, unknown) passes
straight to the app. A WebSocket is refused before it is accepted: with a 403 response when
the server offers ``websocket.http.response``, otherwise by closing with 1008 (the server then
answers HTTP 403). The caller's identity goes to the app in ``scope["state"]`` and
``scope`` under ``"meshclient.identity"``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final

from meshclient.authz import (
    Authorizer,
    AuthzResult,
    DecisionHook,
    Issuer,
    KeyStore,
    PathOptions,
    SnapshotSource,
    Verdict,
    Workload,
)
from meshclient.authz._audit import DENY_ON_ERROR, LogDecisions
from meshclient.authz._paths import DEFAULT_PATH_OPTIONS

__all__ = ["IDENTITY_KEY", "AuthzMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IDENTITY_KEY: Final = "meshclient.identity"
_log = logging.getLogger("meshclient.authz")
_ERRORS: Final = {400: "bad_request", 401: "unauthorized", 403: "forbidden"}


def _body(verdict: Verdict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status = verdict.status if verdict.status in _ERRORS else 403
    # Only a reason code: nothing of the policy's contents reaches the caller.
    body = json.dumps({"error": _ERRORS[status], "reason": verdict.reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer error="invalid_token"'))
    return status, headers, body


class AuthzMiddleware:
    """Authorize every HTTP request and WebSocket handshake against the mesh's policies.

    Args:
        app: The ASGI application to protect.
        mesh: Where policies come from (a ``meshclient.Mesh`` or a ``Store``).
        workload: This server's ``Workload`` (namespace, labels, service account), or a
            mapping of its fields.
        authorizer: Use this ``Authorizer`` instead of building one (then the options
            below must not be given).
        clock: Seconds since the epoch, for token expiry.

    The remaining keyword options are ``meshclient.authz.Authorizer``'s.

    Raises:
        TypeError, ValueError: an option is invalid (named in the message).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        mesh: SnapshotSource | None = None,
        workload: Workload | Mapping[str, Any] | None = None,
        issuers: Iterable[Issuer] = (),
        keys: KeyStore | None = None,
        token_headers: Iterable[str] = ("authorization",),
        trusted_proxies: Iterable[str] = (),
        path_options: PathOptions = DEFAULT_PATH_OPTIONS,
        reject_invalid_tokens: bool = True,
        log_decisions: LogDecisions = "deny",
        on_decision: DecisionHook | None = None,
        authorizer: Authorizer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if authorizer is None:
            if mesh is None or workload is None:
                raise TypeError("AuthzMiddleware: give mesh= and workload= (or authorizer=)")
            wl = workload if isinstance(workload, Workload) else Workload(**workload)
            authorizer = Authorizer(
                mesh, wl, issuers=issuers, keys=keys, token_headers=token_headers,
                trusted_proxies=trusted_proxies, path_options=path_options,
                reject_invalid_tokens=reject_invalid_tokens, log_decisions=log_decisions,
                on_decision=on_decision,
            )
        elif mesh is not None or workload is not None:
            raise TypeError("AuthzMiddleware: give authorizer= or mesh=/workload=, not both")
        self.app = app
        self.authorizer = authorizer
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            result = self._check(scope)
            if result.refresh is not None:
                # An unknown key id: fetch the issuer's keys (blocking I/O) off the loop, once.
                await asyncio.get_running_loop().run_in_executor(None, result.refresh)
                result = self._check(scope)
        except Exception:
            _log.exception("authorization could not decide; denying")
            result = AuthzResult(verdict=DENY_ON_ERROR)
        if not result.verdict.allowed:
            await self._deny(scope, receive, send, result.verdict)
            return
        scope.setdefault("state", {})[IDENTITY_KEY] = result.caller
        scope[IDENTITY_KEY] = result.caller
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> AuthzResult:
        raw_path = scope.get("raw_path")
        if not raw_path:
            # Without raw_path the server already decoded the path: never decode it twice.
            raw_path = str(scope.get("path", "/")).replace("%", "%25").encode("utf-8")
        cert = None
        tls = (scope.get("extensions") or {}).get("tls")
        if tls:
            chain = tls.get("client_cert_chain") or ()
            cert = chain[0] if chain else None
        client = scope.get("client")
        server = scope.get("server")
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        return self.authorizer.check(
            method=method,
            path=raw_path,
            headers=scope.get("headers", ()),
            now=self._clock(),
            port=server[1] if server and len(server) > 1 else None,
            destination_ip=server[0] if server else None,
            source_ip=client[0] if client else None,
            peer_certificate=cert,
        )

    async def _deny(self, scope: Scope, receive: Receive, send: Send, verdict: Verdict) -> None:
        status, headers, body = _body(verdict)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        message = await receive()  # websocket.connect
        if message.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # Closing before accept makes the server answer HTTP 403 (ASGI spec).
            await send({"type": "websocket.close", "code": 1008})
