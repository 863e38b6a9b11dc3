"""What the Kubernetes source watches and how, and how it reports its state (plain values)."""

from __future__ import annotations

from typing import Final

import attrs

from meshclient.sources._kube_kinds import DEFAULT_KINDS, KindSpec
from meshclient.sources._kube_watch import Backoff, KindStatus

__all__ = ["DEFAULT_WATCH_TIMEOUT", "KubeOptions", "SyncStatus"]

DEFAULT_WATCH_TIMEOUT: Final = 300
"""Seconds the API server keeps a watch open (``timeoutSeconds``) before we reconnect."""


@attrs.frozen(kw_only=True)
class KubeOptions:
    """How the Kubernetes source lists and watches."""

    namespaces: tuple[str, ...] | None = None
    """Namespaces to watch namespaced kinds in; None watches all of them."""
    kinds: tuple[KindSpec, ...] = DEFAULT_KINDS
    config_map_selector: str | None = None
    """A label selector for the ConfigMaps watched (CA bundles of BackendTLSPolicies)."""
    watch_timeout: int = DEFAULT_WATCH_TIMEOUT
    read_timeout: float = DEFAULT_WATCH_TIMEOUT + 30.0
    """Client-side: a connection silent this long is dead (the server sends at least the
    close after ``watch_timeout``; kubernetes-asyncio has no read timeout of its own)."""
    connect_timeout: float = 10.0
    list_timeout: float = 120.0
    page_size: int = 500
    debounce: float = 0.005
    """Quiet time that ends a burst of changes. The events of one burst arrive within a
    millisecond or two of each other (a relist's difference is one unit already), and every
    change waits this long before it is applied, so it is a small part of the 50 ms a change
    may take to reach the table."""
    max_delay: float = 0.25
    """A burst is applied at most this long after its first change, even if it goes on."""
    initial_hold: float = 120.0
    """Before the first publish, wait this long at most for the kinds whose first list is
    still on its way (failing kinds are not waited for)."""
    recheck_absent: float = 300.0
    """How often a kind the cluster lacks is looked for again."""
    backoff: Backoff = attrs.field(factory=Backoff)


@attrs.frozen(kw_only=True)
class SyncStatus:
    """Whether the source has synced, and how stale the snapshot may be."""

    synced: bool
    """Every kind's initial list has been applied and published."""
    stale: bool
    """Some kind is not currently watching (failing, relisting, backing off)."""
    age: float
    """Seconds since the snapshot was last known to be current (0 while every watch is up)."""
    kinds: tuple[KindStatus, ...]
    errors: tuple[str, ...]
    batches: int
    """Batches applied so far (each one publish and at most one recompile)."""
