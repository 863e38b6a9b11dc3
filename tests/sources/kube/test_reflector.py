"""``Reflector``: lists, events and failures turned into store changes and next steps."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshclient.sources import DEFAULT_KINDS, Backoff, KindSpec, Phase, Reflector, Signal
from meshclient.sources._kube_watch import _TRANSITIONS
from meshclient.store import Delete, Put, Store
from tests.routing import helpers as h

ROUTES = next(k for k in DEFAULT_KINDS if k.kind == "HTTPRoute")
CONFIG_MAPS = next(k for k in DEFAULT_KINDS if k.kind == "ConfigMap")


def _with_rv(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    obj["metadata"]["resourceVersion"] = str(rv)
    return obj


def _watching(spec: KindSpec = ROUTES, items: list[dict[str, Any]] | None = None) -> Reflector:
    r = Reflector(spec)
    r.discovered("v1", now=0.0)
    r.listed(items or [], "10", now=0.0)
    return r


class TestList:
    def test_listed_first_list_puts_every_item(self) -> None:
        """The initial list becomes one Put per object and marks the kind synced."""
        r = Reflector(ROUTES)
        r.discovered("v1", now=0.0)
        changes = r.listed([_with_rv(h.http_route("a"), 5), _with_rv(h.http_route("b"), 6)],
                           "7", now=1.0)
        assert [type(c) for c in changes] == [Put, Put]
        assert r.synced and r.phase is Phase.WATCHING and r.resource_version == "7"

    def test_listed_relist_yields_only_the_difference(self) -> None:
        """A relist puts new and changed objects, deletes vanished ones, skips the same."""
        r = _watching(items=[_with_rv(h.http_route("same"), 5), _with_rv(h.http_route("old"), 6),
                             _with_rv(h.http_route("changed"), 7)])
        r.expired()
        changes = r.listed([_with_rv(h.http_route("same"), 5),
                            _with_rv(h.http_route("changed"), 9),
                            _with_rv(h.http_route("new"), 10)], "11", now=2.0)
        puts = {c.key[2] for c in changes if isinstance(c, Put)}
        deletes = {c.key[2] for c in changes if isinstance(c, Delete)}
        assert puts == {"changed", "new"} and deletes == {"old"}
        assert r.relists == 1

    def test_listed_items_without_kind_are_parsed(self) -> None:
        """List items lack kind/apiVersion for built-in kinds; the spec fills them in."""
        services = next(k for k in DEFAULT_KINDS if k.kind == "Service")
        raw = _with_rv(h.service("svc"), 3)
        del raw["kind"], raw["apiVersion"]
        r = Reflector(services)
        r.discovered("v1", now=0.0)
        (change,) = r.listed([raw], "4", now=0.0)
        assert isinstance(change, Put) and type(change.obj).__name__ == "Service"

    def test_listed_config_map_keeps_only_ca_bundle(self) -> None:
        """ConfigMaps are stored with ``ca.crt`` only: application config stays out."""
        r = Reflector(CONFIG_MAPS)
        r.discovered("v1", now=0.0)
        raw = _with_rv(h.config_map("ca", data={"ca.crt": "PEM", "secret.yaml": "x" * 100}), 1)
        (change,) = r.listed([raw], "2", now=0.0)
        assert isinstance(change, Put)
        assert dict(change.obj.data) == {"ca.crt": "PEM"}  # type: ignore[union-attr]


class TestEvents:
    def test_event_added_modified_deleted_reach_store(self) -> None:
        """Watch events apply in order; DELETED removes the object."""
        store = Store()
        r = _watching()
        store.apply(r.event("ADDED", _with_rv(h.http_route("a"), 11), now=1.0))
        store.apply(r.event("MODIFIED", _with_rv(h.http_route("a", hostnames=["x.io"]), 12),
                            now=1.0))
        route = store.snapshot.get("HTTPRoute", "default", "a")
        assert route is not None and route.hostnames == ("x.io",)  # type: ignore[union-attr]
        store.apply(r.event("DELETED", _with_rv(h.http_route("a"), 13), now=1.0))
        assert store.snapshot.get("HTTPRoute", "default", "a") is None
        assert r.resource_version == "13"

    def test_event_bookmark_advances_version_only(self) -> None:
        """A BOOKMARK moves the resume point and changes nothing."""
        r = _watching()
        assert r.event("BOOKMARK", {"metadata": {"resourceVersion": "99"}}, now=1.0) == []
        assert r.resource_version == "99"

    def test_event_repeat_of_listed_version_is_skipped(self) -> None:
        """An ADDED for a version the list already had changes nothing."""
        r = _watching(items=[_with_rv(h.http_route("a"), 5)])
        assert r.event("ADDED", _with_rv(h.http_route("a"), 5), now=1.0) == []

    def test_event_unknown_kind_is_counted_not_stored(self) -> None:
        """An object the model cannot parse yet is counted and produces no change."""
        spec = KindSpec(group="example.com", kind="Widget", plural="widgets", versions=("v1",))
        r = _watching(spec)
        raw = {"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "default", "resourceVersion": "11"}}
        assert r.event("ADDED", raw, now=1.0) == []
        assert r.unparsed == 1


class TestFailures:
    def test_failed_403_names_permission_and_rule(self, caplog: pytest.LogCaptureFixture) -> None:
        """A 403 reports the verb, the resource and the RBAC rule to add, logged once."""
        r = Reflector(ROUTES)
        r.discovered("v1", now=0.0)
        with caplog.at_level(logging.WARNING, "meshclient.sources.kubernetes"):
            r.failed(403, "forbidden", now=1.0, verb="list")
            r.retry()
            r.failed(403, "forbidden", now=2.0, verb="list")
        assert r.error is not None
        assert "cannot list httproutes.gateway.networking.k8s.io cluster-wide" in r.error
        assert 'resources: ["httproutes"]' in r.error and "ClusterRole" in r.error
        assert len(caplog.records) == 1

    def test_failed_network_error_while_watching_resumes(self) -> None:
        """A dropped connection resumes the watch from the last version, without a relist."""
        r = _watching()
        r.failed(None, "reset", now=1.0, verb="watch")
        assert r.retry() is Phase.WATCHING and r.resource_version == "10"

    def test_failed_api_error_relists(self) -> None:
        """A 500 (or 401) lists again after the backoff: events may have been lost."""
        r = _watching()
        r.failed(500, "boom", now=1.0, verb="watch")
        assert r.retry() is Phase.LISTING

    def test_discovered_absent_kind_logs_once(self, caplog: pytest.LogCaptureFixture) -> None:
        """A kind the cluster lacks is synced, empty, and logged once across rechecks."""
        r = Reflector(ROUTES)
        with caplog.at_level(logging.INFO, "meshclient.sources.kubernetes"):
            r.discovered(None, now=0.0)
            for _ in range(3):
                r.recheck()
                r.discovered(None, now=1.0)
        assert r.synced and r.phase is Phase.ABSENT
        assert len(caplog.records) == 1

    def test_discovered_kind_removed_deletes_its_objects(self) -> None:
        """A kind that stops being served (CRD deleted) takes its objects with it."""
        r = _watching(items=[_with_rv(h.http_route("a"), 5)])
        changes = r.discovered(None, now=3.0)
        assert changes == [Delete(("HTTPRoute", "default", "a"))]


class TestBackoff:
    @given(failures=st.integers(1, 200), u=st.floats(0, 1, exclude_max=True))
    def test_backoff_delay_is_jittered_and_capped(self, failures: int, u: float) -> None:
        """Delays grow from ``base`` and never pass the cap plus its jitter."""
        b = Backoff(base=0.5, cap=10.0, jitter=0.5)
        d = b.delay(failures, lambda: u)
        raw = min(10.0, 0.5 * 2 ** (failures - 1))
        assert raw * 0.75 <= d < raw * 1.25 + 1e-9


@given(phase=st.sampled_from(Phase), signal=st.sampled_from(Signal))
def test_reflector_every_phase_signal_pair_is_defined_or_raises(phase: Phase,
                                                                signal: Signal) -> None:
    """Each (phase, signal) pair is in the table, or raises naming both (STYLE §1)."""
    r = Reflector(ROUTES, phase=phase)
    if (phase, signal) in _TRANSITIONS:
        assert r._go(signal) is _TRANSITIONS[(phase, signal)]
    else:
        with pytest.raises(RuntimeError, match=f"{phase.name}.*{signal.name}"):
            r._go(signal)


def test_default_kinds_cover_exactly_the_model_kinds() -> None:
    """Every kind the model parses is watched, in the versions it reads, and no other
    (a kind added to ``meshclient.model.KINDS`` needs its line in ``DEFAULT_KINDS``)."""
    from meshclient.model import KINDS

    watched = {(k.group, k.kind): frozenset(k.versions) for k in DEFAULT_KINDS}
    assert watched == {key: versions for key, (versions, _) in KINDS.items()}
