"""Differential test: the compiled, indexed engine against a plain reading of the rules.

The reference below is written from the rules in the issue and Istio's documentation, walking
the parsed model objects with ordinary loops: no indexes, no closures, no shared code with
``meshclient.authz`` beyond the model types.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.authz import AuthzRequest, Workload, compile_policies
from meshclient.model import (
    GatewayAuthorizationPolicy,
    IstioAuthorizationPolicy,
    IstioRule,
    parse_object,
)
from meshclient.store import Snapshot
from tests.authz.policies import WORKLOAD, gep, istio, request

PRINCIPALS = [None, "cluster.local/ns/app/sa/web", "cluster.local/ns/ops/sa/admin",
              "other.td/ns/app/sa/web"]
USERS = [None, "https://login/alice", "https://login/bob"]
PATHS = ["/", "/admin", "/admin/x", "/public/x", "/index.html"]
PRINCIPAL_PATTERNS = ["cluster.local/ns/app/sa/web", "cluster.local/ns/ops/*", "*",
                      "*/sa/web", "other.td/ns/app/sa/web"]
PATH_PATTERNS = ["/admin", "/admin*", "*.html", "*", "/public/x"]


def values(pool: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)


def fields(spec: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=spec)


sources = fields({
    "principals": values(PRINCIPAL_PATTERNS), "notPrincipals": values(PRINCIPAL_PATTERNS),
    "namespaces": values(["app", "ops"]), "notNamespaces": values(["app", "ops"]),
    "requestPrincipals": values(["https://login/alice", "https://login/*", "*"]),
    "notRequestPrincipals": values(["https://login/bob"]),
    "ipBlocks": values(["10.0.0.0/8", "192.168.1.1"]),
    "notIpBlocks": values(["10.9.0.0/16"]),
})
operations = fields({
    "methods": values(["GET", "POST", "delete"]), "notMethods": values(["POST"]),
    "paths": values(PATH_PATTERNS), "notPaths": values(PATH_PATTERNS),
    "ports": values(["8080", "9090"]), "notPorts": values(["9090"]),
    "hosts": values(["reviews.app.svc", "*.app.svc", "Other.example"]),
})
conditions = st.one_of(
    st.fixed_dictionaries({"key": st.just("request.headers[x-tenant]"),
                           "values": values(["acme", "acme*", "*"])}),
    st.fixed_dictionaries({"key": st.just("source.namespace"), "notValues": values(["ops"])}),
)
rules = fields({
    "from": st.lists(sources.map(lambda s: {"source": s}), min_size=1, max_size=2),
    "to": st.lists(operations.map(lambda o: {"operation": o}), min_size=1, max_size=2),
    "when": st.lists(conditions, min_size=1, max_size=2),
})


@st.composite
def istio_policies(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"action": draw(st.sampled_from(["ALLOW", "DENY", "AUDIT"]))}
    if draw(st.booleans()):
        spec["rules"] = draw(st.lists(rules, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        spec["selector"] = {"matchLabels": {"app": draw(st.sampled_from(["reviews", "ratings"]))}}
    ns = draw(st.sampled_from(["app", "app", "other", "istio-system"]))
    dry = {"istio.io/dry-run": "true"} if draw(st.integers(0, 5)) == 0 else None
    return istio(f"i{index}", spec, namespace=ns, annotations=dry)


gep_sources = st.one_of(
    st.builds(lambda n, ns: {"type": "ServiceAccount", "serviceAccount": {
        "name": n, **({"namespace": ns} if ns else {})}},
        st.sampled_from(["web", "admin", "*"]), st.sampled_from([None, "app", "ops"])),
    st.builds(lambda s: {"type": "SPIFFE", "spiffe": s},
              st.sampled_from(["spiffe://other.td/ns/app/sa/web",
                               "spiffe://cluster.local/ns/app/sa/web"])),
)
gep_rules = fields({
    "sources": st.lists(gep_sources, max_size=2),
    "networkAttributes": st.builds(lambda p: {"ports": p}, st.lists(
        st.sampled_from([8080, 9090]), max_size=2, unique=True)),
})


@st.composite
def gep_policies(draw: st.DrawFn, index: int) -> dict[str, Any]:
    selector = draw(st.sampled_from([{}, {"matchLabels": {"app": "reviews"}},
                                     {"matchLabels": {"app": "ratings"}}]))
    body_rules = draw(st.one_of(st.none(), st.lists(gep_rules, max_size=2)))
    return gep(f"g{index}", body_rules, selector=selector,
               namespace=draw(st.sampled_from(["app", "other"])))


@st.composite
def policy_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    n_istio = draw(st.integers(0, 5))
    n_gep = draw(st.integers(0, 2))
    return ([draw(istio_policies(i)) for i in range(n_istio)]
            + [draw(gep_policies(i)) for i in range(n_gep)])


requests = st.builds(
    lambda p, u, m, path, port, host, tenant, ip: request(
        principal=p, user=u, method=m, path=path, port=port, host=host,
        headers={"x-tenant": tenant} if tenant else {}, ip=ip),
    st.sampled_from(PRINCIPALS), st.sampled_from(USERS),
    st.sampled_from(["GET", "POST", "DELETE"]), st.sampled_from(PATHS),
    st.sampled_from([8080, 9090]), st.sampled_from(["reviews.app.svc", "other.example"]),
    st.sampled_from([None, "acme", "acme-2", "zeta"]),
    st.sampled_from(["10.1.2.3", "10.9.1.1", "192.168.1.1"]),
)


# -- the reference -----------------------------------------------------------------------


def str_match(pattern: str, value: str | None, fold: bool = False) -> bool:
    if value is None:
        return False
    if fold:
        pattern, value = pattern.lower(), value.lower()
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def ip_match(block: str, value: str | None) -> bool:
    return value is not None and ipaddress.ip_address(value) in ipaddress.ip_network(block)


def field_ok(pos: Any, neg: Any, value: str | None, match: Any = str_match) -> bool:
    if pos is not None and not any(match(p, value) for p in pos):
        return False
    return not (neg is not None and any(match(p, value) for p in neg))


def ref_rule(rule: IstioRule, req: AuthzRequest) -> bool:
    peer, user = req.caller.peer, req.caller.user
    principal = peer.principal if peer else None
    namespace = peer.namespace if peer else None
    rp = user.principal if user else None
    if rule.from_ and not any(
        field_ok(s.principals, s.not_principals, principal)
        and field_ok(s.namespaces, s.not_namespaces, namespace)
        and field_ok(s.request_principals, s.not_request_principals, rp)
        and field_ok(s.ip_blocks, s.not_ip_blocks, req.caller.source_ip, ip_match)
        and field_ok(s.remote_ip_blocks, s.not_remote_ip_blocks, req.caller.remote_ip, ip_match)
        for s in rule.from_
    ):
        return False
    port = str(req.port)
    if rule.to and not any(
        field_ok(o.hosts, o.not_hosts, req.host, lambda p, v: str_match(p, v, True))
        and field_ok(o.ports, o.not_ports, port)
        and field_ok(o.methods and [m.upper() for m in o.methods],
                     o.not_methods and [m.upper() for m in o.not_methods], req.method)
        and field_ok(o.paths, o.not_paths, req.path)
        for o in rule.to
    ):
        return False
    for c in rule.when:
        if c.key.startswith("request.headers["):
            value = req.headers.get(c.key[16:-1].lower())
        else:
            value = namespace
        if not field_ok(c.values, c.not_values, value):
            return False
    return True


def ref_gep_rule(rule: Any, req: AuthzRequest, workload: Workload) -> bool:
    peer = req.caller.peer
    if rule.sources is not None:
        def src_ok(s: Any) -> bool:
            if peer is None:
                return False
            if s.type == "SPIFFE":
                return bool(peer.spiffe_id == s.spiffe)
            return bool(peer.trust_domain == workload.trust_domain
                        and peer.namespace == s.namespace
                        and peer.service_account is not None
                        and s.name in ("*", peer.service_account))
        if not any(src_ok(s) for s in rule.sources):
            return False
    return rule.ports is None or req.port in rule.ports


def ref_decide(objs: list[Any], workload: Workload, req: AuthzRequest) -> bool:
    allows: list[bool] = []
    for p in objs:
        if isinstance(p, IstioAuthorizationPolicy):
            if p.meta.namespace not in (workload.namespace, workload.root_namespace):
                continue
            if p.selector is not None and any(
                    workload.labels.get(k) != v for k, v in p.selector.match_labels):
                continue
            if p.dry_run:
                continue
            matched = any(ref_rule(r, req) for r in p.rules)
            if p.action == "DENY" and matched:
                return False
            if p.action == "ALLOW":
                allows.append(matched)
        elif isinstance(p, GatewayAuthorizationPolicy):
            if p.meta.namespace != workload.namespace or p.pod_selector is None:
                continue
            if any(workload.labels.get(k) != v for k, v in p.pod_selector.match_labels):
                continue
            allows.append(any(ref_gep_rule(r, req, workload) for r in p.rules))
    return not allows or any(allows)


@settings(max_examples=200, deadline=None)
@given(manifests=policy_sets(), reqs=st.lists(requests, min_size=1, max_size=8))
def test_engine_random_policies_agree_with_reference(
    manifests: list[dict[str, Any]], reqs: list[AuthzRequest]
) -> None:
    """For random policies and requests, the engine allows exactly what the reference allows."""
    objs = []
    for m in manifests:
        obj, _ = parse_object(m)
        assert obj is not None
        assert not getattr(obj, "unsupported", ()), obj
        objs.append(obj)
    policy_set = compile_policies(Snapshot.build(objs, version=1), WORKLOAD)
    for req in reqs:
        assert policy_set.decide(req).allowed == ref_decide(objs, WORKLOAD, req), req


EXACT = [p for p in PRINCIPALS if p is not None]
exact_sources = st.one_of(
    st.fixed_dictionaries({"principals": values(EXACT)}, optional={
        "notPrincipals": values(EXACT)}),
    st.fixed_dictionaries({"namespaces": values(["app", "ops"])}, optional={
        "principals": values(["*", "*/sa/web"])}),
)
exact_rules = st.fixed_dictionaries({
    "from": st.lists(exact_sources.map(lambda s: {"source": s}), min_size=1, max_size=2),
}, optional={
    "to": st.lists(operations.map(lambda o: {"operation": o}), min_size=1, max_size=1),
})


@st.composite
def exact_policies(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [istio(f"e{i}", {"action": draw(st.sampled_from(["ALLOW", "DENY"])),
                            "rules": draw(st.lists(exact_rules, min_size=1, max_size=3))})
            for i in range(draw(st.integers(1, 6)))]


@settings(max_examples=200, deadline=None)
@given(manifests=exact_policies(), reqs=st.lists(requests, min_size=1, max_size=8))
def test_engine_principal_indexed_rules_agree_with_reference(
    manifests: list[dict[str, Any]], reqs: list[AuthzRequest]
) -> None:
    """Rules limited to exact principals or namespaces (indexed) decide as the reference does."""
    objs = [parse_object(m)[0] for m in manifests]
    policy_set = compile_policies(Snapshot.build([o for o in objs if o], version=1), WORKLOAD)
    assert policy_set.allow or policy_set.deny
    for req in reqs:
        assert policy_set.decide(req).allowed == ref_decide(objs, WORKLOAD, req), req


path_rules = st.fixed_dictionaries({"to": st.lists(st.fixed_dictionaries(
    {"paths": values(["/admin", "/admin*", "/admin/x", "/public*", "/", "/index.html"])},
    optional={"methods": values(["GET", "POST"])}).map(lambda o: {"operation": o}),
    min_size=1, max_size=2)}, optional={"from": st.lists(
        sources.map(lambda s: {"source": s}), min_size=1, max_size=1)})


@st.composite
def path_policies(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [istio(f"x{i}", {"action": draw(st.sampled_from(["ALLOW", "DENY"])),
                            "rules": draw(st.lists(path_rules, min_size=1, max_size=3))})
            for i in range(draw(st.integers(1, 6)))]


@settings(max_examples=200, deadline=None)
@given(manifests=path_policies(), reqs=st.lists(requests, min_size=1, max_size=8))
def test_engine_path_indexed_rules_agree_with_reference(
    manifests: list[dict[str, Any]], reqs: list[AuthzRequest]
) -> None:
    """Rules limited to exact paths or prefixes (indexed by path) decide as the reference does."""
    objs = [parse_object(m)[0] for m in manifests]
    policy_set = compile_policies(Snapshot.build([o for o in objs if o], version=1), WORKLOAD)
    for req in reqs:
        assert policy_set.decide(req).allowed == ref_decide(objs, WORKLOAD, req), req


header_rules = st.fixed_dictionaries({"when": st.lists(st.fixed_dictionaries({
    "key": st.sampled_from(["request.headers[x-tenant]", "request.headers[X-Tenant]"]),
    "values": values(["acme", "acme-2", "zeta", "acme*"])}), min_size=1, max_size=2)},
    optional={"to": st.lists(operations.map(lambda o: {"operation": o}), min_size=1,
                             max_size=1)})


@st.composite
def header_policies(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [istio(f"h{i}", {"action": draw(st.sampled_from(["ALLOW", "DENY"])),
                            "rules": draw(st.lists(header_rules, min_size=1, max_size=3))})
            for i in range(draw(st.integers(1, 6)))]


@settings(max_examples=150, deadline=None)
@given(manifests=header_policies(), reqs=st.lists(requests, min_size=1, max_size=8))
def test_engine_header_indexed_rules_agree_with_reference(
    manifests: list[dict[str, Any]], reqs: list[AuthzRequest]
) -> None:
    """Rules needing an exact header value (indexed by value) decide as the reference does."""
    objs = [parse_object(m)[0] for m in manifests]
    policy_set = compile_policies(Snapshot.build([o for o in objs if o], version=1), WORKLOAD)
    for req in reqs:
        assert policy_set.decide(req).allowed == ref_decide(objs, WORKLOAD, req), req
