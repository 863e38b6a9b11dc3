"""Builders for policy manifests and requests used across the authz tests."""

from __future__ import annotations

from typing import Any

from meshclient.authz import (
    AuthzRequest,
    Caller,
    PolicySet,
    RequestPrincipal,
    Workload,
    compile_policies,
    identity_from_spiffe_id,
)
from meshclient.model import parse_object
from meshclient.store import Snapshot

Obj = dict[str, Any]
LABELS: dict[str, str] = {"app": "reviews", "version": "v1"}
WORKLOAD = Workload(namespace="app", labels=LABELS,
                    service_account="reviews")


def istio(name: str, spec: Obj, *, namespace: str = "app",
          annotations: dict[str, str] | None = None, version: str = "v1") -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": f"security.istio.io/{version}", "kind": "AuthorizationPolicy",
            "metadata": meta, "spec": spec}


def gep(name: str, rules: list[Obj] | None, *, namespace: str = "app",
        selector: Obj | None = None, targets: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {
        "targetRefs": targets if targets is not None else [
            {"group": "", "kind": "Pod", "selector": selector if selector is not None else {}}],
        "action": "ALLOW", "enforcementLevel": "Network", **spec,
    }
    if rules is not None:
        body["rules"] = rules
    return {"apiVersion": "gateway.networking.x-k8s.io/v1alpha1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def snapshot(*manifests: Obj) -> Snapshot:
    objs = []
    for m in manifests:
        obj, _errors = parse_object(m)
        assert obj is not None, m
        objs.append(obj)
    return Snapshot.build(objs, version=1)


def compiled(*manifests: Obj, workload: Workload = WORKLOAD) -> PolicySet:
    return compile_policies(snapshot(*manifests), workload)


def request(*, principal: str | None = None, user: str | None = None, method: str = "GET",
            path: str = "/", host: str = "reviews.app.svc", port: int | None = 8080,
            headers: dict[str, str] | None = None, ip: str | None = "10.0.0.1",
            remote_ip: str | None = None, claims: dict[str, Any] | None = None,
            audiences: tuple[str, ...] = ()) -> AuthzRequest:
    peer = identity_from_spiffe_id(f"spiffe://{principal}") if principal else None
    rp = None
    if user is not None:
        iss, _, sub = user.rpartition("/")
        rp = RequestPrincipal(issuer=iss, subject=sub, claims=claims or {}, audiences=audiences)
    caller = Caller(peer=peer, user=rp, source_ip=ip, remote_ip=remote_ip or ip)
    return AuthzRequest(method=method, path=path, host=host, port=port, headers=headers or {},
                        caller=caller)
