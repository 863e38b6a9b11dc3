"""``Store.apply``: one snapshot per batch, copying only the kinds a batch changed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshclient.errors import ConfigError
from meshclient.model import parse_object
from meshclient.store import Delete, Put, Snapshot, Store
from tests.routing import helpers as h


def _obj(raw: dict[str, object]):  # type: ignore[no-untyped-def]
    got, errors = parse_object(raw)
    assert got is not None, errors
    return got


def _put(raw: dict[str, object]) -> Put:
    obj = _obj(raw)
    return Put((type(obj).__name__, obj.meta.namespace, obj.meta.name), obj)


class TestApply:
    def test_apply_batch_publishes_one_snapshot(self) -> None:
        """A batch of many changes makes exactly one new version."""
        store = Store()
        before = store.snapshot.version
        snap = store.apply([_put(h.http_route(f"r{i}")) for i in range(5)])
        assert snap.version == before + 1
        assert len(snap.of("HTTPRoute")) == 5

    def test_apply_untouched_kind_shares_its_map(self) -> None:
        """A change to one kind leaves every other kind's map the very same object."""
        store = Store()
        store.apply([_put(h.http_route("r")), _put(h.endpoint_slice("svc"))])
        old = store.snapshot
        new = store.apply([_put(h.endpoint_slice("svc", addresses=("10.0.0.9",)))])
        assert new.of("HTTPRoute") is old.of("HTTPRoute")
        assert new.of("EndpointSlice") is not old.of("EndpointSlice")
        assert new.changed_kinds(old) == {"EndpointSlice"}

    def test_apply_published_snapshot_never_changes(self) -> None:
        """Later batches never mutate a snapshot already handed out."""
        store = Store()
        first = store.apply([_put(h.http_route("a"))])
        store.apply([_put(h.http_route("b")), Delete(("HTTPRoute", "default", "a"))])
        assert set(first.of("HTTPRoute")) == {("default", "a")}
        assert set(store.snapshot.of("HTTPRoute")) == {("default", "b")}

    def test_apply_noop_batch_keeps_version(self) -> None:
        """Deleting something absent publishes nothing."""
        store = Store()
        snap = store.snapshot
        assert store.apply([Delete(("HTTPRoute", "default", "nope"))]) is snap

    def test_apply_errors_follow_their_object(self) -> None:
        """An object's errors stay while it is broken and go when it is fixed or deleted."""
        store = Store()
        err = ConfigError("HTTPRoute", "default", "r", "spec", 1, "Invalid", "is bad")
        store.apply([Put(("HTTPRoute", "default", "r"), None, (err,))])
        assert store.snapshot.errors == (err,)
        store.apply([_put(h.http_route("r"))])
        assert store.snapshot.errors == ()
        store.apply([Put(("HTTPRoute", "default", "r"), None, (err,))])
        assert not store.snapshot.of("HTTPRoute")
        store.apply([Delete(("HTTPRoute", "default", "r"))])
        assert store.snapshot.errors == ()

    def test_apply_last_kind_object_deleted_drops_kind(self) -> None:
        """A kind with no objects left is absent from the snapshot, as ``build`` makes it."""
        store = Store()
        store.apply([_put(h.http_route("r"))])
        store.apply([Delete(("HTTPRoute", "default", "r"))])
        assert "HTTPRoute" not in store.snapshot.objects
        assert "HTTPRoute" in store.snapshot.changed_kinds(Snapshot.build(()))


class TestReplace:
    def test_replace_identical_objects_changes_no_kind(self) -> None:
        """Replacing with the very same objects marks no kind changed."""
        store = Store()
        objs = [_obj(h.http_route("r")), _obj(h.service("svc"))]
        before = store.replace(objs)
        after = store.replace(objs)
        assert after.changed_kinds(before) == frozenset()
        assert after.version == before.version + 1

    def test_replace_keeps_upsert_and_delete_working(self) -> None:
        """The one-object calls the files source and tests use still publish each change."""
        store = Store()
        store.upsert(_obj(h.http_route("r")))
        assert store.snapshot.get("HTTPRoute", "default", "r") is not None
        store.delete("HTTPRoute", "default", "r")
        assert store.snapshot.get("HTTPRoute", "default", "r") is None


_ROUTES = [_put(h.http_route(n, hostnames=[f"{n}.example.com"])) for n in "abcd"]
_SLICES = [_put(h.endpoint_slice(n)) for n in "abcd"]


@given(batches=st.lists(st.lists(st.tuples(st.booleans(), st.sampled_from(_ROUTES + _SLICES)),
                                 max_size=6), max_size=8))
def test_apply_random_batches_match_model_and_keep_old_snapshots(
    batches: list[list[tuple[bool, Put]]]
) -> None:
    """Any sequence of batches leaves the store equal to a plain dict model, and every
    snapshot handed out earlier still shows exactly its own state."""
    store = Store()
    model: dict[tuple[str, str, str], object] = {}
    history: list[tuple[Snapshot, dict[tuple[str, str, str], object]]] = []
    for batch in batches:
        changes: list[Put | Delete] = []
        for keep, put in batch:
            changes.append(put if keep else Delete(put.key))
            if keep:
                model[put.key] = put.obj
            else:
                model.pop(put.key, None)
        snap = store.apply(changes)
        history.append((snap, dict(model)))
    for snap, state in history:
        got = {(kind, ns, name): obj for kind in ("HTTPRoute", "EndpointSlice")
               for (ns, name), obj in snap.of(kind).items()}
        assert got == state


@given(steps=st.lists(st.one_of(
    st.lists(st.tuples(st.booleans(), st.sampled_from(_ROUTES + _SLICES)), max_size=4),
    st.just("replace")), max_size=40))
def test_changes_since_names_every_changed_key(steps: list[object]) -> None:
    """Between any two snapshots of one store, ``changes_since`` (when it knows) holds every
    key whose object differs; it never claims to know across a ``replace`` or another store."""
    store = Store()
    snaps = [store.snapshot]
    for step in steps:
        if step == "replace":
            store.replace(list(store.snapshot.all()))
        else:
            assert isinstance(step, list)
            store.apply([put if keep else Delete(put.key) for keep, put in step])
        snaps.append(store.snapshot)
    known = 0
    for i, old in enumerate(snaps):
        for new in snaps[i:]:
            for kind in ("HTTPRoute", "EndpointSlice"):
                keys = new.changes_since(kind, old.lineage, old.kind_versions.get(kind, 0))
                if keys is None:
                    continue
                known += 1
                a, b = old.of(kind), new.of(kind)
                differ = {k for k in a.keys() | b.keys() if a.get(k) is not b.get(k)}
                assert differ <= keys
    assert known >= len(snaps)  # at least every snapshot against itself
    assert all(s.lineage is snaps[0].lineage for s in snaps)  # the empty first one too
    other = Store().snapshot
    assert snaps[-1].changes_since("HTTPRoute", other.lineage, 0) is None
