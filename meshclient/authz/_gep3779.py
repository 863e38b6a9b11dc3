"""Gateway API AuthorizationPolicy as designed in GEP-3779 (SPEC-NOTES §9).

No CRD is published yet; meshclient reads the kind under the experimental group
``gateway.networking.x-k8s.io/v1alpha1``. Only ``action: ALLOW`` and ``enforcementLevel:
Network`` exist: identities (ServiceAccount, SPIFFE) and destination ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from meshclient.authz._istio import UnsupportedPolicy
from meshclient.authz._request import AuthzRequest, CompiledRule, Matcher
from meshclient.model import GatewayAuthorizationPolicy, GatewayAuthzRule, GatewayAuthzSource
from meshclient.model import Service as ServiceObj

__all__ = ["compile_gateway_rules", "gateway_key", "targets"]


def gateway_key(policy: GatewayAuthorizationPolicy) -> str:
    kind = "XAuthorizationPolicy" if policy.meta.api_version.endswith("/XAuthorizationPolicy") \
        else "AuthorizationPolicy"
    return f"{kind} {policy.meta.namespace}/{policy.meta.name} (GEP-3779)"


def targets(
    policy: GatewayAuthorizationPolicy, namespace: str, labels: Mapping[str, str],
    services: Iterable[ServiceObj],
) -> bool:
    """Whether the policy targets a workload (pod) with these labels in ``namespace``.

    GEP-3779: a policy only targets objects in its own namespace; a Pod targetRef's selector
    picks pods by label (``{}``: every pod of the namespace); a Service targetRef picks the
    pods its selector matches.
    """
    if policy.meta.namespace != namespace:
        return False
    if policy.pod_selector is not None and policy.pod_selector.matches(labels):
        return True
    if not policy.target_services:
        return False
    wanted = set(policy.target_services)
    for svc in services:
        if svc.meta.namespace != namespace or svc.meta.name not in wanted:
            continue
        sel = svc.selector
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            return True
    return False


def _source_match(
    src: GatewayAuthzSource, trust_domain: str
) -> tuple[Matcher, tuple[str, str] | None]:
    if src.type == "SPIFFE" and src.spiffe is not None:
        spiffe = src.spiffe

        def by_spiffe(req: AuthzRequest) -> bool:
            peer = req.caller.peer
            return peer is not None and peer.spiffe_id == spiffe

        return by_spiffe, ("p", spiffe[len("spiffe://"):])
    if src.type == "ServiceAccount" and src.namespace and src.name:
        ns, name = src.namespace, src.name
        # The source must be in the target's trust domain (GEP-3779).
        if name == "*":
            def any_sa(req: AuthzRequest) -> bool:
                peer = req.caller.peer
                return (peer is not None and peer.trust_domain == trust_domain
                        and peer.namespace == ns and peer.service_account is not None)

            return any_sa, ("n", ns)

        def by_sa(req: AuthzRequest) -> bool:
            peer = req.caller.peer
            return (peer is not None and peer.trust_domain == trust_domain
                    and peer.namespace == ns and peer.service_account == name)

        return by_sa, ("p", f"{trust_domain}/ns/{ns}/sa/{name}")
    raise UnsupportedPolicy(f"source {src!r}")


def _rule(
    rule: GatewayAuthzRule, trust_domain: str
) -> tuple[Matcher, frozenset[tuple[str, str]] | None]:
    parts: list[Matcher] = []
    keys: frozenset[tuple[str, str]] | None = None
    if rule.sources is not None:
        if not rule.sources:
            # `sources: []`: present but empty selects no source (GEP-3779).
            return (lambda req: False), frozenset()
        compiled = [_source_match(s, trust_domain) for s in rule.sources]
        ms = tuple(m for m, _ in compiled)
        parts.append(ms[0] if len(ms) == 1 else (lambda req: any(m(req) for m in ms)))
        if all(k is not None for _, k in compiled):
            keys = frozenset(k for _, k in compiled if k is not None)
    if rule.ports is not None:
        ports = frozenset(rule.ports)
        parts.append(lambda req: req.port in ports)
    if not parts:
        return (lambda req: True), None
    if len(parts) == 1:
        return parts[0], keys
    a, b = parts
    return (lambda req: a(req) and b(req)), keys


def compile_gateway_rules(
    policy: GatewayAuthorizationPolicy, trust_domain: str
) -> tuple[CompiledRule, ...]:
    """The policy's rules as predicates (a request matches the policy if any rule matches).

    Raises:
        UnsupportedPolicy: the policy uses something not implemented (it must fail closed).
    """
    if policy.unsupported:
        raise UnsupportedPolicy("; ".join(policy.unsupported))
    key = gateway_key(policy)
    out = []
    for index, rule in enumerate(policy.rules):
        match, keys = _rule(rule, trust_domain)
        out.append(CompiledRule(policy=key, index=index, match=match, principals=keys))
    return tuple(out)
