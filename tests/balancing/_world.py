"""Small builders for Services, EndpointSlices, backends and outcomes used by these tests."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import attrs

from meshclient.balancing import Balancer, BalancerConfig, NoEndpoints, Overflow, Pick
from meshclient.model import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Meta,
    Service,
    ServicePort,
)

NS = "default"


@attrs.frozen
class Backend:
    """Satisfies ``BackendLike`` the way the routing core's backend values do."""

    namespace: str
    name: str
    port: int | None
    weight: int = 1


@attrs.frozen
class Result:
    """Satisfies ``OutcomeLike``."""

    status: int | None = None
    failure: str | None = None


OK = Result(status=200)
E500 = Result(status=500)
E503 = Result(status=503)
CONNECT = Result(failure="connect")


def service(
    name: str = "svc",
    *,
    ports: Sequence[ServicePort] = (ServicePort(name="http", port=80, target_port="web"),),
    traffic_distribution: str | None = None,
    namespace: str = NS,
    type: str = "ClusterIP",
) -> Service:
    return Service(
        meta=Meta(name=name, namespace=namespace), ports=tuple(ports),
        traffic_distribution=traffic_distribution, type=type,
    )


def endpoint(address: str, **kw: object) -> Endpoint:
    return Endpoint(addresses=(address,), **kw)  # type: ignore[arg-type]


def endpoint_slice(
    name: str,
    endpoints: Iterable[Endpoint],
    *,
    service: str = "svc",
    ports: Sequence[EndpointPort] = (EndpointPort(name="http", port=8080),),
    address_type: str = "IPv4",
    namespace: str = NS,
) -> EndpointSlice:
    return EndpointSlice(
        meta=Meta(name=name, namespace=namespace), service_name=service,
        address_type=address_type, endpoints=tuple(endpoints), ports=tuple(ports),
    )


def addresses(n: int, prefix: str = "10.0.0.") -> list[str]:
    return [f"{prefix}{i + 1}" for i in range(n)]


def simple_world(n: int, *, name: str = "svc") -> tuple[list[Service], list[EndpointSlice]]:
    """One Service port 80 → 8080 with ``n`` ready endpoints 10.0.0.1..n."""
    eps = [endpoint(a) for a in addresses(n)]
    return [service(name)], [endpoint_slice(f"{name}-1", eps, service=name)]


def balancer(n: int = 3, *, seed: int = 1, config: BalancerConfig | None = None) -> Balancer:
    b = Balancer(rand=random.Random(seed).random, config=config or BalancerConfig())
    b.update(*simple_world(n))
    return b


SVC = (Backend(NS, "svc", 80),)


def must_pick(result: Pick[Backend] | Overflow[Backend] | NoEndpoints[Backend]) -> Pick[Backend]:
    assert isinstance(result, Pick), result
    return result


def send(
    b: Balancer, now: float, outcome_for: dict[str, Result] | None = None,
    backends: Sequence[Backend] = SVC, latency: float = 0.01, **pick_kw: object,
) -> Pick[Backend]:
    """One pick, reported at once with the outcome its address is scripted to have."""
    p = must_pick(b.pick(backends, now=now, **pick_kw))  # type: ignore[arg-type]
    b.report(p, (outcome_for or {}).get(p.address, OK), latency, now=now)
    return p
