"""One request's life as a sans-I/O generator that the sync and async transports both drive.

``Flow.start`` carries out a ``Decision``: it picks endpoints, builds each attempt, asks the
resilience layer whether to try again, and decides what the caller gets. It never touches the
network, sleeps or awaits; it *yields* what must be done and receives the result (the way
httpx's ``auth_flow`` is driven by both clients, STYLE.md §2):

* ``Send``  → the driver sends one attempt and replies ``(response, error, deadline_hit)``;
* ``Done``  → close an attempt's response (if any) and release its pool lease;
* ``Sleep`` → back off before the next attempt.

It returns an ``httpx.Response`` made here (redirects, rejects, 503/504), an ``Upstream``
(the backend's response, which the driver wraps in a stream that reports on close) or
``INNER`` (send the request unchanged to the inner transport); a transport error the caller
must see is raised from the generator itself.

A plain forward (no retry stanza, no timeouts, no mirror, no session, no backend-level
filter: most requests) skips the generator: ``start`` returns the one ``Send``, and
``upstream`` (or ``failed``) turns its outcome into the result, so the common path pays for
neither a generator nor a resilience call. Both paths make the same choices.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Final

import httpcore
import httpx

from meshclient.balancing import Balancer, NoEndpoints, Overflow, Pick, SessionConfig
from meshclient.routing import Action, Backend, Decision, HeaderEdits, RequestHead, Via
from meshclient_httpx._exchange import Exchange, Upstream
from meshclient_httpx._identity import TokenFile
from meshclient_httpx._messages import (
    RawHeaders,
    answer,
    encode_headers,
    encode_path,
    is_replayable,
)
from meshclient_httpx._mirror import MirrorSender
from meshclient_httpx._pools import PoolEntry, PoolKey, PoolSet
from meshclient_httpx._retry import Next, Retries, failure_of
from meshclient_httpx._wire import wire_request

__all__ = ["INNER", "Done", "Flow", "Send", "Sleep", "Step"]

_H2C: Final = "kubernetes.io/h2c"
_TIMEOUT_KEYS: Final = ("connect", "read", "write", "pool")


class Send:
    __slots__ = ("deadline", "entry", "pick", "request")

    def __init__(self, entry: PoolEntry[Any], request: httpcore.Request,
                 deadline: float | None, pick: Pick[Backend] | None) -> None:
        self.entry = entry
        self.request = request
        self.deadline = deadline
        self.pick = pick
        """Reported as cancelled if the driver is interrupted during the send."""


class Done:
    __slots__ = ("entry", "response")

    def __init__(self, response: httpcore.Response | None, entry: PoolEntry[Any]) -> None:
        self.response = response
        self.entry = entry


class Sleep:
    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay


_NO_HEADERS: Final[RawHeaders] = []

INNER: Final = object()
"""Returned by ``run``: send the request, unchanged, to the inner transport."""

Op = Send | Done | Sleep
Reply = tuple[httpcore.Response | None, Exception | None, bool] | None
Step = Generator[Op, Reply, "httpx.Response | Upstream | object"]


class Flow:
    """Everything one transport shares between requests, and the per-request generator."""

    def __init__(
        self,
        *,
        balancer: Balancer,
        retries: Retries,
        mirrors: MirrorSender,
        token: TokenFile | None,
        plaintext_same_node: bool,
        clock: Callable[[], float],
        wall: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        self.balancer = balancer
        self.retries = retries
        self.mirrors = mirrors
        self.token = token
        self.plaintext_same_node = plaintext_same_node
        self.clock = clock
        self.wall = wall
        self.rand = rand
        self._sessions: dict[str, SessionConfig] = {}

    # -- the generator ------------------------------------------------------------------

    def start(self, ex: Exchange, pools: PoolSet[Any]) -> httpx.Response | object | Step:
        """An answer made here, ``INNER``, a one-shot ``Send``, or the generator to drive."""
        d = ex.decision
        if d.action is not Action.FORWARD:
            return self._answer(ex)
        plan = d.plan
        if plan.via is Via.GATEWAY:
            if plan.gateway_address is None:
                ex.outcome = "gateway"
                return INNER
            return self._via_gateway(ex, pools, plan.gateway_address)
        if (plan.retry is None and plan.timeouts is None and not plan.mirrors
                and plan.session_persistence is None and not d.backend_requests):
            return self._one_shot(ex, pools, plan.backends)
        return self._forward(ex, pools)

    def _one_shot(self, ex: Exchange, pools: PoolSet[Any], backends: tuple[Backend, ...]
                  ) -> Send | httpx.Response:
        """Most requests: one attempt, no timing, nothing to retry; no generator needed.

        The driver sends the returned ``Send`` and hands the response to ``upstream`` (or
        the error to ``failed``).
        """
        d = ex.decision
        got = self.balancer.pick(backends, now=self.wall())
        if got.__class__ is not Pick:
            return self._no_pick(ex, got)  # type: ignore[arg-type]
        pick: Pick[Backend] = got
        backend = pick.backend
        head = d.request
        if backend.mirrors:
            self._mirror(ex, head, backend)
        entry = self.lease(pools, head, backend, pick)
        ex.attempts = 1
        ex.backend, ex.pick = backend, pick
        return Send(entry, self._request(ex, head, entry, None, 0.0), None, pick)

    def upstream(self, ex: Exchange, op: Send, response: httpcore.Response) -> Upstream:
        """The one-shot ``Send``'s response, for the caller (the driver wraps its stream)."""
        pick: Pick[Backend] = op.pick  # type: ignore[assignment]  # one-shot sends have one
        return Upstream(response, op.entry, pick, ex.start,
                        _response_edits(ex.decision, pick.backend), _NO_HEADERS)

    def failed(self, ex: Exchange, op: Send, error: Exception) -> Exception:
        """The one-shot ``Send`` failed: report the attempt; returns the error to raise.

        The driver releases the lease and raises.
        """
        assert op.pick is not None
        kind = failure_of(error, False)
        self.balancer.report(op.pick, None if kind is None else self.retries.failure(kind),
                             None, now=self.wall())
        ex.outcome = "error"
        ex.error = str(error) if kind is None else f"{kind.value}: {error}"
        return error

    def _forward(self, ex: Exchange, pools: PoolSet[Any]) -> Step:
        d = ex.decision
        request = ex.request
        backends = d.backends
        balancer = self.balancer
        clock = self.clock
        session, token = (None, None) if d.session_persistence is None else self._session(
            d, ex.head)
        # No retry stanza and no timeouts: the first answer is final and nothing is timed
        # (most requests; this path skips the resilience layer altogether).
        simple = d.retry is None and d.timeouts is None
        attempts = None if simple else self.retries.begin(
            d, ex.start, replayable=is_replayable(request.stream))
        tried: set[str] = set()
        while True:
            got = balancer.pick(backends, now=self.wall(), exclude=tried, session=session,
                                session_token=token)
            if got.__class__ is not Pick:
                if d.backend_requests and got.backend is not None:
                    # The backend chosen by weight answers with its own redirect: that needs
                    # no endpoint, so none being free (or there) does not matter.
                    br = d.backend_requests[_index(backends, got.backend)]
                    if br is not None and br.status is not None:
                        ex.outcome = "redirect"
                        return answer(request, br.status, location=br.location,
                                      edits=_response_edits(d, got.backend))
                return self._no_pick(ex, got)  # type: ignore[arg-type]
            pick: Pick[Backend] = got
            backend = pick.backend
            head = d.request
            if d.backend_requests:
                br = d.backend_requests[_index(backends, backend)]
                if br is not None:
                    if br.status is not None:
                        balancer.report(pick, None, None, now=self.wall())
                        ex.outcome = "redirect"
                        return answer(request, br.status, location=br.location,
                                      edits=_response_edits(d, backend))
                    if br.request is not None:
                        head = br.request
            t0 = clock()
            if ex.attempts == 0:
                if attempts is not None:
                    attempts.first(backend, t0)
                if d.mirrors or backend.mirrors:
                    self._mirror(ex, head, backend)
            entry = self.lease(pools, head, backend, pick)
            try_deadline = None
            if attempts is not None:
                limit = attempts.timeout(t0)
                if limit is not None:
                    try_deadline = t0 + limit
            ex.attempts += 1
            ex.backend, ex.pick = backend, pick
            reply = yield Send(entry, self._request(ex, head, entry, try_deadline, t0),
                               try_deadline, pick)
            assert reply is not None
            response, error, deadline_hit = reply
            if attempts is None and response is not None:
                return Upstream(response, entry, pick, t0, _response_edits(d, backend),
                                self._session_header(session, pick, request) if session
                                else _NO_HEADERS)
            end = clock()
            if response is not None:
                outcome = self.retries.status(response.status)
            else:
                assert error is not None
                kind = failure_of(error, deadline_hit)
                if kind is None:  # a local mistake: no retry helps, the caller must see it
                    yield Done(None, entry)
                    balancer.report(pick, None, None, now=self.wall())
                    ex.outcome, ex.error = "error", str(error)
                    raise error
                outcome = self.retries.failure(kind)
                ex.error = f"{kind.value}: {error}" if str(error) else kind.value
            if attempts is None:
                yield Done(None, entry)
                balancer.report(pick, outcome, end - t0, now=self.wall())
                ex.outcome = "error"
                assert error is not None
                raise error
            what, delay, status, why = attempts.next(outcome, backend, now=end,
                                                      deadline_hit=deadline_hit)
            if what is Next.RETURN and response is not None:
                extra = self._session_header(session, pick, request)
                return Upstream(response, entry, pick, t0, _response_edits(d, backend), extra,
                                try_deadline)
            yield Done(response, entry)
            balancer.report(pick, outcome, end - t0, now=self.wall())
            if what is Next.RETRY:
                tried.add(pick.address)
                if delay > 0:
                    yield Sleep(delay)
                continue
            if what is Next.RAISE:
                ex.outcome = "error"
                assert error is not None
                raise error
            ex.reason = why
            ex.outcome = "timeout" if status == 504 else "budget" if status == 503 else (
                "response")
            return answer(request, status or 503, reason=why)

    def _via_gateway(self, ex: Exchange, pools: PoolSet[Any], address: str) -> Step:
        # The real gateway does the rule's work (it is why we are here): send the request as
        # the caller made it, original Host included, to the gateway's address.
        head = ex.head
        scheme = ex.request.url.raw_scheme
        key = PoolKey(scheme, address, head.port, head.authority if scheme == b"https" else None,
                      (), None, False, False)
        entry = pools.acquire(key)
        t0 = self.clock()
        ex.attempts = 1
        reply = yield Send(entry, self._request(ex, head, entry, None, t0), None, None)
        assert reply is not None
        response, error, _ = reply
        if response is None:
            yield Done(None, entry)
            ex.outcome, ex.error = "error", str(error)
            assert error is not None
            raise error
        ex.outcome = "gateway"
        return Upstream(response, entry, None, t0, None, [])

    # -- pieces -------------------------------------------------------------------------

    def _answer(self, ex: Exchange) -> httpx.Response:
        d = ex.decision
        action = d.action
        status = d.status or 500
        if action is Action.REDIRECT:
            ex.outcome = "redirect"
            return answer(ex.request, status, location=d.location, edits=d.response_headers)
        if action is Action.RESPOND:
            ex.outcome = "respond"
            return answer(ex.request, status, edits=d.response_headers)
        ex.outcome = "reject"
        why = "; ".join(d.reasons) if d.reasons else (
            "no route matches this request" if status == 404 else "rejected by the route")
        ex.reason = why
        return answer(ex.request, status, reason=why)

    def _no_pick(self, ex: Exchange, got: NoEndpoints[Backend] | Overflow[Backend]
                 ) -> httpx.Response:
        backend = got.backend
        if backend is not None and not backend.valid:
            # SPEC-NOTES §4.3: requests that would go to an invalid backend get its status
            # (500), in proportion to its weight.
            ex.outcome, ex.backend = "reject", backend
            ex.reason = backend.reason or "invalid backend"
            return answer(ex.request, backend.status or 500, reason=ex.reason)
        ex.outcome = "overflow" if isinstance(got, Overflow) else "no_endpoints"
        ex.backend, ex.reason = backend, got.reason
        return answer(ex.request, got.status, reason=got.reason)

    def lease(self, pools: PoolSet[Any], head: RequestHead, backend: Backend,
              pick: Pick[Backend]) -> PoolEntry[Any]:
        """The pool for this attempt, leased (``key`` decides which)."""
        scheme = head.scheme
        if backend.tls is None and scheme == "https":  # the TLS name is the request's host
            return pools.acquire(self.key(head, backend, pick))
        entry = pools.acquire_for(pick, scheme)
        if entry is None:
            entry = pools.acquire(self.key(head, backend, pick))
            pools.remember(pick, scheme, entry)
        return entry

    def key(self, head: RequestHead, backend: Backend, pick: Pick[Backend]) -> PoolKey:
        tls = backend.tls
        https = tls is not None or head.scheme == "https"
        if https and pick.same_node and self.plaintext_same_node:
            https = False  # the operator allows plaintext on the node (DESIGN.md: same node)
        if not https:
            return PoolKey(b"http", pick.address, pick.port, None, (), None,
                           pick.app_protocol == _H2C, True)
        if tls is None:
            return PoolKey(b"https", pick.address, pick.port, head.host, (), None, False, True)
        return PoolKey(b"https", pick.address, pick.port, tls.hostname, tls.subject_alt_names,
                       tls.ca_pem or "", False, True)

    def _request(self, ex: Exchange, head: RequestHead, entry: PoolEntry[Any],
                 deadline: float | None, now: float) -> httpcore.Request:
        request = ex.request
        key = entry.key
        if head is ex.head:
            headers: RawHeaders = request.headers.raw
            target = head.path.encode("ascii")  # == url.raw_path, without rebuilding it
        else:
            headers = encode_headers(head.headers)
            target = encode_path(head.path)
        token = self.token
        if token is not None and key.endpoint:
            name, value = token.header_pair()
            if head.header(token.header) is None:
                headers = [*headers, (name, value)]
        extensions = request.extensions
        if key.tls_name is not None or deadline is not None:
            extensions = dict(extensions)
            if key.tls_name is not None:
                extensions["sni_hostname"] = key.tls_name
            if deadline is not None:
                left = max(deadline - now, 0.0)
                given = extensions.get("timeout") or {}
                extensions["timeout"] = {
                    k: left if given.get(k) is None else min(given[k], left)
                    for k in _TIMEOUT_KEYS
                }
        return wire_request(request.method, key.scheme, entry.host, key.port, target, headers,
                            request.stream, extensions)

    def _session(self, d: Decision, head: RequestHead) -> tuple[SessionConfig | None, str | None]:
        sp = d.session_persistence
        if sp is None or d.session_key is None:
            return None, None
        config = self._sessions.get(d.session_key)
        if config is None:
            config = self._sessions[d.session_key] = SessionConfig.from_persistence(
                d.session_key, sp)
        if config.type == "Header":
            return config, head.header(config.name.lower())
        from meshclient.balancing import token_from_cookies
        return config, token_from_cookies(config.name, [v for n, v in head.headers
                                                        if n == "cookie"])

    def _session_header(self, session: SessionConfig | None, pick: Pick[Backend],
                        request: httpx.Request) -> RawHeaders:
        if session is None or pick.session_token is None:
            return []
        if session.type == "Header":
            return [(session.name.encode("latin-1"), pick.session_token.encode("latin-1"))]
        from meshclient.balancing import set_cookie_value
        value = set_cookie_value(session, pick.session_token,
                                 secure=request.url.raw_scheme == b"https")
        return [(b"set-cookie", value.encode("latin-1"))]

    def _mirror(self, ex: Exchange, head: RequestHead, backend: Backend) -> None:
        mirrors = ex.decision.mirrors + backend.mirrors
        chosen = [m for m in mirrors if m.percent >= 100.0 or self.rand() * 100.0 < m.percent]
        if chosen:
            ex.mirrors = self.mirrors.submit(ex.request, head, chosen)


def _index(backends: tuple[Backend, ...], backend: Backend) -> int:
    for i, b in enumerate(backends):
        if b is backend:
            return i
    return backends.index(backend)


def _response_edits(d: Decision, backend: Backend) -> HeaderEdits | None:
    edits = d.response_headers
    more = backend.response_edits
    # The fields, not ``bool()``: this runs per response and is nearly always empty.
    if not (more.set or more.add or more.remove):
        return edits if edits.set or edits.add or edits.remove else None
    return edits.merged(more) if edits else more
