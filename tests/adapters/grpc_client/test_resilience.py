"""Mesh channel resilience: retries on another endpoint, killed endpoints, deadlines,
annotation-driven policies, endpoint channels retired and closed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from meshclient.balancing import BalancerConfig, OutlierConfig
from tests.adapters.grpc_client.conftest import (
    SERVICE,
    Client,
    grpc_route,
    mesh_of,
    rule,
    service,
    update,
)

Make = Callable[..., Client]
RETRY_UNAVAILABLE = {"retry.linkerd.io/grpc": "unavailable", "retry.linkerd.io/limit": "2"}


class TestRetries:
    def test_failing_endpoint_is_retried_on_another(self, client: Make, servers: Any) -> None:
        """With ``retry.linkerd.io/grpc: unavailable`` a call failing UNAVAILABLE on one pod
        is retried on another, so every call succeeds (SPEC-NOTES §6 reading)."""
        bad, good = servers("bad"), servers("good")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, good], annotations=RETRY_UNAVAILABLE))
        c = client(m)
        assert [c.unary() for _ in range(20)] == [b"good:hi"] * 20
        assert bad.hits >= 1

    def test_server_streaming_is_retried_before_its_first_message(
            self, client: Make, servers: Any) -> None:
        """A unary-stream call that fails before any message is retried elsewhere (issue 7:
        streaming calls before the first response message)."""
        bad, good = servers("bad"), servers("good")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, good], annotations=RETRY_UNAVAILABLE))
        c = client(m)
        for _ in range(10):
            assert c.server_stream() == [b"good:0", b"good:1", b"good:2"]
        assert bad.hits >= 1

    def test_sync_future_is_retried_on_another_endpoint(self, servers: Any) -> None:
        """``future()`` chains its retries through callbacks and resolves to the good pod's
        answer (grpc.Future contract)."""
        from meshclient_grpc import mesh_channel

        bad, good = servers("bad"), servers("good")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, good], annotations=RETRY_UNAVAILABLE))
        with mesh_channel(m, "grpc://pay.shop:9000") as ch:
            mc = ch.unary_unary(f"/{SERVICE}/Unary")
            futures = [mc.future(b"f", timeout=5) for _ in range(10)]
            assert [f.result(timeout=10) for f in futures] == [b"good:f"] * 10
            assert all(f.code() is grpc.StatusCode.OK for f in futures)

    def test_status_not_retried_without_a_policy(self, client: Make, servers: Any) -> None:
        """Without annotations a server's UNAVAILABLE is final: the call may have been acted
        on and gRPC calls are POSTs (resilience: non-idempotent)."""
        bad, good = servers("bad"), servers("good")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, good]))
        c = client(m)
        codes = set()
        for _ in range(20):
            try:
                c.unary()
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.add(exc.code())
        assert grpc.StatusCode.UNAVAILABLE in codes

    def test_annotations_off_ignores_retry_annotations(self, client: Make,
                                                       servers: Any) -> None:
        """``annotations=False`` turns Linkerd-style annotations off (operator switch)."""
        bad = servers("bad")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, servers("good")], annotations=RETRY_UNAVAILABLE))
        c = client(m, annotations=False)
        assert c.channel.describe(f"/{SERVICE}/Unary")["retry"]["source"] == (
            "connect-failure default")
        failures = 0
        for _ in range(20):
            try:
                c.unary()
            except grpc.RpcError:
                failures += 1
        assert failures >= 1

    def test_route_annotations_replace_service_annotations(self, client: Make,
                                                           servers: Any) -> None:
        """Retry annotations on the GRPCRoute replace the Service's as a whole, and the
        policy names its source (SPEC-NOTES §6 reading)."""
        a = servers("a")
        m = mesh_of(service("pay", [], annotations={"retry.linkerd.io/grpc": "internal"}),
                    service("pay-v1", [a]),
                    grpc_route(rule(("pay-v1", 9000)), annotations={
                        "retry.linkerd.io/grpc": "unavailable,deadline-exceeded",
                        "retry.linkerd.io/limit": "3"}))
        c = client(m)
        got = c.channel.describe(f"/{SERVICE}/Unary")["retry"]
        assert got == {"attempts": 3, "codes": [503, 504],
                       "grpc_codes": ["DEADLINE_EXCEEDED", "UNAVAILABLE"], "backoff": 0.025,
                       "source": "GRPCRoute shop/pay annotations"}

    def test_retry_budget_exhausted_answers_unavailable(self, servers: Any) -> None:
        """When the backend's retry budget is spent the call fails UNAVAILABLE with the
        budget named (GEP-3388: exhausted budget → 503)."""
        from meshclient_grpc import mesh_channel

        bad, bad2 = servers("bad"), servers("bad2")
        bad.fail = bad2.fail = grpc.StatusCode.UNAVAILABLE
        budget = {"apiVersion": "gateway.networking.x-k8s.io/v1alpha1",
                  "kind": "XBackendTrafficPolicy",
                  "metadata": {"name": "b", "namespace": "shop"},
                  "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "pay"}],
                           "retryConstraint": {"budget": {"percent": 0},
                                               "minRetryRate": {"count": 1,
                                                                "interval": "1h"}}}}
        m = mesh_of(service("pay", [bad, bad2], annotations=RETRY_UNAVAILABLE),
                    budget)
        m.balancer(rand=lambda: 0.5, config=BalancerConfig(outlier=OutlierConfig.disabled()))
        with mesh_channel(m, "grpc://pay.shop:9000") as ch:
            details = []
            for _ in range(4):
                with pytest.raises(grpc.RpcError) as info:
                    ch.unary_unary(f"/{SERVICE}/Unary")(b"x", timeout=5)
                details.append(info.value.details() or "")
            assert any("budget" in d for d in details), details


class TestKilledEndpoints:
    def test_killed_endpoint_calls_keep_succeeding(self, client: Make, servers: Any) -> None:
        """After a pod dies, calls that pick it fail to connect and go to another pod, for
        every call shape that can be retried (UNAVAILABLE on connect failure, issue 7)."""
        a, b = servers("a"), servers("b")
        m = mesh_of(service("pay", [a, b]))
        c = client(m)
        assert {c.unary().split(b":")[0] for _ in range(10)} == {b"a", b"b"}
        a.kill()
        assert [c.unary() for _ in range(20)] == [b"b:hi"] * 20
        assert c.server_stream() == [b"b:0", b"b:1", b"b:2"]

    def test_endpoint_leaving_slices_closes_its_channel(self, client: Make,
                                                        servers: Any) -> None:
        """When an endpoint leaves the EndpointSlices its channel is closed after the grace
        period (issue 7: endpoint channel lifecycle)."""
        a, b = servers("a"), servers("b")
        m = mesh_of(service("pay", [a, b]))
        c = client(m, retire_grace=0.05)
        for _ in range(10):
            c.unary()
        assert c.statistics().open == 2
        update(m, service("pay", [b]))
        deadline = time.monotonic() + 5
        while c.statistics().closed < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        s = c.statistics()
        assert s.closed == 1
        assert s.targets == (f"ipv4:{b.host}:{b.port}",)
        assert [c.unary() for _ in range(5)] == [b"b:hi"] * 5

    def test_close_closes_every_endpoint_channel(self, client: Make, servers: Any) -> None:
        """``close()`` closes every endpoint channel; the channel takes no calls after."""
        a, b = servers("a"), servers("b")
        m = mesh_of(service("pay", [a, b]))
        c = client(m)
        for _ in range(10):
            c.unary()
        c.close()
        s = c.statistics()
        assert (s.open, s.closed) == (0, 2)
        with pytest.raises(ValueError, match="closed"):
            c.unary()


class TestDeadlines:
    def test_caller_timeout_gives_deadline_exceeded(self, client: Make, servers: Any) -> None:
        """A call slower than its ``timeout`` fails DEADLINE_EXCEEDED at the deadline, not
        after the handler (grpc deadlines)."""
        slow = servers("slow")
        slow.delay = 1.0
        c = client(mesh_of(service("pay", [slow])))
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            c.unary(timeout=0.2)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 0.9

    def test_request_timeout_annotation_bounds_the_call(self, client: Make,
                                                        servers: Any) -> None:
        """``timeout.linkerd.io/request`` gives calls without their own timeout a deadline
        (SPEC-NOTES §6 reading)."""
        slow = servers("slow")
        slow.delay = 1.0
        c = client(mesh_of(service("pay", [slow],
                                   annotations={"timeout.linkerd.io/request": "200ms"})))
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            c.unary(timeout=None)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 0.9

    def test_per_try_timeout_is_retried_on_another_endpoint(self, client: Make,
                                                            servers: Any) -> None:
        """``retry.linkerd.io/timeout`` ends a slow try, and the call is retried on another
        pod within its deadline (Linkerd: retryable per-try timeouts)."""
        slow, fast = servers("slow"), servers("fast")
        slow.delay = 1.0
        m = mesh_of(service("pay", [slow, fast], annotations={
            "retry.linkerd.io/grpc": "deadline-exceeded", "retry.linkerd.io/limit": "2",
            "retry.linkerd.io/timeout": "150ms"}))
        c = client(m)
        assert [c.unary(timeout=3.0) for _ in range(6)] == [b"fast:hi"] * 6


class TestReporting:
    def test_every_pick_is_reported_once(self, client: Make, servers: Any) -> None:
        """After calls of every shape, answered, failed and retried, nothing is left in
        flight in the balancer (each pick reported exactly once, balancing contract)."""
        from meshclient.balancing import Balancer

        bad, good = servers("bad"), servers("good")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, good], annotations=RETRY_UNAVAILABLE))
        balancer: Balancer = m.balancer(rand=lambda: 0.5)
        c = client(m)
        for _ in range(4):
            c.unary()
            c.server_stream()
            with contextlib.suppress(grpc.RpcError):
                c.client_stream()
            with contextlib.suppress(grpc.RpcError):
                c.bidi()
        deadline = time.monotonic() + 5
        while balancer.statistics().in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert balancer.statistics().in_flight == 0

    def test_failing_endpoint_is_ejected(self, client: Make, servers: Any) -> None:
        """Outcomes reach outlier detection: a pod that keeps failing is ejected and calls
        stop going to it (balancing: consecutive gateway errors)."""
        bad, good = servers("bad"), servers("good")
        bad.fail = grpc.StatusCode.UNAVAILABLE
        m = mesh_of(service("pay", [bad, good], annotations=RETRY_UNAVAILABLE))
        c = client(m)
        for _ in range(20):
            c.unary()
        assert m.balancer(rand=lambda: 0.5).statistics().ejections >= 1
        before = bad.hits
        for _ in range(10):
            c.unary()
        assert bad.hits == before

    def test_concurrent_threads_share_one_channel(self, servers: Any) -> None:
        """Eight threads calling one sync mesh channel (registered methods, made under the
        pool's lock) all succeed and leave nothing in flight (ECOSYSTEM.md §2.1)."""
        from concurrent.futures import ThreadPoolExecutor

        from meshclient_grpc import mesh_channel

        a, b = servers("a"), servers("b")
        m = mesh_of(service("pay", [a, b]))
        with mesh_channel(m, "grpc://pay.shop:9000") as ch, ThreadPoolExecutor(8) as pool:
            def work(_: int) -> list[bytes]:
                mc = ch.unary_unary(f"/{SERVICE}/Unary", _registered_method=True)
                return [mc(b"t", timeout=5).split(b":")[0] for _ in range(25)]

            got = [x for batch in pool.map(work, range(8)) for x in batch]
        assert len(got) == 200 and set(got) == {b"a", b"b"}
        assert m.balancer(rand=lambda: 0.5).statistics().in_flight == 0

    def test_cancelled_calls_leave_nothing_in_flight(self, servers: Any) -> None:
        """Cancelling a sync future and a started server stream releases their picks (the
        balancer's in-flight counts go back to zero)."""
        from meshclient_grpc import mesh_channel

        slow = servers("slow")
        m = mesh_of(service("pay", [slow]))
        balancer = m.balancer(rand=lambda: 0.5)
        with mesh_channel(m, "grpc://pay.shop:9000") as ch:
            stream = ch.unary_stream(f"/{SERVICE}/ServerStream")(b"s", timeout=5)
            assert next(stream) == b"slow:0"
            stream.cancel()
            slow.delay = 0.5
            fut = ch.unary_unary(f"/{SERVICE}/Unary").future(b"f", timeout=5)
            fut.cancel()
            assert fut.cancelled() or fut.done()
            deadline = time.monotonic() + 5
            while balancer.statistics().in_flight and time.monotonic() < deadline:
                time.sleep(0.02)
            assert balancer.statistics().in_flight == 0
