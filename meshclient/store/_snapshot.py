"""The current set of objects, handed out as immutable, versioned snapshots.

Sources (files, Kubernetes) write into a ``Store``; everything downstream reads a
``Snapshot``, which never changes once made, so a request that holds one sees one consistent
configuration from start to end.

Publishing costs what changed, not what is stored: each kind's map is its own read-only
dict, and a new snapshot shares the maps of every kind it did not touch with the one
before. A change to one EndpointSlice copies the EndpointSlice map only (a few tens of
microseconds at 10,000 entries), never the routes. ``apply`` takes a whole batch of changes
(a burst of watch events, the difference found by a relist) and publishes once, so readers
only ever see the state before the batch or after it, never half of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import attrs

from meshclient.errors import ConfigError
from meshclient.model import Object

__all__ = ["Change", "Delete", "Put", "Snapshot", "Store", "kind_of"]

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped kinds."""

ErrorKey = tuple[str, str, str]
"""(kind, namespace, name) of the object a list of errors belongs to."""

KeyChange = tuple[int, int, "frozenset[Key] | None"]
"""One change to a kind: its version before and after, and the keys (None: unknown)."""


def kind_of(obj: Object) -> str:
    return type(obj).__name__


@attrs.frozen(eq=False)
class Snapshot:
    """All objects at one version, by kind and (namespace, name)."""

    version: int
    objects: Mapping[str, Mapping[Key, Object]]
    errors: tuple[ConfigError, ...] = ()
    """Problems found while reading the objects (parse errors, unreadable files)."""
    kind_versions: Mapping[str, int] = attrs.field(factory=lambda: _NO_VERSIONS)
    """For each kind ever stored: the snapshot version that last changed it."""
    lineage: object = attrs.field(factory=object)
    """The same object for every snapshot of one store: versions compare only within it."""
    history: Mapping[str, tuple[KeyChange, ...]] = attrs.field(factory=lambda: _NO_HISTORY)
    """For each kind, its last few changes: (version before, version after, keys)."""

    def of(self, kind: str) -> Mapping[Key, Object]:
        return self.objects.get(kind, _EMPTY)

    def get(self, kind: str, namespace: str, name: str) -> Object | None:
        return self.objects.get(kind, _EMPTY).get((namespace, name))

    def all(self) -> Iterator[Object]:
        for by_key in self.objects.values():
            yield from by_key.values()

    def changes_since(self, kind: str, lineage: object, version: int) -> frozenset[Key] | None:
        """Keys of ``kind`` put or deleted since ``version`` of it, or None when unknown.

        ``version`` is ``kind_versions.get(kind, 0)`` of an earlier snapshot of the same
        store (``lineage``). Unknown: another store, a whole-set ``replace`` in between, or
        more changes since than the history keeps. Lets a consumer of a large kind (10,000
        routes) update for the few objects that changed without comparing them all.
        """
        if lineage is not self.lineage:
            return None
        now = self.kind_versions.get(kind, 0)
        if now == version:
            return frozenset()
        keys: set[Key] = set()
        at = version
        for before, after, changed in self.history.get(kind, ()):
            if after <= at:
                continue
            if before != at or changed is None:
                return None
            keys |= changed
            at = after
        return frozenset(keys) if at == now else None

    def changed_kinds(self, since: Snapshot) -> frozenset[str]:
        """The kinds whose objects differ between ``since`` and this snapshot.

        Exact for snapshots of one store (kinds carry the version that last changed them);
        for unrelated snapshots every kind either one holds counts as changed.
        """
        if since is self:
            return frozenset()
        mine, theirs = self.kind_versions, since.kind_versions
        if not mine and not theirs and (self.objects or since.objects):
            return frozenset(self.objects) | frozenset(since.objects)
        return frozenset(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))

    @classmethod
    def build(
        cls, objects: Iterable[Object], *, version: int = 0, errors: Iterable[ConfigError] = ()
    ) -> Snapshot:
        by_kind: dict[str, dict[Key, Object]] = {}
        for obj in objects:
            meta = obj.meta
            by_kind.setdefault(kind_of(obj), {})[(meta.namespace, meta.name)] = obj
        frozen = {k: MappingProxyType(v) for k, v in by_kind.items()}
        return cls(version=version, objects=MappingProxyType(frozen), errors=tuple(errors),
                   kind_versions=MappingProxyType(dict.fromkeys(frozen, version)))


_EMPTY: Mapping[Key, Object] = MappingProxyType({})
_NO_VERSIONS: Mapping[str, int] = MappingProxyType({})
_NO_HISTORY: Mapping[str, tuple[KeyChange, ...]] = MappingProxyType({})
_HISTORY_SIZE = 32


@attrs.frozen
class Put:
    """Store ``obj`` (replacing any object of its kind and name), with its parse errors.

    ``obj`` is None for an object too broken to keep: only its errors are recorded, under
    ``key``, and any earlier object stored under ``key`` is removed.
    """

    key: ErrorKey
    obj: Object | None
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen
class Delete:
    """Remove the object (and its errors) stored under ``key``."""

    key: ErrorKey


Change = Put | Delete


@attrs.define(eq=False)
class Store:
    """Objects keyed by kind and name; each change makes a new snapshot.

    Writers may be on another thread (a file watcher, a Kubernetes watch loop); readers only
    ever take ``snapshot``, a plain attribute read, so the request path takes no lock.
    """

    _objects: dict[str, dict[Key, Object]] = attrs.field(factory=dict)
    _errors: tuple[ConfigError, ...] = ()
    """Errors of the last ``replace`` (a whole-set source's own problems)."""
    _object_errors: dict[ErrorKey, tuple[ConfigError, ...]] = attrs.field(factory=dict)
    """Errors of objects written one at a time (``apply``), by the object they belong to."""
    _kind_versions: dict[str, int] = attrs.field(factory=dict)
    _history: dict[str, tuple[KeyChange, ...]] = attrs.field(factory=dict)
    _lineage: object = attrs.field(factory=object)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    snapshot: Snapshot = attrs.field(factory=lambda: Snapshot.build(()))

    def __attrs_post_init__(self) -> None:
        if not self.snapshot.objects and self.snapshot.version == 0:
            # The empty starting snapshot belongs to this store's lineage like every later one.
            self.snapshot = attrs.evolve(self.snapshot, lineage=self._lineage)

    def replace(self, objects: Iterable[Object], errors: Iterable[ConfigError] = ()) -> Snapshot:
        """Swap in a whole new object set (a file reload, a relist)."""
        with self._lock:
            old = self._objects
            self._objects = {}
            for obj in objects:
                self._objects.setdefault(kind_of(obj), {})[
                    (obj.meta.namespace, obj.meta.name)
                ] = obj
            self._errors = tuple(errors)
            self._object_errors = {}
            changed = {k for k in old.keys() | self._objects.keys()
                       if not _same(old.get(k), self._objects.get(k))}
            return self._publish(dict.fromkeys(changed), errors_changed=True)

    def upsert(self, obj: Object) -> Snapshot:
        return self.apply((Put((kind_of(obj), obj.meta.namespace, obj.meta.name), obj),))

    def delete(self, kind: str, namespace: str, name: str) -> Snapshot:
        return self.apply((Delete((kind, namespace, name)),))

    def apply(self, changes: Iterable[Change]) -> Snapshot:
        """Apply a batch of changes in order and publish one snapshot for all of them.

        Returns the new snapshot, or the current one unchanged when the batch changed
        nothing (an empty batch, a delete of something absent).
        """
        with self._lock:
            touched: dict[str, dict[Key, Object]] = {}
            keys: dict[str, set[Key]] = {}
            errors_changed = False
            for change in changes:
                kind, namespace, name = change.key
                key = (namespace, name)
                if isinstance(change, Put) and change.obj is not None:
                    obj = change.obj
                    obj_kind = kind_of(obj)
                    obj_key = (obj.meta.namespace, obj.meta.name)
                    self._writable(touched, obj_kind)[obj_key] = obj
                    keys.setdefault(obj_kind, set()).add(obj_key)
                    if obj_kind != kind and key in self._objects.get(kind, {}):
                        del self._writable(touched, kind)[key]
                        keys.setdefault(kind, set()).add(key)
                elif key in self._objects.get(kind, {}):
                    del self._writable(touched, kind)[key]
                    keys.setdefault(kind, set()).add(key)
                errors = change.errors if isinstance(change, Put) else ()
                if errors:
                    self._object_errors[change.key] = errors
                    errors_changed = True
                elif self._object_errors.pop(change.key, None) is not None:
                    errors_changed = True
            if not touched and not errors_changed:
                return self.snapshot
            return self._publish({k: frozenset(keys.get(k, ())) for k in touched},
                                 errors_changed=errors_changed)

    def _writable(self, touched: dict[str, dict[Key, Object]], kind: str) -> dict[Key, Object]:
        """This kind's map, copied once per batch: the published one must never change."""
        got = touched.get(kind)
        if got is None:
            got = dict(self._objects.get(kind, {}))
            self._objects[kind] = touched[kind] = got
        return got

    def _publish(self, changed: Mapping[str, frozenset[Key] | None], *,
                 errors_changed: bool) -> Snapshot:
        """Publish the changed kinds (with the keys that changed, None when unknown)."""
        old = self.snapshot
        version = old.version + 1
        objects = dict(old.objects)
        for kind, keys in changed.items():
            before = self._kind_versions.get(kind, 0)
            self._history[kind] = (*self._history.get(kind, ())[1 - _HISTORY_SIZE:],
                                   (before, version, keys))
            self._kind_versions[kind] = version
            by_key = self._objects.get(kind)
            if by_key:
                objects[kind] = MappingProxyType(by_key)
            else:
                objects.pop(kind, None)
                self._objects.pop(kind, None)
        errors = old.errors
        if errors_changed:
            errors = self._errors + tuple(
                e for errs in self._object_errors.values() for e in errs
            )
        self.snapshot = Snapshot(
            version=version,
            objects=MappingProxyType(objects),
            errors=errors,
            kind_versions=MappingProxyType(dict(self._kind_versions)),
            lineage=self._lineage,
            history=MappingProxyType(dict(self._history)),
        )
        return self.snapshot


def _same(a: Mapping[Key, Object] | None, b: Mapping[Key, Object] | None) -> bool:
    """Whether two maps of one kind hold the very same objects (identity, not equality)."""
    if a is None or b is None:
        return a is b or not (a or b)
    return a.keys() == b.keys() and all(b[k] is v for k, v in a.items())
