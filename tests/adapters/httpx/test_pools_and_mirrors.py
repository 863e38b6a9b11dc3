"""Per-endpoint pools (retired with their endpoints), mirrors and the client identity token."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshclient import Mesh
from meshclient.model import parse_object
from meshclient_httpx import RequestRecord
from tests.adapters.httpx.conftest import (
    HOST,
    Backend,
    Client,
    Reply,
    gateway,
    mesh_of,
    route,
    service,
)
from tests.routing import helpers as h

Make = Callable[..., Backend]
MakeClient = Callable[..., Client]


def replace_objects(mesh: Mesh, objects: list[Any]) -> None:
    """Swap the mesh's objects for ``objects``, as a reload would."""
    flat: list[Any] = []
    for o in objects:
        flat.extend(o if isinstance(o, list) else [o])
    parsed = [p for p in (parse_object(o, "default")[0] for o in flat) if p is not None]
    mesh.store.replace(parsed, [])
    mesh.refresh()


def wait_for(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_pools_one_per_endpoint(backends: Make, client: MakeClient) -> None:
    """Each endpoint gets its own pool, keyed by its address and port."""
    servers = [backends(f"s{i}") for i in range(3)]
    mesh = mesh_of(gateway(), service("b", servers), route(h.rule(backends=[h.backend("b")])))
    c = client(mesh)
    for _ in range(6):
        c.get(f"http://{HOST}/")
    stats = c.transport.statistics()
    assert stats.open == 3
    assert set(stats.endpoints) == {f"{s.host}:{s.port}" for s in servers}
    assert stats.in_flight == 0


def test_pools_closed_when_endpoints_vanish(backends: Make, client: MakeClient) -> None:
    """An endpoint that leaves the EndpointSlices has its pool closed (next request included)."""
    a, b = backends("a"), backends("b")
    mesh = mesh_of(gateway(), service("svc", [a, b]),
                   route(h.rule(backends=[h.backend("svc")])))
    c = client(mesh)
    for _ in range(4):
        c.get(f"http://{HOST}/")
    assert c.transport.statistics().open == 2
    replace_objects(mesh, [gateway(), service("svc", [a]),
                           route(h.rule(backends=[h.backend("svc")]))])
    assert c.get(f"http://{HOST}/").text == "a"  # the async transport closes in its loop
    stats = c.transport.statistics()
    assert stats.endpoints == (f"{a.host}:{a.port}",)
    assert stats.closed == 1


def test_pools_busy_pool_closes_after_its_response(backends: Make, client: MakeClient) -> None:
    """A retired endpoint's pool waits for the response in flight before it closes."""
    a = backends("a")
    mesh = mesh_of(gateway(), service("svc", [a]), route(h.rule(backends=[h.backend("svc")])))
    c = client(mesh)
    if c.kind != "sync":
        return  # the streaming API differs; the bookkeeping is shared (PoolSet)
    with c.http.stream("GET", f"http://{HOST}/") as r:
        replace_objects(mesh, [gateway(), service("svc", []),
                               route(h.rule(backends=[h.backend("svc")]))])
        assert c.transport.statistics().retired == 1
        assert r.read() == b"a"
    stats = c.transport.statistics()
    assert (stats.open, stats.closed) == (0, 1)


def test_mirror_copy_observed_at_mirror_backend(backends: Make, client: MakeClient) -> None:
    """A RequestMirror copy reaches the mirror backend with the request's body (HR)."""
    main, shadow = backends("main"), backends("shadow")
    mesh = mesh_of(gateway(), service("main", [main]), service("shadow", [shadow]),
                   route(h.rule(filters=[h.mirror("shadow")], backends=[h.backend("main")])))
    records: list[RequestRecord] = []
    c = client(mesh, on_request=records.append)
    r = c.request("POST", f"http://{HOST}/m", content=b"copy me", headers={"x-a": "1"})
    assert r.text == "main"
    assert wait_for(lambda: shadow.hits == 1)
    seen = shadow.requests[0]
    assert (seen.method, seen.path, seen.body) == ("POST", "/m", b"copy me")
    assert seen.headers["host"] == HOST and seen.headers["x-a"] == "1"
    assert records[0].mirrors == 1


def test_mirror_never_delays_the_main_response(backends: Make, client: MakeClient) -> None:
    """A slow mirror backend does not slow the main request down."""
    main, shadow = backends("main"), backends("shadow")
    shadow.behave = lambda seen: Reply(delay=0.5)
    mesh = mesh_of(gateway(), service("main", [main]), service("shadow", [shadow]),
                   route(h.rule(filters=[h.mirror("shadow")], backends=[h.backend("main")])))
    c = client(mesh)
    c.get(f"http://{HOST}/")  # warm: connections and mirror threads
    t0 = time.monotonic()
    r = c.get(f"http://{HOST}/")
    assert r.text == "main"
    assert time.monotonic() - t0 < 0.3
    assert wait_for(lambda: shadow.hits == 2)


def test_mirror_percent_zero_sends_no_copy(backends: Make, client: MakeClient) -> None:
    """A mirror at 0 % never sends a copy (HR percent)."""
    main, shadow = backends("main"), backends("shadow")
    mesh = mesh_of(gateway(), service("main", [main]), service("shadow", [shadow]),
                   route(h.rule(filters=[h.mirror("shadow", percent=0)],
                                backends=[h.backend("main")])))
    c = client(mesh)
    for _ in range(5):
        c.get(f"http://{HOST}/")
    time.sleep(0.05)
    assert shadow.hits == 0


def test_identity_token_sent_and_reread_on_rotation(backends: Make, client: MakeClient,
                                                    tmp_path: Path) -> None:
    """The projected token goes as a Bearer header and a rotated file is read again."""
    b = backends("b")
    token = tmp_path / "token"
    token.write_text("first\n")
    mesh = mesh_of(gateway(), service("b", [b]), route(h.rule(backends=[h.backend("b")])))
    c = client(mesh, token_file=token)
    c.get(f"http://{HOST}/")
    assert b.requests[-1].headers["authorization"] == "Bearer first"
    # The kubelet swaps the file atomically; force the transport's next look at it.
    new = tmp_path / "token.new"
    new.write_text("second\n")
    os.replace(new, token)
    c.transport._s.flow.token._file._next = 0.0
    c.get(f"http://{HOST}/")
    assert b.requests[-1].headers["authorization"] == "Bearer second"


def test_identity_token_custom_header_and_callers_header_kept(
    backends: Make, client: MakeClient, tmp_path: Path
) -> None:
    """A custom header carries the bare token; a caller's own header is never replaced."""
    b = backends("b")
    token = tmp_path / "token"
    token.write_text("tok")
    mesh = mesh_of(gateway(), service("b", [b]), route(h.rule(backends=[h.backend("b")])))
    c = client(mesh, token_file=token, token_header="x-mesh-token")
    c.get(f"http://{HOST}/")
    c.get(f"http://{HOST}/", headers={"x-mesh-token": "mine"})
    assert [s.headers["x-mesh-token"] for s in b.requests] == ["tok", "mine"]


def test_transport_dropped_is_not_kept_alive_by_the_mesh(backends: Make) -> None:
    """A closed and dropped transport is garbage: the mesh's listener holds it weakly."""
    import gc
    import weakref

    from meshclient_httpx import MeshTransport

    mesh = mesh_of(gateway(), service("svc", [backends("a")]),
                   route(h.rule(backends=[h.backend("svc")])))
    t = MeshTransport(mesh)
    ref = weakref.ref(t)
    t.close()
    del t
    gc.collect()
    assert ref() is None
    replace_objects(mesh, [gateway()])  # the stale listener is a no-op, not an error


def test_transport_shared_by_threads_keeps_counts_exact(backends: Make) -> None:
    """One MeshTransport used by 8 threads: every request answered, no lease or slot left."""
    import concurrent.futures

    import httpx

    from meshclient_httpx import MeshTransport

    servers = [backends(f"s{i}") for i in range(3)]
    mesh = mesh_of(gateway(), service("b", servers), route(h.rule(backends=[h.backend("b")])))
    t = MeshTransport(mesh)
    with httpx.Client(transport=t) as c, concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: c.get(f"http://{HOST}/").status_code, range(240)))
        assert codes == [200] * 240
        assert t.statistics().in_flight == 0
        assert mesh.balancer(rand=lambda: 0.0).statistics().in_flight == 0
    assert sum(s.hits for s in servers) == 240
