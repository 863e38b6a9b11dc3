"""GEP-3779 AuthorizationPolicy (SPEC-NOTES §9, checklist rows 154–161)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient.authz import Workload
from meshclient.model import GatewayAuthorizationPolicy, parse_object
from tests.authz.policies import WORKLOAD, compiled, gep, request

WEB = "cluster.local/ns/app/sa/web"


def sa(name: str, namespace: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if namespace is not None:
        body["namespace"] = namespace
    return {"type": "ServiceAccount", "serviceAccount": body}


def test_gep_no_policy_targeting_workload_allowed() -> None:
    """Row 154: a workload no policy targets admits all traffic."""
    ps = compiled(gep("other", [{"sources": [sa("web")]}],
                      selector={"matchLabels": {"app": "ratings"}}))
    assert ps.decide(request()).allowed


def test_gep_targeted_allowed_only_when_rule_matches() -> None:
    """Row 155: once targeted, a request is admitted only if some rule matches."""
    ps = compiled(gep("p", [{"sources": [sa("web")]}]))
    assert ps.decide(request(principal=WEB)).allowed
    assert not ps.decide(request(principal="cluster.local/ns/app/sa/db")).allowed


def test_gep_policy_without_rules_admits_nothing() -> None:
    """Row 155 (reading): a targeting policy with no rules admits nothing."""
    assert not compiled(gep("p", None)).decide(request(principal=WEB)).allowed


def test_gep_sources_omitted_any_empty_none() -> None:
    """Row 156: omitted sources admit any source; `sources: []` admits none."""
    assert compiled(gep("p", [{}])).decide(request()).allowed
    assert not compiled(gep("p", [{"sources": []}])).decide(request(principal=WEB)).allowed


def test_gep_service_account_namespace_default_and_star() -> None:
    """Row 157: ServiceAccount namespace defaults to the policy's; name `*` is every SA."""
    ps = compiled(gep("p", [{"sources": [sa("web"), sa("*", "ops")]}]))
    assert ps.decide(request(principal=WEB)).allowed
    assert ps.decide(request(principal="cluster.local/ns/ops/sa/anything")).allowed
    assert not ps.decide(request(principal="cluster.local/ns/other/sa/web")).allowed


def test_gep_service_account_other_trust_domain_denied() -> None:
    """Row 157: a ServiceAccount source only matches in the target's trust domain."""
    ps = compiled(gep("p", [{"sources": [sa("web")]}]))
    assert not ps.decide(request(principal="evil.example/ns/app/sa/web")).allowed


def test_gep_spiffe_source_exact_match() -> None:
    """Row 158: a SPIFFE source matches exactly that SPIFFE ID."""
    ps = compiled(gep("p", [{"sources": [
        {"type": "SPIFFE", "spiffe": "spiffe://other.td/workload/x"}]}]))
    assert ps.decide(request(principal="other.td/workload/x")).allowed
    assert not ps.decide(request(principal="other.td/workload/y")).allowed


@pytest.mark.parametrize("value", ["cluster.local/ns/a/sa/b", "spiffe://", "spiffe://td",
                                   "spiffe://TD/x", "https://td/x"])
def test_gep_spiffe_source_malformed_config_error_fails_closed(value: str) -> None:
    """Row 158: a SPIFFE source not `spiffe://td/...` is an error; the policy admits nothing."""
    manifest = gep("p", [{"sources": [{"type": "SPIFFE", "spiffe": value}]}])
    obj, errors = parse_object(manifest)
    assert isinstance(obj, GatewayAuthorizationPolicy)
    assert any(e.field == "spec.rules[0].sources[0].spiffe" and e.value == value for e in errors)
    assert not compiled(manifest).decide(request(principal=WEB)).allowed


def test_gep_ports_restrict_rule_omitted_all() -> None:
    """Row 159: ports restrict a rule; omitted ports mean every port."""
    ps = compiled(gep("p", [{"sources": [sa("web")], "networkAttributes": {"ports": [8080]}}]))
    assert ps.decide(request(principal=WEB, port=8080)).allowed
    assert not ps.decide(request(principal=WEB, port=9090)).allowed
    assert compiled(gep("p", [{"sources": [sa("web")]}])).decide(
        request(principal=WEB, port=9090)).allowed


def test_gep_pod_selector_empty_all_pods_own_namespace_only() -> None:
    """Row 160: selector `{}` targets every pod of its namespace and no other namespace."""
    ps = compiled(gep("p", [{"sources": []}], selector={}))
    assert not ps.decide(request(principal=WEB)).allowed
    other = Workload(namespace="elsewhere", labels={"app": "reviews"})
    assert compiled(gep("p", [{"sources": []}], selector={}), workload=other).decide(
        request(principal=WEB)).allowed


def test_gep_service_target_selects_its_pods() -> None:
    """A Service targetRef targets the pods its selector matches."""
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "reviews", "namespace": "app"},
           "spec": {"selector": {"app": "reviews"}, "ports": [{"port": 80}]}}
    ps = compiled(svc, gep("p", [{"sources": []}], targets=[
        {"group": "", "kind": "Service", "name": "reviews"}]))
    assert not ps.decide(request(principal=WEB)).allowed


@pytest.mark.parametrize(("field", "value"), [
    ("action", "DENY"), ("enforcementLevel", "Application"),
])
def test_gep_unsupported_action_or_level_fails_closed(field: str, value: str) -> None:
    """Only ALLOW/Network exist: anything else is a ConfigError and the policy admits nothing."""
    manifest = gep("p", [{}])
    manifest["spec"][field] = value
    _obj, errors = parse_object(manifest)
    assert any(e.field == f"spec.{field}" and e.value == value and e.kind ==
               "AuthorizationPolicy" and e.name == "p" for e in errors)
    assert not compiled(manifest).decide(request(principal=WEB)).allowed


def test_gep_x_prefixed_kind_accepted() -> None:
    """The experimental XAuthorizationPolicy kind parses to the same type."""
    manifest = gep("p", [{}])
    manifest["kind"] = "XAuthorizationPolicy"
    obj, errors = parse_object(manifest)
    assert isinstance(obj, GatewayAuthorizationPolicy) and not errors


def test_gep_evaluation_error_denied() -> None:
    """Row 161: an exception while evaluating a rule denies (through the Authorizer)."""
    from meshclient.authz import Authorizer
    from meshclient.store import Store

    store = Store()
    authz = Authorizer(store, WORKLOAD)

    class Boom:
        def decide(self, req: object) -> object:
            raise RuntimeError("boom")

    authz.policies = Boom  # type: ignore[assignment,method-assign]
    got = authz.check(method="GET", path=b"/", headers=[], now=0)
    assert not got.allowed and got.verdict.reason == "error"
