"""Istio AuthorizationPolicy semantics: actions, order, fields, not-forms, selectors, dry-run."""

from __future__ import annotations

import logging

import pytest

from meshclient.authz import Workload
from tests.authz.policies import compiled, istio, request

WEB = "cluster.local/ns/app/sa/web"
OPS = "cluster.local/ns/ops/sa/admin"


def test_decide_no_policy_allowed() -> None:
    """With no policy applying, every request is allowed."""
    v = compiled().decide(request())
    assert v.allowed and v.reason == "no_policy"


def test_decide_deny_before_allow_denied() -> None:
    """A matching DENY wins over a matching ALLOW."""
    ps = compiled(
        istio("allow-all", {"action": "ALLOW", "rules": [{}]}),
        istio("deny-admin", {"action": "DENY", "rules": [{"to": [{"operation": {
            "paths": ["/admin*"]}}]}]}),
    )
    v = ps.decide(request(principal=WEB, path="/admin/x"))
    assert not v.allowed and v.policy == "AuthorizationPolicy app/deny-admin"
    assert ps.decide(request(principal=WEB, path="/public")).allowed


def test_decide_allow_applies_none_matches_denied() -> None:
    """Once an ALLOW policy applies, an unmatched request is denied."""
    ps = compiled(istio("a", {"rules": [{"from": [{"source": {"principals": [WEB]}}]}]}))
    assert ps.decide(request(principal=WEB)).allowed
    v = ps.decide(request(principal=OPS))
    assert not v.allowed and v.reason == "no_matching_policy" and v.status == 403


def test_decide_anonymous_where_identity_required_401() -> None:
    """An anonymous caller denied by identity-based ALLOW policies gets 401."""
    ps = compiled(istio("a", {"rules": [{"from": [{"source": {"principals": [WEB]}}]}]}))
    v = ps.decide(request())
    assert v.status == 401 and v.reason == "missing_credentials"


def test_decide_allow_without_rules_denies_everything() -> None:
    """`spec: {}` (ALLOW without rules) admits nothing; `rules: [{}]` admits everything."""
    assert not compiled(istio("deny-all", {})).decide(request(principal=WEB)).allowed
    assert compiled(istio("allow-all", {"rules": [{}]})).decide(request()).allowed


def test_decide_deny_without_rules_never_matches() -> None:
    """A DENY policy without rules denies nothing."""
    assert compiled(istio("d", {"action": "DENY"})).decide(request()).allowed


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("/api/*", "/api/v1", True),
    ("/api/*", "/apix", False),
    ("*.html", "/x/index.html", True),
    ("*.html", "/x/index.htm", False),
    ("*", "/anything", True),
    ("/exact", "/exact", True),
    ("/exact", "/exact/", False),
])
def test_decide_path_patterns_prefix_suffix_presence(pattern: str, path: str, hit: bool) -> None:
    """Paths match exactly, by prefix*, by *suffix or * (any)."""
    ps = compiled(istio("a", {"rules": [{"to": [{"operation": {"paths": [pattern]}}]}]}))
    assert ps.decide(request(path=path)).allowed is hit


def test_decide_not_principals_star_denies_anonymous() -> None:
    """DENY with notPrincipals ["*"] denies exactly the callers without a principal."""
    ps = compiled(istio("d", {"action": "DENY", "rules": [{"from": [{"source": {
        "notPrincipals": ["*"]}}]}]}))
    assert not ps.decide(request()).allowed
    assert ps.decide(request(principal=WEB)).allowed


def test_decide_namespaces_and_not_namespaces() -> None:
    """namespaces and notNamespaces in one source must both hold."""
    ps = compiled(istio("a", {"rules": [{"from": [{"source": {
        "namespaces": ["app", "ops"], "notNamespaces": ["ops"]}}]}]}))
    assert ps.decide(request(principal=WEB)).allowed
    assert not ps.decide(request(principal=OPS)).allowed


def test_decide_methods_hosts_ports_and_not_forms() -> None:
    """Operation fields AND together; hosts compare without case; methods upper-cased."""
    ps = compiled(istio("a", {"rules": [{"to": [{"operation": {
        "methods": ["get"], "hosts": ["*.APP.svc"], "ports": ["8080"],
        "notPaths": ["/private*"]}}]}]}))
    assert ps.decide(request(method="GET", host="reviews.app.svc")).allowed
    assert not ps.decide(request(method="POST")).allowed
    assert not ps.decide(request(host="reviews.other.svc")).allowed
    assert not ps.decide(request(port=9090)).allowed
    assert not ps.decide(request(path="/private/x")).allowed


def test_decide_ip_blocks_source_and_remote() -> None:
    """ipBlocks match the peer address, remoteIpBlocks the original client address."""
    ps = compiled(istio("a", {"rules": [{"from": [{"source": {
        "ipBlocks": ["10.0.0.0/8"], "notRemoteIpBlocks": ["203.0.113.7"]}}]}]}))
    assert ps.decide(request(ip="10.1.2.3")).allowed
    assert not ps.decide(request(ip="192.168.1.1")).allowed
    assert not ps.decide(request(ip="10.1.2.3", remote_ip="203.0.113.7")).allowed


def test_decide_when_headers_claims_and_source() -> None:
    """when conditions on headers, claims (nested, lists) and source attributes all hold."""
    ps = compiled(istio("a", {"rules": [{"when": [
        {"key": "request.headers[X-Tenant]", "values": ["acme*"]},
        {"key": "request.auth.claims[groups]", "values": ["admin"]},
        {"key": "request.auth.claims[org][tier]", "notValues": ["free"]},
        {"key": "source.namespace", "values": ["app"]},
    ]}]}))
    good = request(principal=WEB, user="https://login/alice", headers={"x-tenant": "acme-1"},
                   claims={"groups": ["dev", "admin"], "org": {"tier": "gold"}})
    assert ps.decide(good).allowed
    bad_tier = request(principal=WEB, user="https://login/alice", headers={"x-tenant": "acme"},
                       claims={"groups": ["admin"], "org": {"tier": "free"}})
    assert not ps.decide(bad_tier).allowed
    no_header = request(principal=WEB, user="https://login/alice",
                        claims={"groups": ["admin"]})
    assert not ps.decide(no_header).allowed


def test_decide_request_principals_match() -> None:
    """requestPrincipals match iss/sub of the validated user token."""
    ps = compiled(istio("a", {"rules": [{"from": [{"source": {
        "requestPrincipals": ["https://login/*"]}}]}]}))
    assert ps.decide(request(user="https://login/alice")).allowed
    assert not ps.decide(request(user="https://other/alice")).allowed


def test_decide_selector_and_namespace_scope() -> None:
    """A selector limits the policy to labelled workloads; other namespaces don't apply."""
    deny = {"action": "DENY", "rules": [{}]}
    assert not compiled(istio("d", {**deny, "selector": {"matchLabels": {"app": "reviews"}}})
                        ).decide(request()).allowed
    assert compiled(istio("d", {**deny, "selector": {"matchLabels": {"app": "ratings"}}})
                    ).decide(request()).allowed
    assert compiled(istio("d", deny, namespace="other")).decide(request()).allowed


def test_decide_root_namespace_policy_mesh_wide() -> None:
    """A policy in the root namespace applies to workloads of every namespace."""
    ps = compiled(istio("d", {"action": "DENY", "rules": [{}]}, namespace="istio-system"))
    assert not ps.decide(request()).allowed
    custom = Workload(namespace="app", root_namespace="mesh-root")
    assert compiled(istio("d", {"action": "DENY", "rules": [{}]}, namespace="istio-system"),
                    workload=custom).decide(request()).allowed


def test_decide_dry_run_recorded_not_enforced() -> None:
    """A dry-run DENY is evaluated and recorded but never denies."""
    ps = compiled(istio("d", {"action": "DENY", "rules": [{}]},
                        annotations={"istio.io/dry-run": "true"}))
    v = ps.decide(request())
    assert v.allowed
    assert [(d.policy, d.action, d.matched) for d in v.dry_run] == [
        ("AuthorizationPolicy app/d", "DENY", True)]


def test_decide_audit_marks_only() -> None:
    """An AUDIT policy marks matching requests and changes nothing else."""
    ps = compiled(istio("au", {"action": "AUDIT", "rules": [{"to": [{"operation": {
        "paths": ["/admin*"]}}]}]}))
    assert ps.decide(request(path="/admin")).audit
    assert ps.decide(request(path="/admin")).allowed
    assert not ps.decide(request(path="/x")).audit


@pytest.mark.parametrize("spec", [
    {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/a/{*}/b"]}}]}]},
    {"action": "DENY", "rules": [{"when": [{"key": "experimental.envoy.filters.x",
                                            "values": ["1"]}]}]},
    {"action": "DENY", "rules": [{"from": [{"source": {"serviceAccounts": ["x"]}}]}]},
    {"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]},
    {"action": "DENY", "targetRefs": [{"kind": "Gateway", "name": "gw"}], "rules": []},
])
def test_decide_unsupported_deny_fails_closed(spec: dict[str, object],
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A DENY/CUSTOM policy using something unimplemented denies everything, logged once."""
    with caplog.at_level(logging.WARNING, logger="meshclient.authz"):
        ps = compiled(istio("bad", spec))
    v = ps.decide(request(principal=WEB))
    assert not v.allowed and v.reason == "policy_invalid"
    assert "fails closed" in caplog.text and ps.problems


def test_decide_unsupported_allow_admits_nothing_of_its_own() -> None:
    """An unimplementable ALLOW policy still puts the workload in allow-list mode."""
    ps = compiled(istio("bad", {"rules": [{"to": [{"operation": {"paths": ["/{**}"]}}]}]}))
    assert not ps.decide(request()).allowed
    ps2 = compiled(
        istio("bad", {"rules": [{"to": [{"operation": {"paths": ["/{**}"]}}]}]}),
        istio("good", {"rules": [{"to": [{"operation": {"paths": ["/ok"]}}]}]}),
    )
    assert ps2.decide(request(path="/ok")).allowed
    assert not ps2.decide(request(path="/x")).allowed


def test_decide_many_policies_principal_index_same_as_scan() -> None:
    """Rules indexed by principal decide as if every rule were scanned."""
    manifests = [istio(f"p{i}", {"rules": [{"from": [{"source": {
        "principals": [f"cluster.local/ns/app/sa/s{i}"]}}], "to": [{"operation": {
        "paths": [f"/svc{i}/*"]}}]}]}) for i in range(50)]
    ps = compiled(*manifests)
    assert ps.decide(request(principal="cluster.local/ns/app/sa/s7", path="/svc7/x")).allowed
    assert not ps.decide(request(principal="cluster.local/ns/app/sa/s7",
                                 path="/svc8/x")).allowed
