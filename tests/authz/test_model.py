"""Parsing both AuthorizationPolicy kinds: registration, defaults, errors naming the field."""

from __future__ import annotations

import os
import textwrap

from meshclient import Mesh
from meshclient.authz import Authorizer
from meshclient.model import (
    KINDS,
    GatewayAuthorizationPolicy,
    IstioAuthorizationPolicy,
    parse_object,
)
from tests.authz.policies import WORKLOAD, gep, istio


def test_kinds_registered_for_sources() -> None:
    """Both kinds are in KINDS (what the files and Kubernetes sources read)."""
    assert ("security.istio.io", "AuthorizationPolicy") in KINDS
    assert ("gateway.networking.x-k8s.io", "AuthorizationPolicy") in KINDS
    assert "v1beta1" in KINDS[("security.istio.io", "AuthorizationPolicy")][0]


def test_parse_istio_full_policy_fields_kept() -> None:
    """Every supported Istio field is parsed into the model."""
    obj, errors = parse_object(istio("p", {
        "action": "DENY", "selector": {"matchLabels": {"app": "x"}},
        "rules": [{"from": [{"source": {"principals": ["a"], "notNamespaces": ["b"]}}],
                   "to": [{"operation": {"methods": ["GET"], "notPaths": ["/x"]}}],
                   "when": [{"key": "request.headers[x]", "notValues": ["1"]}]}]},
        annotations={"istio.io/dry-run": "true"}))
    assert isinstance(obj, IstioAuthorizationPolicy) and not errors
    assert obj.action == "DENY" and obj.dry_run and not obj.unsupported
    rule = obj.rules[0]
    assert rule.from_[0].principals == ("a",) and rule.from_[0].not_namespaces == ("b",)
    assert rule.to[0].not_paths == ("/x",) and rule.when[0].not_values == ("1",)


def test_parse_istio_invalid_values_config_errors_name_field() -> None:
    """Invalid values give ConfigErrors naming kind, ns/name, field and value."""
    _obj, errors = parse_object(istio("p", {
        "action": "MAYBE",
        "rules": [{"to": [{"operation": {"ports": ["http"]}}],
                   "from": [{"source": {"principals": "a"}}]}]}))
    where = {(e.kind, e.namespace, e.name, e.field, str(e.value)) for e in errors}
    assert ("AuthorizationPolicy", "app", "p", "spec.action", "MAYBE") in where
    assert ("AuthorizationPolicy", "app", "p", "spec.rules[0].to[0].operation.ports",
            "http") in where
    assert ("AuthorizationPolicy", "app", "p", "spec.rules[0].from[0].source.principals",
            "a") in where
    assert "spec.action: 'MAYBE'" in str(errors[0])


def test_parse_istio_bad_dry_run_annotation_error() -> None:
    """A dry-run annotation other than true/false is a ConfigError."""
    _obj, errors = parse_object(istio("p", {}, annotations={"istio.io/dry-run": "yes"}))
    assert [e.field for e in errors] == ["metadata.annotations.istio.io/dry-run"]


def test_parse_gep_defaults_and_omitted_vs_empty_sources() -> None:
    """ServiceAccount namespace defaults to the policy's; omitted and [] sources differ."""
    obj, errors = parse_object(gep("p", [
        {"sources": [{"type": "ServiceAccount", "serviceAccount": {"name": "web"}}]},
        {"sources": []}, {}]))
    assert isinstance(obj, GatewayAuthorizationPolicy) and not errors
    assert obj.rules[0].sources is not None and obj.rules[0].sources[0].namespace == "app"
    assert obj.rules[1].sources == () and obj.rules[2].sources is None


def test_parse_gep_pod_selector_with_other_refs_error() -> None:
    """A Pod selector must be the only targetRef."""
    _obj, errors = parse_object(gep("p", [{}], targets=[
        {"group": "", "kind": "Pod", "selector": {}},
        {"group": "", "kind": "Service", "name": "s"}]))
    assert any(e.field == "spec.targetRefs[0].kind" for e in errors)


def test_mesh_from_files_policies_reach_authorizer(tmp_path: os.PathLike[str]) -> None:
    """Policies in manifest files come through Mesh.from_files like routes do."""
    path = os.path.join(os.fspath(tmp_path), "authz.yaml")
    with open(path, "w") as f:
        f.write(textwrap.dedent("""\
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-all, namespace: app}
            spec: {action: DENY, rules: [{}]}
            """))
    with Mesh.from_files(path, watch=False) as mesh:
        a = Authorizer(mesh, WORKLOAD)
        got = a.check(method="GET", path=b"/", headers=[], now=0)
        assert not got.allowed and got.verdict.policy == "AuthorizationPolicy app/deny-all"


def test_parse_istio_unimplemented_field_reported_and_kept() -> None:
    """An unimplemented field is a ConfigError (UnsupportedValue) and marks the policy."""
    obj, errors = parse_object(istio("p", {"action": "DENY", "rules": [{"to": [{"operation": {
        "paths": ["/x"], "serviceAccounts": ["a"]}}]}]}))
    assert isinstance(obj, IstioAuthorizationPolicy) and obj.unsupported
    assert [(e.field, e.reason) for e in errors] == [
        ("spec.rules[0].to[0].operation.serviceAccounts", "UnsupportedValue")]
