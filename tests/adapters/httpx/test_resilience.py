"""Retries, timeouts and the retry budget through MeshTransport, against real failing backends."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from meshclient_httpx import RequestRecord
from tests.adapters.httpx.conftest import (
    HOST,
    Backend,
    Client,
    Reply,
    Seen,
    free_address,
    gateway,
    mesh_of,
    route,
    service,
)
from tests.routing import helpers as h

Make = Callable[..., Backend]
MakeClient = Callable[..., Client]


def fail_first(n: int, status: int = 503) -> Callable[[Seen], Reply]:
    """Answer ``status`` to the first ``n`` requests, then 200."""
    count = [0]
    lock = threading.Lock()

    def behave(seen: Seen) -> Reply:
        with lock:
            count[0] += 1
            k = count[0]
        return Reply(status=status, body=b"fail") if k <= n else Reply(body=b"ok")

    return behave


def test_retry_backend_failing_twice_succeeds_on_third_try(backends: Make,
                                                           client: MakeClient) -> None:
    """attempts: 2 with codes [503] gets through a backend that fails twice (GEP-1731)."""
    b = backends("b")
    b.behave = fail_first(2)
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 2, "codes": [503], "backoff": "1ms"})))
    records: list[RequestRecord] = []
    r = client(mesh, on_request=records.append).get(f"http://{HOST}/")
    assert (r.status_code, r.text) == (200, "ok")
    assert b.hits == 3
    assert records[0].attempts == 3


def test_retry_exhausted_returns_last_upstream_status(backends: Make,
                                                      client: MakeClient) -> None:
    """When every retry fails the caller gets the last upstream response (SPEC-NOTES §5.3)."""
    b = backends("b")
    b.behave = fail_first(10, status=502)
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 1, "codes": [502], "backoff": "1ms"})))
    r = client(mesh).get(f"http://{HOST}/")
    assert (r.status_code, r.text) == (502, "fail")
    assert b.hits == 2


def test_retry_status_not_in_codes_is_final(backends: Make, client: MakeClient) -> None:
    """A status outside ``codes`` is returned at once."""
    b = backends("b")
    b.behave = fail_first(10, status=500)
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 3, "codes": [503], "backoff": "1ms"})))
    assert client(mesh).get(f"http://{HOST}/").status_code == 500
    assert b.hits == 1


def test_retry_post_with_bytes_body_is_replayed(backends: Make, client: MakeClient) -> None:
    """A retried request with an in-memory body arrives whole every time (ECOSYSTEM §1.3)."""
    b = backends("b")
    b.behave = fail_first(1)
    mesh = mesh_of(gateway(), service("b", [b]),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 2, "codes": [503], "backoff": "1ms"})))
    r = client(mesh).request("PUT", f"http://{HOST}/", content=b"payload")
    assert r.status_code == 200
    assert [s.body for s in b.requests] == [b"payload", b"payload"]


def test_retry_connect_failure_moves_to_another_endpoint(backends: Make,
                                                         client: MakeClient) -> None:
    """A refused connection is retried on another endpoint, even for POST (never sent)."""
    live = backends("live")
    dead = backends("dead")
    dead.kill()
    mesh = mesh_of(gateway(), service("b", [dead, live]),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 2, "backoff": "1ms"})))
    c = client(mesh)
    for _ in range(6):
        r = c.request("POST", f"http://{HOST}/", content=b"x")
        assert r.text == "live"


def test_retry_backend_killed_mid_run_fails_no_idempotent_request(
    backends: Make, client: MakeClient
) -> None:
    """Killing one of three endpoints mid-run fails no GET: retries route around it."""
    servers = [backends(f"s{i}") for i in range(3)]
    mesh = mesh_of(gateway(), service("b", servers),
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 2, "backoff": "1ms"})))
    c = client(mesh)
    statuses = []
    for i in range(60):
        if i == 20:
            servers[1].kill()
        statuses.append(c.get(f"http://{HOST}/").status_code)
    assert statuses == [200] * 60
    assert servers[0].hits + servers[2].hits >= 40
    assert servers[1].hits < 20


def test_retry_without_policy_raises_connect_error(client: MakeClient) -> None:
    """With no retry stanza a refused connection reaches the caller as httpx.ConnectError."""
    host, port = free_address()
    mesh = mesh_of(gateway(), h.service("b"), {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "b-0", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "b"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host], "targetRef": {"kind": "Pod", "name": "b-0"}}],
        "ports": [{"name": "http", "port": port}],
    }, route(h.rule(backends=[h.backend("b")])))
    c = client(mesh)
    with pytest.raises(httpx.ConnectError) as info:
        c.get(f"http://{HOST}/")
    assert info.value.request is not None


def test_timeout_request_answers_504(backends: Make, client: MakeClient) -> None:
    """timeouts.request bounds the whole request and answers 504 (GEP-1742)."""
    slow = backends("slow")
    slow.behave = lambda seen: Reply(delay=1.0)
    mesh = mesh_of(gateway(), service("slow", [slow]),
                   route(h.rule(backends=[h.backend("slow")], timeouts={"request": "150ms"})))
    t0 = time.monotonic()
    r = client(mesh).get(f"http://{HOST}/")
    elapsed = time.monotonic() - t0
    assert r.status_code == 504
    assert elapsed < 0.8


def test_timeout_backend_request_is_retried_then_504(backends: Make,
                                                     client: MakeClient) -> None:
    """A try that hits backendRequest is retried even with empty codes, then 504 (§5.3)."""
    slow = backends("slow")
    slow.behave = lambda seen: Reply(delay=0.6)
    mesh = mesh_of(gateway(), service("slow", [slow]),
                   route(h.rule(backends=[h.backend("slow")],
                                timeouts={"request": "2s", "backendRequest": "100ms"},
                                retry={"attempts": 1, "backoff": "1ms"})))
    t0 = time.monotonic()
    r = client(mesh).get(f"http://{HOST}/")
    assert r.status_code == 504
    assert slow.hits == 2
    assert time.monotonic() - t0 < 1.0


def test_budget_holds_under_failure_storm(backends: Make, client: MakeClient) -> None:
    """Under total failure, retries stay within the GEP-3388 budget and 503s say why."""
    b = backends("b")
    b.behave = lambda seen: Reply(status=503, body=b"down")
    policy = {
        "apiVersion": "gateway.networking.x-k8s.io/v1alpha1", "kind": "XBackendTrafficPolicy",
        "metadata": {"name": "budget", "namespace": "default"},
        "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "b"}],
                 "retryConstraint": {"budget": {"percent": 20, "interval": "10s"},
                                     "minRetryRate": {"count": 2, "interval": "10s"}}},
    }
    mesh = mesh_of(gateway(), service("b", [b]), policy,
                   route(h.rule(backends=[h.backend("b")],
                                retry={"attempts": 3, "codes": [503], "backoff": "1ms"})))
    assert mesh.resolve("GET", f"http://{HOST}/").backends[0].retry_constraint is not None
    records: list[RequestRecord] = []
    c = client(mesh, on_request=records.append, rand=random.Random(1).random)
    n = 60
    for _ in range(n):
        c.get(f"http://{HOST}/")
    retries = b.hits - n
    # 20 % of requests (retries included) plus the minimum rate of 2: far below 3 × 60.
    assert retries <= 0.25 * b.hits + 2, (b.hits, retries)
    assert any(r.outcome == "budget" and r.status == 503 for r in records)
