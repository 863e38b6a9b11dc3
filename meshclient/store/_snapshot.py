"""The current set of objects, handed out as immutable, versioned snapshots.

Sources (files, Kubernetes) write into a ``Store``; everything downstream reads a
``Snapshot``, which never changes once made, so a request that holds one sees one consistent
configuration from start to end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import attrs

from meshclient.errors import ConfigError
from meshclient.model import Object

__all__ = ["Snapshot", "Store"]

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped kinds."""


def kind_of(obj: Object) -> str:
    return type(obj).__name__


@attrs.frozen(eq=False)
class Snapshot:
    """All objects at one version, by kind and (namespace, name)."""

    version: int
    objects: Mapping[str, Mapping[Key, Object]]
    errors: tuple[ConfigError, ...] = ()
    """Problems found while reading the objects (parse errors, unreadable files)."""

    def of(self, kind: str) -> Mapping[Key, Object]:
        return self.objects.get(kind, _EMPTY)

    def get(self, kind: str, namespace: str, name: str) -> Object | None:
        return self.objects.get(kind, _EMPTY).get((namespace, name))

    def all(self) -> Iterator[Object]:
        for by_key in self.objects.values():
            yield from by_key.values()

    @classmethod
    def build(
        cls, objects: Iterable[Object], *, version: int = 0, errors: Iterable[ConfigError] = ()
    ) -> Snapshot:
        by_kind: dict[str, dict[Key, Object]] = {}
        for obj in objects:
            meta = obj.meta
            by_kind.setdefault(kind_of(obj), {})[(meta.namespace, meta.name)] = obj
        frozen = {k: MappingProxyType(v) for k, v in by_kind.items()}
        return cls(version=version, objects=MappingProxyType(frozen), errors=tuple(errors))


_EMPTY: Mapping[Key, Object] = MappingProxyType({})


@attrs.define(eq=False)
class Store:
    """Objects keyed by kind and name; each change makes a new snapshot.

    Writers may be on another thread (a file watcher, a Kubernetes watch loop); readers only
    ever take ``snapshot``, a plain attribute read, so the request path takes no lock.
    """

    _objects: dict[str, dict[Key, Object]] = attrs.field(factory=dict)
    _errors: tuple[ConfigError, ...] = ()
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    snapshot: Snapshot = attrs.field(factory=lambda: Snapshot.build(()))

    def replace(self, objects: Iterable[Object], errors: Iterable[ConfigError] = ()) -> Snapshot:
        """Swap in a whole new object set (a file reload, a relist)."""
        with self._lock:
            self._objects = {}
            for obj in objects:
                self._objects.setdefault(kind_of(obj), {})[
                    (obj.meta.namespace, obj.meta.name)
                ] = obj
            self._errors = tuple(errors)
            return self._publish()

    def upsert(self, obj: Object) -> Snapshot:
        with self._lock:
            self._objects.setdefault(kind_of(obj), {})[(obj.meta.namespace, obj.meta.name)] = obj
            return self._publish()

    def delete(self, kind: str, namespace: str, name: str) -> Snapshot:
        with self._lock:
            self._objects.get(kind, {}).pop((namespace, name), None)
            return self._publish()

    def _publish(self) -> Snapshot:
        frozen = {k: MappingProxyType(dict(v)) for k, v in self._objects.items()}
        self.snapshot = Snapshot(
            version=self.snapshot.version + 1,
            objects=MappingProxyType(frozen),
            errors=self._errors,
        )
        return self.snapshot
