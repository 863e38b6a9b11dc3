"""One call's life, independent of sync or aio: decide, pick, attempt, report, retry or stop.

``Router`` holds what a mesh channel shares between calls (the mesh, its balancer, retry
budgets, TLS names, the token). ``Router.begin`` decides a call: the mesh answers it
(``Answer``: a reject, strict mode, an unusable TLS policy), or it goes to one channel as it
is (``Attempt`` for passthrough and ``via: gateway``), or it is forwarded (``CallState``).
A ``CallState`` is driven by the channel classes, the same way by both::

    attempt = state.next_attempt()              # Attempt or Answer; picks an endpoint
    ... send it on the channel for attempt.key with attempt.timeout and attempt.metadata ...
    what = state.after(code, details)           # RETRY (state.delay), DONE, or an Answer

``after`` reports the attempt to the balancer and asks ``meshclient.resilience.next_step``
whether to go again; ``finish`` only reports (a stream that already delivered a message,
which cannot be repeated). Every pick is reported exactly once.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import grpc

from meshclient import Mesh
from meshclient.balancing import BalancerConfig, Pick
from meshclient.resilience import Outcome, RetryBudgets, attempt_timeout, next_step
from meshclient.routing import Action, Backend, BackendTLS, Decision, RequestHead, Via
from meshclient_grpc._endpoints import (
    ENDPOINT,
    GATEWAY,
    PASSTHROUGH,
    ChannelKey,
    ChannelStatistics,
    EndpointChannels,
    endpoint_target,
    parse_target,
)
from meshclient_grpc._identity import TokenFile
from meshclient_grpc._policy import (
    CONNECT_DEFAULT,
    HTTP_OF,
    NO_SETTINGS,
    RetrySettings,
    TLSProblem,
    answer_code,
    outcome_of,
    settings_from_annotations,
    tls_name,
)

__all__ = ["DONE", "RETRY", "Answer", "Attempt", "CallState", "Router", "RouterChannel"]

Metadata = Sequence[tuple[str, str | bytes]] | None

_log = logging.getLogger("meshclient.grpc")

RETRY: Final = "retry"
DONE: Final = "done"
_OK = grpc.StatusCode.OK
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
_CANCELLED = grpc.StatusCode.CANCELLED


class Answer:
    """The mesh answers the call itself with this status; nothing is sent."""

    __slots__ = ("code", "details")

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details

    def __repr__(self) -> str:
        return f"Answer({self.code.name}, {self.details!r})"


class Attempt:
    """Send the call once on the channel for ``key``."""

    __slots__ = ("key", "metadata", "timeout")

    def __init__(self, key: ChannelKey, metadata: Metadata, timeout: float | None) -> None:
        self.key = key
        self.metadata = metadata
        self.timeout = timeout


class Router:
    """Everything one mesh channel shares between calls (sync or aio)."""

    def __init__(
        self, mesh: Mesh, target: str, *, strict: bool, annotations: bool,
        spiffe_via_dns_san: bool, token_file: str | os.PathLike[str] | None, token_key: str,
        balancer_config: BalancerConfig | None, rand: Callable[[], float] | None,
    ) -> None:
        rand = rand or random.Random().random
        token = None
        if token_file is not None:
            token = TokenFile(token_file, key=token_key, clock=time.monotonic)
        self.mesh = mesh
        self.target = parse_target(target)
        self.strict = strict
        self.annotations = annotations
        self.spiffe_via_dns_san = spiffe_via_dns_san
        self.token = token
        self.rand = rand
        self.balancer = mesh.balancer(rand=rand, config=balancer_config)
        self.budgets = RetryBudgets()
        self.clock: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time
        t = self.target
        self._tls = t.scheme == "grpcs"
        self.passthrough = ChannelKey(PASSTHROUGH, t.plain, t.host, t.port,
                                      "" if self._tls else None, None, None)
        # Both caches are keyed by the identity of prebuilt core values (a rule's Plan, a
        # Pick) and hold them, so an id is never mistaken for another object's.
        self._settings: dict[int, tuple[object, RetrySettings]] = {}
        self._keys: dict[int, tuple[object, ChannelKey | TLSProblem]] = {}
        self._settings_version = -1
        self._names: dict[BackendTLS, str | TLSProblem] = {}
        self._warned_response_edits: set[str] = set()

    # -- deciding -----------------------------------------------------------------------

    def begin(self, method: str, metadata: Metadata, timeout: float | None
              ) -> CallState | Attempt | Answer:
        t = self.target
        headers: tuple[tuple[str, str], ...] = ()
        if metadata:
            headers = tuple((k.lower(), v) for k, v in metadata if v.__class__ is str)
        head = RequestHead("POST", t.scheme, t.host, t.port, method, headers)
        d = self.mesh.decide(head)
        action = d.action
        if action is Action.FORWARD:
            if d.via is Via.GATEWAY:
                return Attempt(self._gateway_key(d), metadata, timeout)
            if d.response_headers or any(b.response_edits for b in d.backends):
                return self._cannot_edit_response(d, metadata, timeout)
            return CallState(self, d, head, metadata, timeout)
        if action is Action.PASSTHROUGH:
            if self.strict:
                return Answer(grpc.StatusCode.FAILED_PRECONDITION,
                              f"meshclient strict mode: {t.host!r} is not a host of the mesh "
                              "(no Gateway listener or Service claims it); the call was not "
                              "sent")
            return Attempt(self.passthrough, metadata, timeout)
        return _answer_of(d)

    def _cannot_edit_response(self, d: Decision, metadata: Metadata, timeout: float | None
                              ) -> Attempt | Answer:
        # grpcio hands response metadata out from its own call objects, so this channel
        # cannot apply a ResponseHeaderModifier. Never skip it: the gateway applies it, and a
        # Service-parent route, which has no gateway, refuses the call and says why.
        route = d.route
        where = f"{route.kind} {route.namespace}/{route.name} rule {route.rule}" if route else ""
        parent = d.parent
        if parent is not None and parent.kind in ("Gateway", "ListenerSet"):
            if where not in self._warned_response_edits:
                self._warned_response_edits.add(where)
                _log.warning("%s edits response metadata, which the gRPC channel cannot do; "
                             "its calls go through the gateway", where)
            return Attempt(self._gateway_key(d), metadata, timeout)
        return Answer(grpc.StatusCode.FAILED_PRECONDITION,
                      f"{where} has a ResponseHeaderModifier, which the meshclient gRPC channel "
                      "cannot apply, and a Service parent has no gateway to send the call "
                      "through; refusing rather than skipping the filter")

    def describe(self, method: str, metadata: Metadata = None) -> dict[str, Any]:
        """What a call would do, without sending it: ``resolve --json`` plus the retry and
        timeout settings gRPC calls run under, with the source of the retry policy."""
        t = self.target
        headers = tuple((k.lower(), v) for k, v in metadata or () if v.__class__ is str)
        d = self.mesh.decide(RequestHead("POST", t.scheme, t.host, t.port, method,
                                         headers))
        out = d.to_json()
        if d.action is Action.FORWARD and d.via is Via.DIRECT:
            s = self.settings(d)
            policy = s.policy or CONNECT_DEFAULT
            names = {v: k.name for k, v in HTTP_OF.items()}
            out["retry"] = {"attempts": policy.attempts, "codes": sorted(policy.codes),
                            "grpc_codes": sorted(names.get(c, str(c)) for c in policy.codes),
                            "backoff": policy.backoff, "source": policy.source}
            if s.timeouts is not None:
                out["timeouts"] = {"request": s.timeouts.request,
                                   "backend_request": s.timeouts.backend_request}
            if s.problems:
                out["annotation_problems"] = list(s.problems)
        elif d.action is Action.PASSTHROUGH and self.strict:
            out["refused"] = "strict mode"
        return out

    def _gateway_key(self, d: Decision) -> ChannelKey:
        # The real gateway applies the rule (that is why the call goes there): the call as
        # the caller made it, original authority, to the gateway's address.
        address = d.gateway_address
        t = self.target
        if address is None:
            return self.passthrough
        ip = address.replace(".", "").isdigit() or ":" in address
        target = endpoint_target(address, t.port) if ip else f"{address}:{t.port}"
        return ChannelKey(GATEWAY, target, address, t.port, t.host if self._tls else None,
                          None, t.authority)

    def settings(self, d: Decision) -> RetrySettings:
        """The call's retry/timeout settings, cached per snapshot version and rule."""
        plan = d.plan
        snapshot = self.mesh.snapshot
        if snapshot.version != self._settings_version:
            self._settings = {}
            self._settings_version = snapshot.version
        cached = self._settings.get(id(plan))
        if cached is not None and cached[0] is plan:
            return cached[1]
        route, parent = d.route, d.parent
        if not self.annotations:
            got = NO_SETTINGS if d.retry is None and d.timeouts is None else RetrySettings(
                policy=d.retry, timeouts=d.timeouts)
        else:
            route_ann = svc_ann = None
            if route is not None and route.kind == "GRPCRoute":
                obj = snapshot.get("GRPCRoute", route.namespace, route.name)
                route_ann = obj.meta.annotations if obj is not None else None
            if parent is not None and parent.kind == "Service":
                obj = snapshot.get("Service", parent.namespace, parent.name)
                svc_ann = obj.meta.annotations if obj is not None else None
            got = settings_from_annotations(d, route_ann, svc_ann)
            for problem in got.problems:
                _log.warning("ignoring an annotation: %s", problem)
        self._settings[id(plan)] = (plan, got)
        return got

    def key_for(self, backend: Backend, pick: Pick[Backend]) -> ChannelKey | TLSProblem:
        cached = self._keys.get(id(pick))
        if cached is not None and cached[0] is pick:
            return cached[1]
        if len(self._keys) > 4096:
            self._keys = {}  # bounded: picks are rebuilt when endpoint sets change
        got = self._key_for(backend, pick)
        self._keys[id(pick)] = (pick, got)
        return got

    def _key_for(self, backend: Backend, pick: Pick[Backend]) -> ChannelKey | TLSProblem:
        tls = backend.tls
        target = endpoint_target(pick.address, pick.port)
        t = self.target
        if tls is None:
            name = t.host if self._tls else None
            return ChannelKey(ENDPOINT, target, pick.address, pick.port, name, None,
                              t.authority)
        name = self._names.get(tls)
        if name is None:
            name = self._names[tls] = tls_name(tls, spiffe_via_dns_san=self.spiffe_via_dns_san)
        if isinstance(name, TLSProblem):
            return name
        # grpc-core refuses a call whose :authority the verified certificate does not match
        # ("call host does not match SSL server name"), and grpcio has no per-call authority:
        # over a BackendTLSPolicy the pod sees the verified name (with the caller's port).
        port = t.authority[len(t.host):] if t.authority.startswith(t.host) else ""
        authority = f"{name}{port}"
        return ChannelKey(ENDPOINT, target, pick.address, pick.port, name, tls.ca_pem,
                          authority)


def _answer_of(d: Decision) -> Answer:
    status = d.status or 500
    if d.reasons:
        why = "; ".join(d.reasons)
    elif status == 404:
        why = "no route matches this call"
    else:
        why = f"rejected by the route ({status})"
    if d.action is Action.REDIRECT:
        why = f"the route redirects to {d.location}; gRPC calls cannot follow redirects"
    return Answer(answer_code(status), f"meshclient: {why}")


class RouterChannel:
    """What the sync and the aio mesh channel answer alike, from their router and pool."""

    _router: Router
    _pool: EndpointChannels[Any]

    def describe(self, method: str, metadata: Any = None) -> dict[str, Any]:
        """What a call to ``method`` with ``metadata`` would do (nothing is sent).

        The ``resolve --json`` object of its decision, plus ``retry`` (attempts, codes as the
        core's HTTP statuses, backoff and ``source``: an HTTPRoute rule, the GRPCRoute's or
        Service's annotations, or the connect-failure default) and ``timeouts``.
        """
        return self._router.describe(method, metadata)

    def statistics(self) -> ChannelStatistics:
        """Counters of the underlying channels (``repr`` shows them too)."""
        return self._pool.statistics()

    def __repr__(self) -> str:
        s = self.statistics()
        return (f"<{type(self).__name__} {self._router.target.authority} open={s.open} "
                f"retired={s.retired} closed={s.closed}>")


class _Spy:
    """Passes ``try_retry`` through and remembers a refusal (budget 503 vs. others)."""

    __slots__ = ("budget", "denied")

    def __init__(self, budget: Any) -> None:
        self.budget = budget
        self.denied = False

    def try_retry(self, now: float) -> bool:
        ok: bool = self.budget.try_retry(now)
        self.denied = not ok
        return ok


class CallState:
    """One forwarded call: its decision, settings, deadline, retries and current pick."""

    __slots__ = (
        "_head",
        "deadline",
        "decision",
        "delay",
        "metadata",
        "mirrors_due",
        "per_try",
        "pick",
        "retries",
        "router",
        "settings",
        "t0",
        "tried",
    )

    def __init__(self, router: Router, d: Decision, head: RequestHead, metadata: Metadata,
                 timeout: float | None) -> None:
        self.router = router
        self.decision = d
        self._head = head
        self.settings = router.settings(d)
        now = router.clock()
        deadline = None if timeout is None else now + timeout
        timeouts = self.settings.timeouts
        if timeouts is not None and timeouts.request:
            route_deadline = now + timeouts.request
            deadline = route_deadline if deadline is None else min(deadline, route_deadline)
        self.deadline = deadline
        self.metadata = self._outgoing(d.request, metadata)
        self.retries = 0
        self.tried: set[str] = set()
        self.pick: Pick[Backend] | None = None
        self.t0 = now
        self.delay = 0.0
        self.per_try = False
        self.mirrors_due = False
        """Set by the first attempt when the rule or its backend mirrors calls: the driver
        then sends ``_mirror.mirror_attempts(state)`` and forgets them."""

    def _outgoing(self, head: RequestHead, metadata: Metadata) -> Metadata:
        if head is self._head or head.headers == self._head.headers:
            out: list[tuple[str, str | bytes]] = list(metadata or ())
        else:
            # Filters changed the text metadata; binary (-bin) entries pass as they were.
            out = list(head.headers)
            out.extend((k, v) for k, v in metadata or () if v.__class__ is bytes)
        token = self.router.token
        if token is not None and head.header(token.key) is None:
            out.append(token.pair())
        return out or None

    def next_attempt(self) -> Attempt | Answer:
        router = self.router
        d = self.decision
        got = router.balancer.pick(d.backends, now=router.wall(), exclude=self.tried)
        if got.__class__ is not Pick:
            backend = got.backend
            if backend is not None and not backend.valid:
                return Answer(answer_code(backend.status),
                              f"meshclient: {backend.reason or 'invalid backend'}")
            return Answer(_UNAVAILABLE, f"meshclient: {got.reason}")  # type: ignore[union-attr]
        pick: Pick[Backend] = got
        key = router.key_for(pick.backend, pick)
        if isinstance(key, TLSProblem):
            router.balancer.report(pick, None, None, now=router.wall())
            return Answer(grpc.StatusCode.FAILED_PRECONDITION, f"meshclient: {key}")
        metadata = self.metadata
        if d.backend_requests:
            br = d.backend_requests[_index(d.backends, pick.backend)]
            if br is not None and br.request is not None:
                metadata = self._outgoing(br.request, metadata)
        now = router.clock()
        timeouts = self.settings.timeouts
        timeout = attempt_timeout(timeouts, self.deadline, now)
        per = timeouts.backend_request if timeouts is not None else None
        self.per_try = bool(per) and (self.deadline is None or now + per < self.deadline)  # type: ignore[operator]
        if timeout is not None and timeout <= 0.0:
            router.balancer.report(pick, None, None, now=router.wall())
            return Answer(_DEADLINE, "meshclient: the call's deadline has passed")
        if self.retries == 0 and self.pick is None:
            b = pick.backend
            router.budgets.get(b.namespace, b.name, b.retry_constraint).record_request(now)
            self.mirrors_due = bool(d.mirrors or b.mirrors)
        self.pick = pick
        self.t0 = now
        return Attempt(key, metadata, timeout)

    def _outcome(self, code: grpc.StatusCode, details: str) -> Outcome | None:
        return outcome_of(code, details, per_try=self.per_try)

    def finish(self, code: grpc.StatusCode, details: str) -> Outcome | None:
        """Report the attempt's end to the balancer (exactly once per pick)."""
        pick = self.pick
        outcome = self._outcome(code, details)
        if pick is not None:
            router = self.router
            self.pick = None
            latency = router.clock() - self.t0
            router.balancer.report(pick, outcome, latency if outcome else None,
                                   now=router.wall())
        return outcome

    def abandon(self) -> None:
        """The attempt ended without a status (a local error): only release the pick."""
        pick = self.pick
        if pick is not None:
            self.pick = None
            self.router.balancer.report(pick, None, None, now=self.router.wall())

    def after(self, code: grpc.StatusCode, details: str) -> str | Answer:
        """Report the attempt and say what follows: ``RETRY`` (after ``delay``), ``DONE``
        (the caller gets this attempt's result) or an ``Answer`` the mesh gives instead."""
        pick = self.pick
        outcome = self.finish(code, details)
        if outcome is None or code is _OK or pick is None:
            return DONE
        router = self.router
        settings = self.settings
        policy = settings.policy or CONNECT_DEFAULT
        b = pick.backend
        spy = _Spy(router.budgets.get(b.namespace, b.name, b.retry_constraint))
        now = router.clock()
        step = next_step(policy, outcome, retries=self.retries, method="POST", now=now,
                         deadline=self.deadline, rand=router.rand, timeouts=settings.timeouts,
                         budget=spy, idempotent=settings.idempotent)  # type: ignore[arg-type]
        if step.retry:
            self.retries += 1
            self.tried.add(pick.address)
            self.delay = step.delay
            return RETRY
        if step.status is None or step.kind.value == "done":
            return DONE
        if spy.denied:
            return Answer(_UNAVAILABLE, f"meshclient: {step.reason} (after {code.name}: "
                                        f"{details})")
        if step.status == 504 and code is not _DEADLINE and self.deadline is not None:
            return Answer(_DEADLINE, f"meshclient: {step.reason}")
        return DONE


def _index(backends: tuple[Backend, ...], backend: Backend) -> int:
    for i, b in enumerate(backends):
        if b is backend:
            return i
    return backends.index(backend)
