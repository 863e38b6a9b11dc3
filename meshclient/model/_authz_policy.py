"""Authorization policies: Istio ``security.istio.io`` and Gateway API GEP-3779.

Both kinds are parsed completely; what meshclient does not implement is kept as
``unsupported`` reasons on the object (never dropped), so the engine can make that policy
fail closed instead of silently widening access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from meshclient.errors import ConfigError
from meshclient.model._meta import LabelSelector, Meta, parse_meta, spec_of
from meshclient.model._reader import INVALID, Reader

__all__ = [
    "DRY_RUN_ANNOTATION",
    "ISTIO_SECURITY_GROUP",
    "GatewayAuthorizationPolicy",
    "GatewayAuthzRule",
    "GatewayAuthzSource",
    "IstioAuthorizationPolicy",
    "IstioCondition",
    "IstioOperation",
    "IstioRule",
    "IstioSource",
    "parse_gateway_authorization_policy",
    "parse_istio_authorization_policy",
]

ISTIO_SECURITY_GROUP: Final = "security.istio.io"
DRY_RUN_ANNOTATION: Final = "istio.io/dry-run"

_ISTIO_KIND: Final = "AuthorizationPolicy"
_NOT_IMPLEMENTED: Final = "is not implemented by meshclient: the policy fails closed"
_ISTIO_ACTIONS: Final = frozenset({"ALLOW", "DENY", "AUDIT", "CUSTOM"})

_SOURCE_FIELDS: Final = (
    ("principals", "principals"),
    ("notPrincipals", "not_principals"),
    ("requestPrincipals", "request_principals"),
    ("notRequestPrincipals", "not_request_principals"),
    ("namespaces", "namespaces"),
    ("notNamespaces", "not_namespaces"),
    ("ipBlocks", "ip_blocks"),
    ("notIpBlocks", "not_ip_blocks"),
    ("remoteIpBlocks", "remote_ip_blocks"),
    ("notRemoteIpBlocks", "not_remote_ip_blocks"),
)
_OPERATION_FIELDS: Final = (
    ("hosts", "hosts"),
    ("notHosts", "not_hosts"),
    ("ports", "ports"),
    ("notPorts", "not_ports"),
    ("methods", "methods"),
    ("notMethods", "not_methods"),
    ("paths", "paths"),
    ("notPaths", "not_paths"),
)


# -- Istio -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class IstioSource:
    """``rules[].from[].source``: every present field must match (each field ORs its values)."""

    principals: tuple[str, ...] | None = None
    not_principals: tuple[str, ...] | None = None
    request_principals: tuple[str, ...] | None = None
    not_request_principals: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None
    not_namespaces: tuple[str, ...] | None = None
    ip_blocks: tuple[str, ...] | None = None
    not_ip_blocks: tuple[str, ...] | None = None
    remote_ip_blocks: tuple[str, ...] | None = None
    not_remote_ip_blocks: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class IstioOperation:
    """``rules[].to[].operation``: every present field must match."""

    hosts: tuple[str, ...] | None = None
    not_hosts: tuple[str, ...] | None = None
    ports: tuple[str, ...] | None = None
    not_ports: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    not_methods: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    not_paths: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class IstioCondition:
    """``rules[].when[]``: ``key`` matches one of ``values`` and none of ``not_values``."""

    key: str
    values: tuple[str, ...] | None = None
    not_values: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class IstioRule:
    """A rule matches when some ``from`` and some ``to`` match and every ``when`` holds."""

    from_: tuple[IstioSource, ...] = ()
    to: tuple[IstioOperation, ...] = ()
    when: tuple[IstioCondition, ...] = ()
    errors: tuple[ConfigError, ...] = ()
    """Always empty: a policy's errors are on the policy (``parse_object`` reads both)."""


@attrs.frozen(kw_only=True)
class IstioAuthorizationPolicy:
    """``security.istio.io/v1`` AuthorizationPolicy."""

    meta: Meta
    action: str = "ALLOW"
    selector: LabelSelector | None = None
    """None: every workload in the namespace (the root namespace: in the mesh)."""
    rules: tuple[IstioRule, ...] = ()
    dry_run: bool = False
    unsupported: tuple[str, ...] = ()
    """Fields meshclient does not implement; the engine fails this policy closed."""
    errors: tuple[ConfigError, ...] = ()


def _opt_strings(r: Reader, key: str) -> tuple[str, ...] | None:
    if r.get(key) is None:
        return None
    return tuple(r.strings(key))


def parse_istio_authorization_policy(
    raw: Mapping[str, object], default_namespace: str
) -> IstioAuthorizationPolicy:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, _ISTIO_KIND, default_namespace, errors)
    spec = spec_of(raw, _ISTIO_KIND, meta, errors)
    unsupported: list[str] = []
    action = spec.str("action", "ALLOW") or "ALLOW"
    if action not in _ISTIO_ACTIONS:
        spec.error("action", action, "is not ALLOW, DENY, AUDIT or CUSTOM", INVALID)
        unsupported.append(f"spec.action: {action!r} is not a known action")
    elif action == "CUSTOM":
        spec.error("action", action, _NOT_IMPLEMENTED)
        unsupported.append("spec.action: CUSTOM (external authorizers) is not implemented")
    for key in ("targetRef", "targetRefs", "provider"):
        if spec.has(key):
            spec.error(key, spec.get(key), _NOT_IMPLEMENTED)
            unsupported.append(f"spec.{key} is not implemented")
    selector: LabelSelector | None = None
    sel = spec.child("selector")
    if sel is not None:
        # Istio's WorkloadSelector has matchLabels only.
        labels = sel.mapping_of_str("matchLabels")
        selector = LabelSelector(match_labels=tuple(sorted(labels.items())))
        for key in sel.raw:
            if key != "matchLabels":
                sel.error(key, sel.get(key), _NOT_IMPLEMENTED)
                unsupported.append(f"spec.selector.{key} is not implemented")
    rules: list[IstioRule] = []
    for rr in spec.children("rules"):
        froms: list[IstioSource] = []
        for fr in rr.children("from"):
            src = fr.child("source")
            if src is None:
                fr.missing("source")
                unsupported.append(f"{fr.path}.source is missing")
                continue
            values = {attr: _opt_strings(src, key) for key, attr in _SOURCE_FIELDS}
            for key in src.raw:
                if key not in dict(_SOURCE_FIELDS):
                    src.error(key, src.get(key), _NOT_IMPLEMENTED)
                    unsupported.append(f"{src.field_path(key)} is not implemented")
            froms.append(IstioSource(**values))
        tos: list[IstioOperation] = []
        for tr in rr.children("to"):
            op = tr.child("operation")
            if op is None:
                tr.missing("operation")
                unsupported.append(f"{tr.path}.operation is missing")
                continue
            values = {attr: _opt_strings(op, key) for key, attr in _OPERATION_FIELDS}
            for key in op.raw:
                if key not in dict(_OPERATION_FIELDS):
                    op.error(key, op.get(key), _NOT_IMPLEMENTED)
                    unsupported.append(f"{op.field_path(key)} is not implemented")
            for port in (values["ports"] or ()) + (values["not_ports"] or ()):
                if not port.isdigit() or not 0 < int(port) < 65536:
                    op.error("ports", port, "is not a port number", INVALID)
                    unsupported.append(f"{op.path}.ports: {port!r} is not a port number")
            tos.append(IstioOperation(**values))
        whens: list[IstioCondition] = []
        for wr in rr.children("when"):
            key = wr.str("key", required=True)
            if not key:
                unsupported.append(f"{wr.path}.key is missing")
            whens.append(IstioCondition(
                key=key, values=_opt_strings(wr, "values"),
                not_values=_opt_strings(wr, "notValues"),
            ))
        for key in rr.raw:
            if key not in ("from", "to", "when"):
                rr.error(key, rr.get(key), _NOT_IMPLEMENTED)
                unsupported.append(f"{rr.field_path(key)} is not implemented")
        rules.append(IstioRule(from_=tuple(froms), to=tuple(tos), when=tuple(whens)))
    dry = meta.annotations.get(DRY_RUN_ANNOTATION, "")
    if dry not in ("", "true", "false"):
        Reader(
            {}, kind=_ISTIO_KIND, namespace=meta.namespace, name=meta.name,
            path="metadata.annotations", errors=errors,
        ).error(DRY_RUN_ANNOTATION, dry, "must be 'true' or 'false'", INVALID)
    return IstioAuthorizationPolicy(
        meta=meta, action=action, selector=selector, rules=tuple(rules), dry_run=dry == "true",
        unsupported=tuple(unsupported), errors=tuple(errors),
    )


# -- Gateway API GEP-3779 ----------------------------------------------------------------

_GEP_KIND: Final = "AuthorizationPolicy"


@attrs.frozen(kw_only=True)
class GatewayAuthzSource:
    """One source: a ServiceAccount (namespace, name or ``*``) or a SPIFFE ID."""

    type: str
    namespace: str | None = None
    name: str | None = None
    spiffe: str | None = None


@attrs.frozen(kw_only=True)
class GatewayAuthzRule:
    """All parts must match: sources (None: any, ``()``: none) and ports (None: all)."""

    sources: tuple[GatewayAuthzSource, ...] | None = None
    ports: tuple[int, ...] | None = None
    errors: tuple[ConfigError, ...] = ()
    """Always empty: a policy's errors are on the policy (``parse_object`` reads both)."""


@attrs.frozen(kw_only=True)
class GatewayAuthorizationPolicy:
    """GEP-3779 AuthorizationPolicy, read under ``gateway.networking.x-k8s.io/v1alpha1``."""

    meta: Meta
    action: str = "ALLOW"
    enforcement_level: str = ""
    pod_selector: LabelSelector | None = None
    """The selector of the one Pod targetRef; None when the policy targets other kinds."""
    target_services: tuple[str, ...] = ()
    """Names of Services targeted (pods they select, in the policy's namespace)."""
    rules: tuple[GatewayAuthzRule, ...] = ()
    unsupported: tuple[str, ...] = ()
    errors: tuple[ConfigError, ...] = ()


def parse_gateway_authorization_policy(
    raw: Mapping[str, object], default_namespace: str
) -> GatewayAuthorizationPolicy:
    errors: list[ConfigError] = []
    kind = raw.get("kind") if isinstance(raw.get("kind"), str) else _GEP_KIND
    kind = str(kind)
    meta = parse_meta(raw, kind, default_namespace, errors)
    spec = spec_of(raw, kind, meta, errors)
    unsupported: list[str] = []
    action = spec.str("action", required=True)
    if action != "ALLOW":
        spec.error("action", action, "must be ALLOW (GEP-3779 defines no other action)")
        unsupported.append(f"spec.action: {action!r} is not ALLOW")
    level = spec.str("enforcementLevel", required=True)
    if level and level != "Network":
        spec.error("enforcementLevel", level, "must be Network (Application is reserved)")
    if level != "Network":
        unsupported.append(f"spec.enforcementLevel: {level!r} is not Network")
    pod_selector: LabelSelector | None = None
    services: list[str] = []
    refs = spec.children("targetRefs")
    if not refs:
        spec.missing("targetRefs")
        unsupported.append("spec.targetRefs is empty")
    for ref in refs:
        group = ref.str("group")
        rkind = ref.str("kind", required=True)
        if group == "" and rkind == "Pod":
            sel = ref.child("selector")
            if ref.has("name") or sel is None:
                ref.error("selector", ref.get("name"),
                          "a Pod targetRef needs a selector and no name")
                unsupported.append(f"{ref.path}: Pod targetRef without a selector")
                continue
            if len(refs) != 1:
                ref.error("kind", rkind, "a Pod selector must be the only targetRef", INVALID)
                unsupported.append(f"{ref.path}: Pod selector is not the only targetRef")
            pod_selector = LabelSelector.parse(sel)
        elif group == "" and rkind == "Service":
            name = ref.str("name", required=True)
            if ref.has("selector"):
                ref.error("selector", ref.get("selector"), "is only allowed on Pod targetRefs",
                          INVALID)
                unsupported.append(f"{ref.path}.selector on a Service targetRef")
            if ref.has("namespace"):
                unsupported.append(
                    f"{ref.path}.namespace: policies only target their own namespace")
            services.append(name)
        else:
            ref.error("kind", rkind, "is not a supported target (Pod selector or Service)")
            unsupported.append(f"{ref.path}: target kind {group}/{rkind} is not implemented")
    rules: list[GatewayAuthzRule] = []
    for rr in spec.children("rules"):
        sources: tuple[GatewayAuthzSource, ...] | None = None
        if rr.list_present("sources"):
            got: list[GatewayAuthzSource] = []
            for sr in rr.children("sources"):
                stype = sr.str("type", required=True)
                if stype == "ServiceAccount":
                    sa = sr.child("serviceAccount")
                    if sa is None:
                        sr.missing("serviceAccount")
                        unsupported.append(f"{sr.path}.serviceAccount is missing")
                        continue
                    got.append(GatewayAuthzSource(
                        type=stype, namespace=sa.str("namespace") or meta.namespace,
                        name=sa.str("name", required=True),
                    ))
                elif stype == "SPIFFE":
                    value = sr.str("spiffe", required=True)
                    if not _is_spiffe_id(value):
                        sr.error("spiffe", value, "is not spiffe://<trust-domain>/<path>", INVALID)
                        unsupported.append(f"{sr.path}.spiffe: {value!r} is not a SPIFFE ID")
                        continue
                    got.append(GatewayAuthzSource(type=stype, spiffe=value))
                else:
                    sr.error("type", stype, "is not ServiceAccount or SPIFFE")
                    unsupported.append(f"{sr.path}.type: {stype!r} is not implemented")
            sources = tuple(got)
        elif rr.has("sources"):
            rr.error("sources", rr.get("sources"), "must be a list", INVALID)
            unsupported.append(f"{rr.path}.sources is not a list")
        ports: tuple[int, ...] | None = None
        na = rr.child("networkAttributes")
        if na is not None:
            if na.has("ports"):
                plist: list[int] = []
                items = na.get("ports")
                for index, p in enumerate(items if isinstance(items, list) else [items]):
                    if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536:
                        na.error("ports", p, f"[{index}] is not a port number", INVALID)
                        unsupported.append(f"{na.path}.ports: {p!r} is not a port number")
                        continue
                    plist.append(p)
                ports = tuple(plist)
            for key in na.raw:
                if key != "ports":
                    na.error(key, na.get(key), _NOT_IMPLEMENTED)
                    unsupported.append(f"{na.field_path(key)} is not implemented")
        for key in rr.raw:
            if key not in ("sources", "networkAttributes"):
                rr.error(key, rr.get(key), _NOT_IMPLEMENTED)
                unsupported.append(f"{rr.field_path(key)} is not implemented")
        rules.append(GatewayAuthzRule(sources=sources, ports=ports))
    return GatewayAuthorizationPolicy(
        meta=meta, action=action, enforcement_level=level, pod_selector=pod_selector,
        target_services=tuple(services), rules=tuple(rules), unsupported=tuple(unsupported),
        errors=tuple(errors),
    )


def _is_spiffe_id(value: str) -> bool:
    if not value.startswith("spiffe://"):
        return False
    domain, sep, path = value[len("spiffe://"):].partition("/")
    return bool(domain) and domain == domain.lower() and bool(sep) and bool(path)
