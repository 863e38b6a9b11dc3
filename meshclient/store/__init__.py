"""The object store and its immutable snapshots."""

from meshclient.store._snapshot import Change as Change
from meshclient.store._snapshot import Delete as Delete
from meshclient.store._snapshot import Put as Put
from meshclient.store._snapshot import Snapshot as Snapshot
from meshclient.store._snapshot import Store as Store
from meshclient.store._snapshot import kind_of as kind_of

__all__ = ["Change", "Delete", "Put", "Snapshot", "Store", "kind_of"]
