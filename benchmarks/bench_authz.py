"""Authorization benchmarks: one decision with 100 policies in scope; identity from a token.

Run from a checkout with the dev install:
``PYTHONPATH=.:adapters python benchmarks/bench_authz.py [--requests 20000]``.
Numbers go to ``benchmarks/README.md`` ("Authorization").

Policies: 100 Istio AuthorizationPolicies apply to the workload (90 ALLOW, each naming one
caller service account with two path prefixes and a method list; 10 DENY on admin paths and
a header condition): ``principals``, the engine looks rules up by the caller's principal.
``namespaces``: 100 ALLOW policies naming caller namespaces (looked up by namespace).
``paths``: 100 ALLOW policies on path prefixes and methods only (looked up by path prefix).
``headers``: 100 ALLOW policies on an exact header value (looked up by value).
``unindexed``: 100 ALLOW policies on path suffixes, which no index covers, so every rule is
tried (the worst case). Medians of per-call cost over batches of 100 calls.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from meshclient.authz import (
    Authorizer,
    AuthzRequest,
    Caller,
    Issuer,
    StaticKeys,
    Workload,
    compile_policies,
    identity_from_spiffe_id,
)
from meshclient.model import parse_object
from meshclient.store import Snapshot, Store

WORKLOAD = Workload(namespace="shop", labels={"app": "orders"}, service_account="orders")
ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "orders.shop.svc"


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def indexed_policies() -> list[dict[str, Any]]:
    out = [policy(f"allow-{i}", {"selector": {"matchLabels": {"app": "orders"}}, "rules": [{
        "from": [{"source": {"principals": [f"cluster.local/ns/team{i % 10}/sa/client{i}"]}}],
        "to": [{"operation": {"methods": ["GET", "POST"],
                              "paths": [f"/api/v1/items/{i}/*", f"/api/v2/items/{i}/*"]}}],
    }]}) for i in range(90)]
    out += [policy(f"deny-{i}", {"action": "DENY", "rules": [{
        "to": [{"operation": {"paths": [f"/admin/{i}/*"]}}],
        "when": [{"key": "request.headers[x-debug]", "values": [f"{i}"]}],
    }]}) for i in range(10)]
    return out


def scan_policies() -> list[dict[str, Any]]:
    return [policy(f"allow-{i}", {"rules": [{
        "from": [{"source": {"namespaces": [f"team{i}"]}}],
        "to": [{"operation": {"methods": ["GET"], "paths": [f"/api/v1/items/{i}/*"]}}],
    }]}) for i in range(100)]


def path_policies() -> list[dict[str, Any]]:
    return [policy(f"allow-{i}", {"rules": [{
        "to": [{"operation": {"methods": ["GET"], "paths": [f"/api/v1/items/{i}/*"]}}],
    }]}) for i in range(100)]


def header_policies() -> list[dict[str, Any]]:
    return [policy(f"allow-{i}", {"rules": [{
        "when": [{"key": "request.headers[x-tenant]", "values": [f"tenant{i}"]}],
    }]}) for i in range(100)]


def unindexed_policies() -> list[dict[str, Any]]:
    return [policy(f"allow-{i}", {"rules": [{
        "to": [{"operation": {"paths": [f"*/{i}/detail"]}}],
    }]}) for i in range(100)]


def compiled(manifests: list[dict[str, Any]]) -> Any:
    objs = [parse_object(m)[0] for m in manifests]
    return compile_policies(Snapshot.build([o for o in objs if o], version=1), WORKLOAD)


def median_us(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    per_batch: list[float] = []
    batch = 100
    gc.collect()
    gc.disable()
    try:
        for start in range(0, n, batch):
            t0 = time.perf_counter()
            for i in range(start, start + batch):
                fn(i)
            per_batch.append((time.perf_counter() - t0) / batch * 1e6)
    finally:
        gc.enable()
    return statistics.median(per_batch), min(per_batch)


def requests_for(kind: str, rng: random.Random, count: int) -> list[AuthzRequest]:
    reqs = []
    for _ in range(count):
        i = rng.randrange(90 if kind == "principals" else 100)
        sa = f"cluster.local/ns/team{i % 10 if kind == 'principals' else i}/sa/client{i}"
        peer = identity_from_spiffe_id(f"spiffe://{sa}")
        reqs.append(AuthzRequest(
            method="GET", path=f"/api/v1/items/{i}/detail", host="orders.shop.svc", port=8080,
            headers={"x-request-id": "abc", "x-tenant": f"tenant{i}"},
            caller=Caller(peer=peer, source_ip="10.0.0.1")))
    return reqs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(7)
    n = args.requests

    for kind, manifests in (("principals", indexed_policies()), ("namespaces", scan_policies()),
                            ("paths", path_policies()), ("headers", header_policies()),
                            ("unindexed", unindexed_policies())):
        t0 = time.perf_counter()
        ps = compiled(manifests)
        compile_ms = (time.perf_counter() - t0) * 1e3
        reqs = requests_for(kind, rng, 1000)
        assert all(ps.decide(r).allowed for r in reqs), kind
        med, low = median_us(lambda i, ps=ps, reqs=reqs: ps.decide(reqs[i % 1000]), n)
        print(f"decide, 100 policies ({kind}): median {med:.2f} µs (min {low:.2f}); "
              f"compile {compile_ms:.1f} ms")

    # Identity from a cached token: Authorizer.check end to end (path normalisation, headers,
    # token cache hit, policy decision, no audit logging).
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid="k1", alg="RS256", use="sig")
    store = Store()
    store.replace([o for o in (parse_object(m)[0] for m in indexed_policies()) if o])
    authz = Authorizer(
        store, WORKLOAD,
        issuers=[Issuer(issuer=ISSUER, audiences=[AUDIENCE], kind="service-account")],
        keys=StaticKeys.from_jwks({ISSUER: {"keys": [jwk]}}),
    )
    now = time.time()
    tokens = []
    for i in range(90):
        claims = {"iss": ISSUER, "aud": [AUDIENCE], "exp": int(now + 3600), "iat": int(now),
                  "sub": f"system:serviceaccount:team{i % 10}:client{i}",
                  "kubernetes.io": {"namespace": f"team{i % 10}",
                                    "serviceaccount": {"name": f"client{i}"}}}
        tokens.append((i, jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})))
    calls = []
    for i, tok in tokens:
        calls.append({"method": "GET", "path": f"/api/v1/items/{i}/detail".encode(),
                      "headers": [(b"host", b"orders.shop.svc"),
                                  (b"authorization", f"Bearer {tok}".encode()),
                                  (b"user-agent", b"bench"), (b"accept", b"*/*")],
                      "port": 8080, "source_ip": "10.0.0.1", "now": now})
    t0 = time.perf_counter()
    for c in calls:
        assert authz.check(**c).allowed  # first sight: full RS256 verification
    first_us = (time.perf_counter() - t0) / len(calls) * 1e6
    med, low = median_us(lambda i: authz.check(**calls[i % 90]), n)
    print(f"check with a cached service-account token: median {med:.2f} µs (min {low:.2f}); "
          f"first validation {first_us:.0f} µs")

    spiffe_calls = [dict(c, headers=c["headers"][:1] + c["headers"][2:],
                         peer_spiffe_id=f"spiffe://cluster.local/ns/team{i % 10}/sa/client{i}")
                    for i, c in enumerate(calls)]
    med, low = median_us(lambda i: authz.check(**spiffe_calls[i % 90]), n)
    print(f"check with an mTLS SPIFFE ID: median {med:.2f} µs (min {low:.2f})")


if __name__ == "__main__":
    main()
