"""Following one Kubernetes kind by list and watch, without doing any I/O (the reflector).

``_kube_client`` does the requests; this module decides what they mean. One ``Reflector``
per watched kind (and namespace, when scoped) turns list responses and watch events into
store changes, and failures into the next step and a delay.

State machine (invariants):

* ``resource_version`` is the last version the reflector has fully applied: the list's
  ``metadata.resourceVersion``, then the version of each event or bookmark after it. A watch
  always resumes from it, so no event is applied twice or skipped.
* ``known`` maps every object of this kind the store holds to its resourceVersion. A relist
  (after 410 Gone, or any error that may have lost events) is diffed against it: only
  objects that are new, changed or gone become changes, and they are applied as one batch,
  so readers go from the old state to the listed one without seeing anything in between.
  The snapshot is never emptied while a relist is under way.
* An absent kind (the cluster does not serve it) is synced with no objects and is looked
  for again only after a long interval; it never loops on errors.
* Every (phase, signal) pair not in ``_TRANSITIONS`` is a bug and raises, naming both.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Final

import attrs

from meshclient.model import parse_object
from meshclient.sources._kube_kinds import KindSpec, MissingPermission
from meshclient.store import Change, Delete, Put

__all__ = ["Backoff", "KindStatus", "Phase", "Reflector", "Signal"]

_log = logging.getLogger("meshclient.sources.kubernetes")

Key = tuple[str, str]


class Phase(enum.Enum):
    DISCOVERING = "discovering"
    LISTING = "listing"
    WATCHING = "watching"
    BACKING_OFF = "backing off"
    ABSENT = "absent"
    STOPPED = "stopped"


class Signal(enum.Enum):
    FOUND = "the cluster serves the kind"
    MISSING = "the cluster does not serve the kind"
    LISTED = "a full list arrived"
    WATCH_ENDED = "the watch ended cleanly"
    EXPIRED = "410 Gone: the resourceVersion is too old"
    FAILED = "a request failed"
    RESUME = "backoff over; resume the watch"
    RELIST = "backoff over; list again"
    RECHECK = "look for an absent kind again"
    STOP = "stop"


P, S = Phase, Signal
_TRANSITIONS: Final[Mapping[tuple[Phase, Signal], Phase]] = {
    (P.DISCOVERING, S.FOUND): P.LISTING,
    (P.DISCOVERING, S.MISSING): P.ABSENT,
    (P.DISCOVERING, S.FAILED): P.BACKING_OFF,
    (P.LISTING, S.LISTED): P.WATCHING,
    (P.LISTING, S.EXPIRED): P.LISTING,
    (P.LISTING, S.FAILED): P.BACKING_OFF,
    (P.LISTING, S.MISSING): P.ABSENT,
    (P.WATCHING, S.WATCH_ENDED): P.WATCHING,
    (P.WATCHING, S.EXPIRED): P.LISTING,
    (P.WATCHING, S.FAILED): P.BACKING_OFF,
    (P.WATCHING, S.MISSING): P.ABSENT,
    (P.BACKING_OFF, S.RESUME): P.WATCHING,
    (P.BACKING_OFF, S.RELIST): P.LISTING,
    (P.BACKING_OFF, S.RECHECK): P.DISCOVERING,
    (P.ABSENT, S.RECHECK): P.DISCOVERING,
    **{(phase, S.STOP): P.STOPPED for phase in Phase},
}
del P, S


@attrs.frozen(kw_only=True)
class Backoff:
    """Jittered exponential backoff: ``base·2ⁿ`` capped at ``cap``, times a random factor in
    [1 - jitter/2, 1 + jitter/2) so many clients that failed together do not retry together."""

    base: float = 0.8
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, failures: int, rand: Callable[[], float]) -> float:
        raw = min(self.cap, self.base * 2.0 ** min(failures - 1, 32)) if failures > 0 else 0.0
        return raw * (1.0 - self.jitter / 2 + self.jitter * rand())


@attrs.frozen(kw_only=True)
class KindStatus:
    """How one reflector is doing, for ``sync_status()`` and logs."""

    kind: str
    group: str
    version: str | None
    namespace: str | None
    phase: Phase
    synced: bool
    """The initial list was applied (or the kind is absent)."""
    objects: int
    resource_version: str
    failures: int
    """Consecutive failures (0 while healthy)."""
    last_healthy: float | None
    """Clock time when the reflector last knew it was current (None: never yet); while
    watching it is current, so staleness is ``now - last_healthy`` only while it is not."""
    error: str | None
    relists: int
    events: int


@attrs.define(eq=False)
class Reflector:
    """One kind (in one namespace, or cluster-wide) as the store should hold it.

    Args:
        spec: The kind.
        namespace: The namespace it is scoped to (None: all, or cluster-scoped).
        backoff: Delays between failed attempts.
        rand: Uniform floats in [0, 1) for jitter.
    """

    spec: KindSpec
    namespace: str | None = None
    backoff: Backoff = attrs.field(factory=Backoff)
    rand: Callable[[], float] = attrs.field(default=lambda: 0.5)
    phase: Phase = Phase.DISCOVERING
    version: str | None = None
    """The API version in use, once discovered."""
    resource_version: str = ""
    synced: bool = False
    failures: int = 0
    last_healthy: float | None = None
    error: str | None = None
    relists: int = 0
    events: int = 0
    unparsed: int = 0
    """Objects seen that ``meshclient.model`` does not read yet (kept out of the store)."""
    _known: dict[Key, tuple[str, str]] = attrs.field(factory=dict)
    """(namespace, name) → (resourceVersion, kind it is stored under)."""
    _resume: bool = False
    _reported_absent: bool = False

    # -- transitions ----------------------------------------------------------------------

    def _go(self, signal: Signal) -> Phase:
        try:
            self.phase = _TRANSITIONS[(self.phase, signal)]
        except KeyError:
            raise RuntimeError(
                f"reflector {self.spec.kind}: no transition from {self.phase.name} on "
                f"{signal.name} ({signal.value})"
            ) from None
        return self.phase

    def discovered(self, version: str | None, now: float) -> list[Change]:
        """Discovery says which version the cluster serves (None: not served at all)."""
        if version is None:
            if not self._reported_absent:  # one line, not one per recheck
                _log.info("%s: the cluster serves none of %s; skipped (looked for again "
                          "every few minutes)", self.spec.resource, ", ".join(self.spec.versions))
                self._reported_absent = True
            return self._absent(now)
        if self._reported_absent:
            _log.info("%s: now served (%s)", self.spec.resource, version)
            self._reported_absent = False
        if self.version is not None and self.version != version:
            self.resource_version = ""  # versions do not share resourceVersion watches
        self.version = version
        self._go(Signal.FOUND)
        return []

    def _absent(self, now: float) -> list[Change]:
        if self.phase is not Phase.ABSENT:
            self._go(Signal.MISSING)
        self.synced = True
        self.failures, self.error, self.last_healthy = 0, None, now
        self.resource_version = ""
        changes: list[Change] = [Delete((k, ns, name)) for (ns, name), (_, k) in
                                 self._known.items()]
        self._known.clear()
        return changes

    def listed(self, items: list[dict[str, object]], resource_version: str,
               now: float) -> list[Change]:
        """A complete list arrived: the changes that take the store from what it holds to it.

        Items of a list carry no ``kind``/``apiVersion`` for built-in types; they are filled
        in from the spec before parsing.
        """
        seen: dict[Key, tuple[str, str]] = {}
        changes: list[Change] = []
        for raw in items:
            key, rv = _identity(raw)
            stored = self._known.get(key)
            if stored is not None and stored[0] == rv and rv:
                seen[key] = stored
                continue
            changes.extend(self._put(raw, key, rv))
            seen[key] = self._known[key]
        for key, (_, kind) in self._known.items():
            if key not in seen:
                changes.append(Delete((kind, *key)))
        self._known = seen
        self.resource_version = resource_version
        if self.synced:
            self.relists += 1
        self.synced = True
        self._healthy(now)
        self._go(Signal.LISTED)
        return changes

    def event(self, kind: str, raw: Mapping[str, object], now: float) -> list[Change]:
        """One watch event (ADDED, MODIFIED, DELETED or BOOKMARK)."""
        key, rv = _identity(raw)
        if rv:
            self.resource_version = rv
        self._healthy(now)
        if kind == "BOOKMARK":
            return []
        self.events += 1
        if kind == "DELETED":
            stored = self._known.pop(key, None)
            return [] if stored is None else [Delete((stored[1], *key))]
        if kind not in ("ADDED", "MODIFIED"):
            _log.warning("%s: ignored a watch event of type %r", self.spec.resource, kind)
            return []
        stored = self._known.get(key)
        if stored is not None and stored[0] == rv and rv:
            return []  # already applied (the list included it)
        return self._put(dict(raw), key, rv)

    def connected(self, now: float) -> None:
        """A watch request was answered 200: the stream is live, the kind is current."""
        self._healthy(now)

    @property
    def current(self) -> bool:
        """Whether the store holds this kind as the API server has it now (to the watch's
        latency): watching on a live stream, or absent from the cluster."""
        return self.failures == 0 and self.phase in (Phase.WATCHING, Phase.ABSENT)

    def watch_ended(self, now: float) -> None:
        """The server closed the watch cleanly (its timeoutSeconds): resume from here."""
        self._healthy(now)
        self._go(Signal.WATCH_ENDED)

    def expired(self) -> None:
        """410 Gone: the resourceVersion is too old to resume from; list again."""
        self._go(Signal.EXPIRED)
        self.resource_version = ""

    def failed(self, status: int | None, detail: str, now: float, *, verb: str) -> float:
        """A request failed; returns how long to wait before ``retry()``.

        Args:
            status: The HTTP status (None: the connection failed or timed out, and the
                watch can resume; 0 or less: something else failed, list again).
            detail: What went wrong, for the status report.
            verb: ``list`` or ``watch`` (403 messages name the permission).
        """
        if self.phase is Phase.WATCHING and self.failures == 0:
            self.last_healthy = now  # it was current until this moment
        self.failures += 1
        # A network error mid-watch lost nothing the resourceVersion cannot recover; an API
        # error (401 after a token rotation, 403, 5xx) may outlast it: list again.
        self._resume = status is None and self.phase is Phase.WATCHING and bool(
            self.resource_version)
        relist = self.phase is Phase.DISCOVERING
        if status == 403:
            message = str(MissingPermission(self.spec, self.namespace, verb, detail))
        elif status is None or status <= 0:  # no HTTP status: the connection, or a bug
            message = f"{verb} {self.spec.resource}: {detail}"
        else:
            message = f"{verb} {self.spec.resource}: HTTP {status}: {detail}"
        if message != self.error:
            _log.warning("%s (retrying with backoff)", message)
        self.error = message
        self._go(Signal.FAILED)
        if relist:
            self._resume = False
        return self.backoff.delay(self.failures, self.rand)

    def retry(self) -> Phase:
        """The backoff is over: resume the watch, list again, or rediscover the version."""
        if self.version is None:
            return self._go(Signal.RECHECK)
        return self._go(Signal.RESUME if self._resume else Signal.RELIST)

    def recheck(self) -> Phase:
        """Look for an absent kind again (the CRD may have been installed since)."""
        return self._go(Signal.RECHECK)

    def stop(self) -> None:
        self._go(Signal.STOP)

    # -- helpers ----------------------------------------------------------------------

    def _healthy(self, now: float) -> None:
        if self.failures and self.error:
            _log.info("%s: recovered", self.spec.resource)
        self.failures, self.error, self.last_healthy = 0, None, now

    def _put(self, raw: dict[str, object], key: Key, rv: str) -> list[Change]:
        spec = self.spec
        raw.setdefault("kind", spec.kind)
        raw.setdefault("apiVersion",
                       f"{spec.group}/{self.version}" if spec.group else str(self.version))
        if spec.keep_data is not None and isinstance(raw.get("data"), Mapping):
            data = raw["data"]
            assert isinstance(data, Mapping)
            raw["data"] = {k: v for k, v in data.items() if k in spec.keep_data}
        obj, errors = parse_object(raw, key[0] or "default")
        stored_as = type(obj).__name__ if obj is not None else spec.stored_as
        previous = self._known.get(key)
        self._known[key] = (rv, stored_as)
        changes: list[Change] = []
        if previous is not None and previous[1] != stored_as:
            changes.append(Delete((previous[1], *key)))  # it was stored under another kind
        if obj is None and not errors:
            self.unparsed += 1
            if previous is not None and previous[1] == stored_as:
                changes.append(Delete((stored_as, *key)))
            return changes
        changes.append(Put((stored_as, *key), obj, tuple(errors)))
        return changes

    def object_count(self) -> int:
        return len(self._known)

    def statistics(self) -> KindStatus:
        return KindStatus(
            kind=self.spec.kind, group=self.spec.group, version=self.version,
            namespace=self.namespace, phase=self.phase, synced=self.synced,
            objects=len(self._known), resource_version=self.resource_version,
            failures=self.failures, last_healthy=self.last_healthy, error=self.error,
            relists=self.relists, events=self.events,
        )


def _identity(raw: Mapping[str, object]) -> tuple[Key, str]:
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping):
        return ("", ""), ""
    ns, name, rv = meta.get("namespace"), meta.get("name"), meta.get("resourceVersion")
    return (ns if isinstance(ns, str) else "", name if isinstance(name, str) else ""), (
        rv if isinstance(rv, str) else "")
