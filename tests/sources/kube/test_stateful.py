"""Random creates, updates, deletes, disconnects and expiries against the Kubernetes source.

After the server goes quiet the mesh holds exactly the server's objects; and no snapshot a
request could have read was ever half of an update: every kind in every published snapshot
is a state the server really had after whole events (or a whole relist).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from meshclient import Mesh
from meshclient.sources import DEFAULT_KINDS
from meshclient.store import Snapshot, Store
from tests.routing import helpers as h
from tests.sources.kube.apiserver import FakeApiServer
from tests.sources.kube.conftest import FAST, configuration, until_blocking

KINDS = ("HTTPRoute", "Service", "EndpointSlice")
SPECS = tuple(k for k in DEFAULT_KINDS if k.kind in KINDS)
NAMES = ("a", "b", "c", "d")

State = frozenset[tuple[str, str, str]]
"""(namespace, name, resourceVersion) of every object of one kind."""


def _make(kind: str, name: str, n: int) -> dict[str, Any]:
    if kind == "HTTPRoute":
        return h.http_route(name, hostnames=[f"{name}{n}.example.com"])
    if kind == "Service":
        return h.service(name, ports=(("http", 8000 + n),))
    obj = h.endpoint_slice(name, addresses=(f"10.0.{n % 250}.1",))
    obj["metadata"]["name"] = name
    return obj


def _server_state(api: FakeApiServer, kind: str) -> State:
    return frozenset((ns, name, o["metadata"]["resourceVersion"])
                     for (_, ns, name), o in api.objects(kind).items())


def _mesh_state(snapshot: Snapshot, kind: str) -> State:
    return frozenset((ns, name, o.meta.resource_version)
                     for (ns, name), o in snapshot.of(kind).items())


@attrs.define(eq=False)
class _RecordingStore(Store):
    """A store that keeps every snapshot it publishes: all that any reader could ever see."""

    seen: list[Snapshot] = attrs.field(kw_only=True)

    def _publish(self, changed: Mapping[str, Any], *, errors_changed: bool) -> Snapshot:
        snapshot = super()._publish(changed, errors_changed=errors_changed)
        self.seen.append(snapshot)
        return snapshot


class KubeSourceMachine(RuleBasedStateMachine):
    """The fake API server is the truth; the mesh must follow it whole."""

    def __init__(self) -> None:
        super().__init__()
        self.api = FakeApiServer(SPECS).start()
        self.history: dict[str, set[State]] = {k: {frozenset()} for k in KINDS}
        self.seen: list[Snapshot] = []
        self.lock = threading.Lock()
        self.n = 0
        self.mesh: Mesh | None = None

    @initialize()
    def start(self) -> None:
        opts = attrs.evolve(FAST, kinds=SPECS, debounce=0.005, max_delay=0.02)
        self.mesh = Mesh.from_kubernetes(configuration=configuration(self.api), options=opts,
                                         timeout=10, store=_RecordingStore(seen=self.seen))
        self.mesh.subscribe(lambda table, snap: self.seen.append(snap))

    @rule(kind=st.sampled_from(KINDS), name=st.sampled_from(NAMES))
    def put(self, kind: str, name: str) -> None:
        """Create or update one object."""
        self.n += 1
        with self.lock:
            self.api.apply(_make(kind, name, self.n))
            self.history[kind].add(_server_state(self.api, kind))

    @rule(kind=st.sampled_from(KINDS), name=st.sampled_from(NAMES))
    def delete(self, kind: str, name: str) -> None:
        with self.lock:
            self.api.delete(_make(kind, name, 0))
            self.history[kind].add(_server_state(self.api, kind))

    @rule(kind=st.sampled_from(KINDS), names=st.lists(st.sampled_from(NAMES), min_size=2,
                                                       max_size=6))
    def burst(self, kind: str, names: list[str]) -> None:
        """Several changes in a row, faster than the debounce."""
        for name in names:
            self.put(kind, name)

    @rule(mid_line=st.booleans())
    def disconnect(self, mid_line: bool) -> None:
        self.api.drop_watches(mid_line=mid_line)

    @rule()
    def expire(self) -> None:
        """410 Gone on every open watch: the client must relist."""
        self.api.expire_watches()

    @rule(kind=st.sampled_from(KINDS),
          names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    def lose_then_expire(self, kind: str, names: list[str]) -> None:
        """Changes no watch hears of, then 410: only a relist's difference finds them, and
        it must land whole."""
        with self.lock:
            for name in names:
                self.n += 1
                if not self.api.delete(_make(kind, name, 0), notify=False):
                    self.api.apply(_make(kind, name, self.n), notify=False)
            self.history[kind].add(_server_state(self.api, kind))
        self.api.expire_watches()

    @invariant()
    def every_published_kind_was_a_server_state(self) -> None:
        with self.lock:
            seen = list(self.seen)
            del self.seen[:len(seen)]
            for snap in seen:
                for kind in KINDS:
                    state = _mesh_state(snap, kind)
                    assert state in self.history[kind], (kind, sorted(state))

    def teardown(self) -> None:
        try:
            if self.mesh is not None:
                mesh = self.mesh

                def converged() -> bool:
                    return all(_mesh_state(mesh.snapshot, k) == _server_state(self.api, k)
                               for k in KINDS)

                until_blocking(converged, timeout=10, what="the mesh to match the server")
                self.every_published_kind_was_a_server_state()
                assert mesh.ready
        finally:
            if self.mesh is not None:
                self.mesh.close()
            self.api.close()


KubeSourceMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_kube_source_random_changes_converge_whole = KubeSourceMachine.TestCase
