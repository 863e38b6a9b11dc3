"""A route rule compiled for one parent: everything the rule does, ready before any request."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from meshclient.model import (
    CORS,
    ExtensionRef,
    ExternalAuth,
    Filter,
    GRPCBackendRef,
    GRPCRoute,
    GRPCRouteRule,
    HeaderModifier,
    HTTPBackendRef,
    HTTPRoute,
    HTTPRouteRule,
    RequestMirror,
    RequestRedirect,
    RetryPolicy,
    SessionPersistence,
    Timeouts,
    URLRewrite,
)
from meshclient.routing._backends import Resolver
from meshclient.routing._decision import (
    NO_EDITS,
    Action,
    Backend,
    BackendRequest,
    Decision,
    HeaderEdits,
    Mirror,
    ParentInfo,
    Plan,
    RouteInfo,
    Via,
)
from meshclient.routing._request import RequestHead
from meshclient.routing._rewrite import (
    cors_preflight,
    cors_response_headers,
    is_preflight,
    redirect_location,
    rewrite_path,
)

__all__ = ["RuleTarget", "compile_rule"]

_FORWARD = Action.FORWARD


@attrs.frozen(kw_only=True)
class RuleTarget:
    """What one rule does for requests reaching it through one parent."""

    route: RouteInfo | None
    parent: ParentInfo
    action: Action = Action.FORWARD
    status: int | None = None
    via: Via = Via.DIRECT
    gateway_address: str | None = None
    reasons: tuple[str, ...] = ()
    backends: tuple[Backend, ...] = ()
    backend_filters: bool = False
    edits: HeaderEdits = NO_EDITS
    response_edits: HeaderEdits = NO_EDITS
    host_rewrite: str | None = None
    path_rewrite: object = None
    redirect: RequestRedirect | None = None
    cors: CORS | None = None
    mirrors: tuple[Mirror, ...] = ()
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    session_persistence: SessionPersistence | None = None
    session_key: str | None = None
    problems: tuple[str, ...] = ()
    """Invalid references found while compiling (for ResolvedRefs), not per request."""

    plan: Plan = attrs.field(
        default=attrs.Factory(lambda self: self._plan(), takes_self=True))
    """The Decision's rule-level share for forwarded, rejected and via-gateway requests."""
    bare_plan: Plan = attrs.field(
        default=attrs.Factory(
            lambda self: Plan(route=self.route, parent=self.parent)
            if self.redirect is not None or self.cors is not None else self.plan,
            takes_self=True))
    """The share for answers made here (redirects, CORS preflights)."""

    def _plan(self) -> Plan:
        if self.action is Action.REJECT or self.via is Via.GATEWAY:
            return Plan(route=self.route, parent=self.parent, via=self.via,
                        gateway_address=self.gateway_address, reasons=self.reasons)
        return Plan(
            route=self.route, parent=self.parent, backends=self.backends, mirrors=self.mirrors,
            timeouts=self.timeouts, retry=self.retry,
            session_persistence=self.session_persistence, session_key=self.session_key,
            via=self.via, reasons=self.reasons,
            # Kept on direct decisions too: an adapter that cannot carry out some part of
            # the rule itself sends the request to the gateway instead of skipping it.
            gateway_address=self.gateway_address,
        )

    simple: bool = attrs.field(
        default=attrs.Factory(lambda self: self._is_simple(), takes_self=True))
    """Forwarded with nothing request-dependent: the Decision is just plan + request."""

    def _is_simple(self) -> bool:
        return (self.action is Action.FORWARD and self.via is Via.DIRECT
                and self.redirect is None and self.cors is None and not self.edits
                and self.host_rewrite is None and self.path_rewrite is None
                and not self.backend_filters)

    def decide(self, head: RequestHead, matched_prefix: str | None) -> Decision:
        if self.simple:
            # Decision.make, inlined: this is most requests' whole decision.
            return tuple.__new__(Decision, (_FORWARD, head, None, None, self.response_edits,
                                            (), self.plan))
        if self.action is Action.REJECT or self.via is Via.GATEWAY:
            return Decision.make(self.plan, self.action, head, self.status)
        if self.cors is not None and is_preflight(head):
            # G1767: a preflight on a CORS rule is answered here and never forwarded.
            return Decision.make(self.bare_plan, Action.RESPOND, head, 200, None,
                                 cors_preflight(self.cors, head))
        if self.redirect is not None:
            return Decision.make(self.bare_plan, Action.REDIRECT, head,
                                 self.redirect.status_code,
                                 redirect_location(head, self.redirect, matched_prefix),
                                 self.response_edits)
        request = self._rewrite(head, self.edits, self.host_rewrite, self.path_rewrite,
                                matched_prefix)
        response = self.response_edits
        if self.cors is not None:
            response = response.merged(cors_response_headers(self.cors, head))
        backend_requests: tuple[BackendRequest | None, ...] = ()
        if self.backend_filters:
            backend_requests = tuple(self._backend_request(b, request, matched_prefix)
                                     for b in self.backends)
        return Decision.make(self.plan, Action.FORWARD, request, None, None, response,
                             backend_requests)

    @staticmethod
    def _rewrite(head: RequestHead, edits: HeaderEdits, host: str | None, path: object,
                 matched_prefix: str | None) -> RequestHead:
        if not edits and host is None and path is None:
            return head
        headers = edits.apply(head.headers) if edits else head.headers
        new_path = None
        if path is not None:
            new_path = rewrite_path(head, path, matched_prefix)  # type: ignore[arg-type]
        if host is not None:
            # The Host header sent upstream becomes the rewritten hostname (HR URLRewrite).
            headers = tuple((n, host) if n == "host" else (n, v) for n, v in headers)
        return head.replace(host=host, path=new_path, headers=headers)

    def _backend_request(self, b: Backend, request: RequestHead,
                         matched_prefix: str | None) -> BackendRequest | None:
        if b.redirect is not None:
            return BackendRequest(status=b.redirect.status_code,
                                  location=redirect_location(request, b.redirect, matched_prefix))
        if not b.changes_request:
            return None
        return BackendRequest(request=self._rewrite(request, b.edits, b.host_rewrite,
                                                    b.path_rewrite, matched_prefix))


def _edits(f: HeaderModifier) -> HeaderEdits:
    return HeaderEdits(set=f.set, add=f.add, remove=f.remove)


def _unsupported(filters: tuple[Filter, ...], where: str) -> list[str]:
    out = []
    for f in filters:
        if isinstance(f, ExtensionRef):
            out.append(f"{where}: filter ExtensionRef {f.group or 'core'}/{f.kind} {f.name} "
                       "is not implemented by meshclient")
        elif isinstance(f, ExternalAuth):
            out.append(f"{where}: filter ExternalAuth is not implemented by meshclient")
    return out


def compile_rule(
    route: HTTPRoute | GRPCRoute,
    rule: HTTPRouteRule | GRPCRouteRule,
    parent: ParentInfo,
    resolver: Resolver,
    *,
    mesh: bool,
    gateway_address: str | None,
    parent_unsupported: str | None = None,
) -> RuleTarget:
    """Compile one valid rule for one parent (Gateway listener or Service port).

    ``parent_unsupported`` says why the parent itself asks for something meshclient cannot
    do (a Gateway that presents its own client certificate to backends): every rule then
    goes through the gateway.
    """
    info = RouteInfo(kind=route.kind, namespace=route.meta.namespace, name=route.meta.name,
                     rule=rule.index, rule_name=rule.name)
    refs: Sequence[HTTPBackendRef | GRPCBackendRef] = rule.backend_refs
    if refs and parent_unsupported is None and not rule.filters and (
        rule.session_persistence is None
    ) and not any(b.filters for b in refs):
        # The common rule: weighted backends and nothing else. Built directly, it is a
        # third of the general path's cost on a large table.
        if len(refs) == 1:
            resolved: tuple[Backend, ...] = (
                resolver.backend(route.kind, route.meta.namespace, refs[0].ref, mesh=mesh),)
            usable = resolved[0].valid and bool(resolved[0].weight)
        else:
            resolved = tuple(resolver.backend(route.kind, route.meta.namespace, b.ref, mesh=mesh)
                             for b in refs)
            usable = all(b.valid for b in resolved) and any(b.weight for b in resolved)
        if usable:
            timeouts, retry = getattr(rule, "timeouts", None), getattr(rule, "retry", None)
            plan = Plan(route=info, parent=parent, backends=resolved, timeouts=timeouts,
                        retry=retry, gateway_address=gateway_address)
            return RuleTarget(route=info, parent=parent, backends=resolved, timeouts=timeouts,
                              retry=retry, gateway_address=gateway_address, plan=plan,
                              bare_plan=plan, simple=True)
    where = f"{route.kind} {route.meta.ns_name} rule {rule.index}"
    unsupported = _unsupported(rule.filters, where) if rule.filters else []
    if parent_unsupported is not None:
        unsupported.append(f"{where}: {parent_unsupported}")
    for i, b in enumerate(refs):
        if not b.filters:
            continue
        unsupported += _unsupported(b.filters, f"{where} backendRef {i}")
        if any(isinstance(f, CORS) for f in b.filters):
            unsupported.append(f"{where} backendRef {i}: a backend-level CORS filter is not "
                               "implemented by meshclient")
    if unsupported:
        if mesh:
            # Nothing to fall back to: a mesh route is only ever served in-process.
            return RuleTarget(route=info, parent=parent, action=Action.REJECT, status=500,
                              reasons=(*unsupported, "no gateway to fall back to for a "
                                       "Service-parent route; refusing rather than skipping"))
        return RuleTarget(route=info, parent=parent, via=Via.GATEWAY,
                          gateway_address=gateway_address,
                          reasons=(*unsupported, "sent through the gateway instead"))

    edits, response = NO_EDITS, NO_EDITS
    host_rewrite = None
    path_rewrite = None
    redirect = None
    cors = None
    mirrors: list[Mirror] = []
    problems: list[str] = []
    for f in rule.filters:
        if isinstance(f, HeaderModifier):
            if f.type == "RequestHeaderModifier":
                edits = _edits(f)
            else:
                response = _edits(f)
        elif isinstance(f, URLRewrite):
            host_rewrite, path_rewrite = f.hostname, f.path
        elif isinstance(f, RequestRedirect):
            redirect = f
        elif isinstance(f, CORS):
            cors = f
        elif isinstance(f, RequestMirror):
            m = _mirror(route, f, resolver, mesh=mesh, problems=problems)
            if m is not None:
                mirrors.append(m)

    backends: list[Backend] = []
    for b in refs:
        backend = resolver.backend(route.kind, route.meta.namespace, b.ref, mesh=mesh)
        if backend.reason:
            problems.append(backend.reason)
        backends.append(_with_filters(backend, b.filters, route, resolver, mesh, problems))

    reasons: list[str] = []
    action, status = Action.FORWARD, None
    session = rule.session_persistence
    if session is not None and any(
        (svc := resolver.services.get((b.namespace, b.name))) is not None
        and svc.session_affinity == "ClientIP" for b in backends
    ):
        # G1619: Service sessionAffinity plus route session persistence must be rejected.
        action, status = Action.REJECT, 500
        reasons.append(f"{where}: sessionPersistence conflicts with a backend Service's "
                       "sessionAffinity: ClientIP")
    elif redirect is None and not backends:
        # HR, CT:httproute-omitted-backendrefs (and G1294 for mesh): no backend → 500.
        action, status = Action.REJECT, 500
        reasons.append(f"{where} has no backendRefs")
    elif redirect is None and all(b.weight == 0 for b in backends):
        action, status = Action.REJECT, 500
        reasons.append(f"{where}: every backendRef has weight 0")
    elif redirect is None and all(not b.valid or b.weight == 0 for b in backends):
        action, status = Action.REJECT, 500
        reasons.extend(b.reason or "" for b in backends if not b.valid)

    return RuleTarget(
        route=info, parent=parent, action=action, status=status, reasons=tuple(reasons),
        gateway_address=gateway_address,
        backends=tuple(backends),
        backend_filters=any(b.changes_request or b.redirect is not None for b in backends),
        edits=edits, response_edits=response, host_rewrite=host_rewrite,
        path_rewrite=path_rewrite, redirect=redirect, cors=cors, mirrors=tuple(mirrors),
        # GRPCRoute has neither field (GR); gRPC retries come from the adapter's policy.
        timeouts=getattr(rule, "timeouts", None), retry=getattr(rule, "retry", None),
        session_persistence=session,
        session_key=f"{route.meta.ns_name}/{rule.index}" if session is not None else None,
        problems=tuple(problems),
    )


def _mirror(route: HTTPRoute | GRPCRoute, f: RequestMirror, resolver: Resolver, *, mesh: bool,
            problems: list[str]) -> Mirror | None:
    backend = resolver.backend(route.kind, route.meta.namespace, f.backend_ref, mesh=mesh)
    if not backend.valid:
        # HR: an unusable mirror is dropped; the primary request is unaffected.
        problems.append(f"mirror {backend.reason}")
        return None
    return Mirror(backend=backend, percent=f.percent)


def _with_filters(backend: Backend, filters: tuple[Filter, ...], route: HTTPRoute | GRPCRoute,
                  resolver: Resolver, mesh: bool, problems: list[str]) -> Backend:
    if not filters:
        return backend
    changes: dict[str, object] = {}
    mirrors: list[Mirror] = []
    for f in filters:
        if isinstance(f, HeaderModifier):
            key = "edits" if f.type == "RequestHeaderModifier" else "response_edits"
            changes[key] = _edits(f)
        elif isinstance(f, URLRewrite):
            changes["host_rewrite"] = f.hostname
            changes["path_rewrite"] = f.path
        elif isinstance(f, RequestRedirect):
            changes["redirect"] = f
        elif isinstance(f, RequestMirror):
            m = _mirror(route, f, resolver, mesh=mesh, problems=problems)
            if m is not None:
                mirrors.append(m)
    if mirrors:
        changes["mirrors"] = tuple(mirrors)
    return attrs.evolve(backend, **changes)  # type: ignore[arg-type]
