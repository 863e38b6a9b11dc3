"""Compile the policies that apply to one workload into a decision function.

Evaluation order (Istio's, which GEP-3779 does not contradict; SPEC-NOTES §9):

1. a DENY policy that matches denies;
2. with no ALLOW policy applying to the workload, the request is allowed;
3. otherwise it is allowed only if some rule of some ALLOW policy matches.

AUDIT policies only mark the verdict. Dry-run policies are evaluated for the record and never
change it. Fail closed: a DENY policy meshclient cannot fully implement denies every request;
an ALLOW policy it cannot implement still applies (the workload is in allow-list mode) but
admits nothing; both are logged once, at compile time. Any exception denies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from meshclient.authz._audit import (
    ALLOW_NO_POLICY,
    DENY_MISSING_CREDENTIALS,
    DENY_NO_MATCH,
    DryRunResult,
    Verdict,
)
from meshclient.authz._gep3779 import compile_gateway_rules, gateway_key, targets
from meshclient.authz._istio import UnsupportedPolicy, applies_to, compile_istio_rules, istio_key
from meshclient.authz._request import AuthzRequest, CompiledRule
from meshclient.model import GatewayAuthorizationPolicy, IstioAuthorizationPolicy, Service
from meshclient.store import Snapshot

__all__ = ["DEFAULT_ROOT_NAMESPACE", "PolicySet", "Workload", "compile_policies"]

_log = logging.getLogger("meshclient.authz")

DEFAULT_ROOT_NAMESPACE: Final = "istio-system"
DEFAULT_TRUST_DOMAIN: Final = "cluster.local"
_NO_LABELS: Final[Mapping[str, str]] = MappingProxyType({})


def _labels(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Workload:
    """The server being protected: where it runs and what it is labelled."""

    namespace: str
    labels: Mapping[str, str] = attrs.field(default=_NO_LABELS, converter=_labels)
    service_account: str | None = None
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    root_namespace: str = DEFAULT_ROOT_NAMESPACE
    """Istio's mesh-wide policy namespace."""

    def __str__(self) -> str:
        sa = f" (sa {self.service_account})" if self.service_account else ""
        return f"workload in {self.namespace}{sa}"


@attrs.frozen(eq=False, kw_only=True)
class RuleIndex:
    """Rules of one action, indexed by the principals or namespaces they are limited to.

    A rule keyed by principal or namespace can only match callers with that principal or
    namespace (by exact path or prefix, by an exact header value: likewise), so a request
    tries those rules and the unkeyed (``general``) ones only: the verdict equals a scan of
    every rule (the differential test checks it).
    """

    by_principal: Mapping[str, tuple[CompiledRule, ...]]
    by_namespace: Mapping[str, tuple[CompiledRule, ...]]
    general: tuple[CompiledRule, ...]
    by_path: Mapping[str, tuple[CompiledRule, ...]] = MappingProxyType({})
    by_prefix: Mapping[str, tuple[CompiledRule, ...]] = MappingProxyType({})
    prefix_lengths: tuple[int, ...] = ()
    """The distinct prefix lengths: one dict lookup each per request, not one per rule."""
    by_header: Mapping[str, Mapping[str, tuple[CompiledRule, ...]]] = MappingProxyType({})
    """Header name -> exact value -> rules that need that value."""

    @classmethod
    def build(cls, rules: Iterable[CompiledRule]) -> RuleIndex:
        by: dict[str, dict[str, list[CompiledRule]]] = {"p": {}, "n": {}, "x": {}, "pre": {}}
        headers: dict[str, dict[str, list[CompiledRule]]] = {}
        general: list[CompiledRule] = []

        def add(kind: str, value: str, rule: CompiledRule) -> None:
            bucket = by.setdefault(kind, {}).setdefault(value, [])
            if rule not in bucket:
                bucket.append(rule)

        for rule in rules:
            if rule.principals is not None:
                for kind, value in rule.principals:
                    add(kind, value, rule)
            elif rule.paths is not None:
                exact, prefixes = rule.paths
                for value in exact:
                    add("x", value, rule)
                for value in prefixes:
                    add("pre", value, rule)
            elif rule.header is not None:
                name, values = rule.header
                for value in values:
                    headers.setdefault(name, {}).setdefault(value, []).append(rule)
            else:
                general.append(rule)

        def frozen(kind: str) -> Mapping[str, tuple[CompiledRule, ...]]:
            return MappingProxyType({k: tuple(v) for k, v in by[kind].items()})

        return cls(
            by_principal=frozen("p"), by_namespace=frozen("n"), general=tuple(general),
            by_path=frozen("x"), by_prefix=frozen("pre"),
            prefix_lengths=tuple(sorted({len(k) for k in by["pre"]})),
            by_header=MappingProxyType({
                name: MappingProxyType({v: tuple(rs) for v, rs in table.items()})
                for name, table in headers.items()}),
        )

    def first(self, req: AuthzRequest, principal: str | None) -> CompiledRule | None:
        if principal is not None:
            for rule in self.by_principal.get(principal, ()):
                if rule.match(req):
                    return rule
            if self.by_namespace:
                peer = req.caller.peer
                namespace = peer.namespace if peer is not None else None
                if namespace is not None:
                    for rule in self.by_namespace.get(namespace, ()):
                        if rule.match(req):
                            return rule
        if self.by_path or self.prefix_lengths:
            path = req.path
            for rule in self.by_path.get(path, ()):
                if rule.match(req):
                    return rule
            for length in self.prefix_lengths:
                if length > len(path):
                    break
                for rule in self.by_prefix.get(path[:length], ()):
                    if rule.match(req):
                        return rule
        if self.by_header:
            for name, table in self.by_header.items():
                value = req.headers.get(name)
                if value is not None:
                    for rule in table.get(value, ()):
                        if rule.match(req):
                            return rule
        for rule in self.general:
            if rule.match(req):
                return rule
        return None

    def __bool__(self) -> bool:
        return bool(self.by_principal or self.by_namespace or self.general or self.by_path
                    or self.by_prefix or self.by_header)


_EMPTY_INDEX: Final = RuleIndex(
    by_principal=MappingProxyType({}), by_namespace=MappingProxyType({}), general=())


@attrs.frozen(eq=False, kw_only=True)
class PolicySet:
    """The compiled policies of one workload at one snapshot; ``decide`` is pure."""

    version: int = 0
    deny: RuleIndex = _EMPTY_INDEX
    allow: RuleIndex = _EMPTY_INDEX
    audit: RuleIndex = _EMPTY_INDEX
    has_allow: bool = False
    """Some ALLOW policy applies to the workload (valid or not)."""
    allow_needs_identity: bool = False
    """Some applying ALLOW rule names callers (an anonymous denial is then a 401)."""
    broken_deny: Verdict | None = None
    """A DENY policy that cannot be implemented: every request is denied with this."""
    dry_run: tuple[tuple[str, str, RuleIndex], ...] = ()
    denied_by: Mapping[str, Verdict] = MappingProxyType({})
    allowed_by: Mapping[str, Verdict] = MappingProxyType({})
    policies: tuple[str, ...] = ()
    """Every policy that applies, in evaluation order (for diagnostics)."""
    problems: tuple[str, ...] = ()
    """Why policies fail closed."""

    def decide(self, req: AuthzRequest) -> Verdict:
        """The verdict for one request (DENY, then ALLOW; see the module docstring)."""
        if self.broken_deny is not None:
            return self._with_extras(self.broken_deny, req)
        peer = req.caller.peer
        principal = peer.principal if peer is not None else None
        hit = self.deny.first(req, principal) if self.deny else None
        if hit is not None:
            return self._with_extras(self.denied_by[hit.policy], req)
        if not self.has_allow:
            return self._with_extras(ALLOW_NO_POLICY, req)
        hit = self.allow.first(req, principal) if self.allow else None
        if hit is not None:
            return self._with_extras(self.allowed_by[hit.policy], req)
        if self.allow_needs_identity and not req.caller.authenticated:
            return self._with_extras(DENY_MISSING_CREDENTIALS, req)
        return self._with_extras(DENY_NO_MATCH, req)

    def _with_extras(self, verdict: Verdict, req: AuthzRequest) -> Verdict:
        if not self.audit and not self.dry_run:
            return verdict
        peer = req.caller.peer
        principal = peer.principal if peer is not None else None
        audit = bool(self.audit) and self.audit.first(req, principal) is not None
        dry = tuple(
            DryRunResult(policy=key, action=action,
                         matched=index.first(req, principal) is not None)
            for key, action, index in self.dry_run
        )
        if not audit and not dry:
            return verdict
        return attrs.evolve(verdict, audit=audit, dry_run=dry)


def _uses_identity(policy: IstioAuthorizationPolicy) -> bool:
    for rule in policy.rules:
        for src in rule.from_:
            if src.principals or src.request_principals or src.namespaces:
                return True
        for cond in rule.when:
            if cond.key.startswith(("source.principal", "source.namespace", "request.auth.")):
                return True
    return False


def compile_policies(snapshot: Snapshot, workload: Workload) -> PolicySet:
    """The policies of ``snapshot`` that apply to ``workload``, compiled.

    Never raises for a bad policy: it fails closed and is listed in ``problems``.
    """
    istio = sorted(
        (p for p in snapshot.of("IstioAuthorizationPolicy").values()
         if isinstance(p, IstioAuthorizationPolicy)
         and applies_to(p, workload.namespace, workload.labels, workload.root_namespace)),
        key=lambda p: (p.meta.creation, p.meta.namespace, p.meta.name),
    )
    services = [s for s in snapshot.of("Service").values() if isinstance(s, Service)]
    gep = sorted(
        (p for p in snapshot.of("GatewayAuthorizationPolicy").values()
         if isinstance(p, GatewayAuthorizationPolicy)
         and targets(p, workload.namespace, workload.labels, services)),
        key=lambda p: (p.meta.creation, p.meta.namespace, p.meta.name),
    )
    deny: list[CompiledRule] = []
    allow: list[CompiledRule] = []
    audit: list[CompiledRule] = []
    dry_run: list[tuple[str, str, RuleIndex]] = []
    denied_by: dict[str, Verdict] = {}
    allowed_by: dict[str, Verdict] = {}
    problems: list[str] = []
    has_allow = needs_identity = False
    broken_deny: Verdict | None = None
    keys: list[str] = []

    for ip in istio:
        key = istio_key(ip)
        keys.append(key)
        try:
            rules = compile_istio_rules(ip)
        except UnsupportedPolicy as exc:
            problem = f"{key}: fails closed: {exc}"
            problems.append(problem)
            _log.warning("%s", problem)
            if ip.dry_run:
                continue  # a dry-run policy never enforces, broken or not
            if ip.action == "ALLOW":
                has_allow = True
            elif ip.action != "AUDIT":  # DENY, CUSTOM or unknown: deny everything
                broken_deny = broken_deny or Verdict(
                    allowed=False, status=403, reason="policy_invalid", policy=key,
                    detail=str(exc),
                )
            continue
        if ip.dry_run:
            dry_run.append((key, ip.action, RuleIndex.build(rules)))
            continue
        if ip.action == "DENY":
            deny.extend(rules)
            denied_by[key] = Verdict(allowed=False, status=403, reason="denied_by_policy",
                                     policy=key)
        elif ip.action == "ALLOW":
            has_allow = True
            needs_identity = needs_identity or _uses_identity(ip)
            allow.extend(rules)
            allowed_by[key] = Verdict(allowed=True, status=200, reason="allowed_by_policy",
                                      policy=key)
        else:  # AUDIT
            audit.extend(rules)

    for gp in gep:
        key = gateway_key(gp)
        keys.append(key)
        has_allow = True
        try:
            rules = compile_gateway_rules(gp, workload.trust_domain)
        except UnsupportedPolicy as exc:
            problem = f"{key}: fails closed: {exc}"
            problems.append(problem)
            _log.warning("%s", problem)
            continue
        needs_identity = needs_identity or any(r.sources is not None for r in gp.rules)
        allow.extend(rules)
        allowed_by[key] = Verdict(allowed=True, status=200, reason="allowed_by_policy",
                                  policy=key)

    return PolicySet(
        version=snapshot.version,
        deny=RuleIndex.build(deny),
        allow=RuleIndex.build(allow),
        audit=RuleIndex.build(audit),
        has_allow=has_allow,
        allow_needs_identity=needs_identity,
        broken_deny=broken_deny,
        dry_run=tuple(dry_run),
        denied_by=MappingProxyType(denied_by),
        allowed_by=MappingProxyType(allowed_by),
        policies=tuple(keys),
        problems=tuple(problems),
    )


DENY_ALL_ON_ERROR: Final = PolicySet(
    broken_deny=Verdict(allowed=False, status=403, reason="error",
                        detail="policies could not be compiled"),
)
