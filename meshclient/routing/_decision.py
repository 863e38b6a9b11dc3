"""What meshclient does with one request: the ``Decision`` and the values it is made of.

Everything a rule implies is built once, when the table is compiled (``RuleTarget``,
``Backend``); a request adds only what depends on it: the request after filters, a redirect
location, CORS headers. The JSON form is the ``meshclient resolve`` contract (DESIGN.md).
"""

from __future__ import annotations

import enum
from typing import Any, Final

import attrs

from meshclient.model import RetryConstraint, RetryPolicy, SessionPersistence, Timeouts
from meshclient.model import format_duration as _fmt
from meshclient.routing._request import RequestHead

__all__ = [
    "EMPTY_PLAN",
    "Action",
    "Backend",
    "BackendRequest",
    "BackendTLS",
    "Decision",
    "HeaderEdits",
    "Mirror",
    "ParentInfo",
    "Plan",
    "RouteInfo",
]


class Action(enum.Enum):
    FORWARD = "forward"
    REDIRECT = "redirect"
    RESPOND = "respond"
    REJECT = "reject"
    PASSTHROUGH = "passthrough"


GRPC_STATUS: Final = {404: 12, 500: 14, 502: 14, 503: 14, 504: 4, 403: 7, 401: 16, 429: 8}
"""The gRPC status a gateway answers in place of an HTTP status (GR: unmatched → UNIMPLEMENTED,
invalid backend → UNAVAILABLE); anything else is UNKNOWN (2)."""


class Via(enum.Enum):
    DIRECT = "direct"
    GATEWAY = "gateway"


@attrs.frozen(kw_only=True)
class RouteInfo:
    kind: str
    namespace: str
    name: str
    rule: int | None = None
    rule_name: str | None = None


@attrs.frozen(kw_only=True, cache_hash=True)  # a key of every compiled rule: hashed often
class ParentInfo:
    kind: str
    namespace: str
    name: str
    section: str | None = None


@attrs.frozen(kw_only=True)
class HeaderEdits:
    """Header changes for one direction: set (replace), add (append), remove."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)

    def merged(self, other: HeaderEdits) -> HeaderEdits:
        return HeaderEdits(set=self.set + other.set, add=self.add + other.add,
                           remove=self.remove + other.remove)

    def apply(self, headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """Apply to lower-cased header pairs (HR: set replaces, add appends, remove deletes)."""
        drop = {n for n, _ in self.set} | set(self.remove)
        out = [(n, v) for n, v in headers if n not in drop]
        out.extend(self.set)
        for name, value in self.add:
            # Observed upstream as "old,new" (CT:httproute-request-header-modifier): append
            # to the last value, so a repeated header still reads in order ("1,2,new").
            for i in range(len(out) - 1, -1, -1):
                n, v = out[i]
                if n == name:
                    out[i] = (n, f"{v},{value}")
                    break
            else:
                out.append((name, value))
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {"set": [list(p) for p in self.set], "add": [list(p) for p in self.add],
                "remove": list(self.remove)}


NO_EDITS = HeaderEdits()


@attrs.frozen(kw_only=True)
class BackendTLS:
    """How to speak TLS to a backend, from its BackendTLSPolicy."""

    hostname: str
    """SNI, and the name verified unless ``subject_alt_names`` is set."""
    subject_alt_names: tuple[tuple[str, str], ...] = ()
    """(type, value) with type Hostname or URI (SPIFFE IDs are URIs)."""
    ca_pem: str | None = None
    """PEM bundle from the referenced ConfigMaps; None means the system trust store."""
    policy: str = ""
    """``namespace/name`` of the policy, for logs."""


@attrs.frozen(kw_only=True)
class Backend:
    """One weighted candidate of a rule, resolved against the Services in the snapshot."""

    kind: str
    namespace: str
    name: str
    port: int | None
    weight: int
    status: int | None = None
    """Set when the reference is invalid: requests that pick it get this status (500)."""
    reason: str | None = None
    app_protocol: str | None = None
    tls: BackendTLS | None = None
    retry_constraint: RetryConstraint | None = None
    session_persistence: SessionPersistence | None = None
    edits: HeaderEdits = NO_EDITS
    """Request header changes of this backendRef's own filters."""
    response_edits: HeaderEdits = NO_EDITS
    host_rewrite: str | None = None
    path_rewrite: tuple[str, str] | None = None
    """(type, value) of a backend-level URLRewrite path."""
    redirect: Any = None
    """A backend-level RequestRedirect filter (model value), answered when picked."""
    mirrors: tuple[Mirror, ...] = ()

    @property
    def valid(self) -> bool:
        return self.status is None

    @property
    def changes_request(self) -> bool:
        return bool(self.edits) or self.host_rewrite is not None or self.path_rewrite is not None

    def ref_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name,
                "port": self.port}


@attrs.frozen(kw_only=True)
class Mirror:
    backend: Backend
    percent: float = 100.0

    def to_json(self) -> dict[str, Any]:
        percent: float | int = int(self.percent) if self.percent.is_integer() else self.percent
        return {"backend": self.backend.ref_json(), "percent": percent}


@attrs.frozen(kw_only=True)
class BackendRequest:
    """What a backend with its own filters does with this request."""

    request: RequestHead | None = None
    status: int | None = None
    location: str | None = None


@attrs.frozen(kw_only=True)
class Plan:
    """The part of a Decision that depends only on the rule: built once, shared by requests."""

    route: RouteInfo | None = None
    parent: ParentInfo | None = None
    backends: tuple[Backend, ...] = ()
    mirrors: tuple[Mirror, ...] = ()
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    session_persistence: SessionPersistence | None = None
    session_key: str | None = None
    via: Via = Via.DIRECT
    gateway_address: str | None = None
    reasons: tuple[str, ...] = ()


EMPTY_PLAN: Final = Plan()

_PLAN_FIELDS: Final = frozenset(a.name for a in attrs.fields(Plan))


class Decision(tuple):  # type: ignore[type-arg]
    """What to do with one request; see the module docstring and DESIGN.md.

    Immutable (a tuple underneath, which makes one cheap to build). The rule's share (route,
    parent, backends, timeouts, retry, via, reasons, ...) is a ``Plan`` built at compile
    time; a request adds only what depends on it (the request after filters, a redirect
    location, CORS headers), so deciding costs one small object.
    """

    __slots__ = ()

    def __new__(
        cls,
        *,
        action: Action,
        request: RequestHead,
        status: int | None = None,
        location: str | None = None,
        response_headers: HeaderEdits = NO_EDITS,
        backend_requests: tuple[BackendRequest | None, ...] = (),
        plan: Plan | None = None,
        **plan_fields: Any,
    ) -> Decision:
        unknown = set(plan_fields) - _PLAN_FIELDS
        if unknown:
            raise TypeError(f"Decision() got unexpected fields {sorted(unknown)}")
        if plan is None:
            plan = Plan(**plan_fields) if plan_fields else EMPTY_PLAN
        elif plan_fields:
            plan = attrs.evolve(plan, **plan_fields)
        return tuple.__new__(
            cls, (action, request, status, location, response_headers, backend_requests, plan)
        )

    @classmethod
    def make(
        cls,
        plan: Plan,
        action: Action,
        request: RequestHead,
        status: int | None = None,
        location: str | None = None,
        response_headers: HeaderEdits = NO_EDITS,
        backend_requests: tuple[BackendRequest | None, ...] = (),
    ) -> Decision:
        """The request-path constructor: positional, no checks."""
        return tuple.__new__(
            cls, (action, request, status, location, response_headers, backend_requests, plan)
        )

    @property
    def action(self) -> Action:
        return self[0]  # type: ignore[no-any-return]

    @property
    def request(self) -> RequestHead:
        """The request as the backend will see it, after the rule's filters."""
        return self[1]  # type: ignore[no-any-return]

    @property
    def status(self) -> int | None:
        return self[2]  # type: ignore[no-any-return]

    @property
    def location(self) -> str | None:
        return self[3]  # type: ignore[no-any-return]

    @property
    def response_headers(self) -> HeaderEdits:
        return self[4]  # type: ignore[no-any-return]

    @property
    def backend_requests(self) -> tuple[BackendRequest | None, ...]:
        """Aligned with ``backends`` when any backend has filters of its own; else empty."""
        return self[5]  # type: ignore[no-any-return]

    @property
    def plan(self) -> Plan:
        return self[6]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        route = self.plan.route
        where = f" {route.kind} {route.namespace}/{route.name}#{route.rule}" if route else ""
        status = f" {self.status}" if self.status is not None else ""
        return f"<Decision {self.action.value}{status}{where} via {self.plan.via.value}>"

    # The rule's share, read through from the plan.
    @property
    def route(self) -> RouteInfo | None:
        return self.plan.route

    @property
    def parent(self) -> ParentInfo | None:
        return self.plan.parent

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self.plan.backends

    @property
    def mirrors(self) -> tuple[Mirror, ...]:
        return self.plan.mirrors

    @property
    def timeouts(self) -> Timeouts | None:
        return self.plan.timeouts

    @property
    def retry(self) -> RetryPolicy | None:
        return self.plan.retry

    @property
    def session_persistence(self) -> SessionPersistence | None:
        return self.plan.session_persistence

    @property
    def session_key(self) -> str | None:
        """Identifies the rule for session persistence (sessions are per rule, GEP-1619)."""
        return self.plan.session_key

    @property
    def via(self) -> Via:
        return self.plan.via

    @property
    def gateway_address(self) -> str | None:
        """Where the real gateway listens, for ``via: gateway`` (None: resolve the URL host)."""
        return self.plan.gateway_address

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.plan.reasons

    def to_json(self) -> dict[str, Any]:
        """The ``resolve --json`` object (DESIGN.md); fields that do not apply are left out."""
        out: dict[str, Any] = {"action": self.action.value}
        if self.status is not None:
            out["status"] = self.status
            if self.action is not Action.REDIRECT and self.request.is_grpc():
                out["grpc_status"] = GRPC_STATUS.get(self.status, 2)
        if self.location is not None:
            out["location"] = self.location
        if self.route is not None:
            out["route"] = attrs.asdict(self.route)
        if self.parent is not None:
            out["parent"] = attrs.asdict(self.parent)
        if self.backends:
            out["backends"] = [self._backend_json(i, b) for i, b in enumerate(self.backends)]
        head = self.request
        out["request"] = {
            "method": head.method, "scheme": head.scheme, "host": head.host, "path": head.path,
            "headers": [list(p) for p in head.headers],
        }
        if self.response_headers:
            out["response_headers"] = self.response_headers.to_json()
        if self.mirrors:
            out["mirrors"] = [m.to_json() for m in self.mirrors]
        if self.timeouts is not None:
            t: dict[str, Any] = {}
            if self.timeouts.request is not None:
                t["request"] = self.timeouts.request
            if self.timeouts.backend_request is not None:
                t["backend_request"] = self.timeouts.backend_request
            out["timeouts"] = t
        if self.retry is not None:
            out["retry"] = {"attempts": self.retry.attempts, "codes": sorted(self.retry.codes),
                            "backoff": self.retry.backoff, "source": self.retry.source}
        if self.session_persistence is not None:
            sp = self.session_persistence
            out["session_persistence"] = {"type": sp.type, "name": sp.name}
        if self.action is not Action.PASSTHROUGH:
            out["via"] = self.via.value
        if self.gateway_address is not None and self.via is Via.GATEWAY:
            out["gateway_address"] = self.gateway_address
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out

    def _backend_json(self, index: int, b: Backend) -> dict[str, Any]:
        out = b.ref_json()
        out["weight"] = b.weight
        if b.status is not None:
            out["status"] = b.status
            out["reason"] = b.reason
        if b.app_protocol:
            out["app_protocol"] = b.app_protocol
        if b.tls is not None:
            out["tls"] = {"hostname": b.tls.hostname,
                          "subject_alt_names": [list(s) for s in b.tls.subject_alt_names],
                          "ca": "configmap" if b.tls.ca_pem else "system"}
        if b.retry_constraint is not None:
            rc = b.retry_constraint
            out["retry_budget"] = {"percent": rc.percent, "interval": _fmt(rc.interval),
                                   "min_retry_rate": f"{rc.min_retry_count}/"
                                   f"{_fmt(rc.min_retry_interval)}"}
        br = self.backend_requests[index] if self.backend_requests else None
        if br is not None:
            if br.request is not None:
                r = br.request
                out["request"] = {"host": r.host, "path": r.path,
                                  "headers": [list(p) for p in r.headers]}
            if br.status is not None:
                out["redirect"] = {"status": br.status, "location": br.location}
        if b.response_edits:
            out["response_headers"] = b.response_edits.to_json()
        if b.mirrors:
            out["mirrors"] = [m.to_json() for m in b.mirrors]
        return out
