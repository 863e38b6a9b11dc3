"""The files source: manifests on disk, loaded once, reloaded on change, watched if asked.

Invariants:

- Each file is parsed once per content version: a reload stats every file and reads only
  those whose stat changed, and parses only those whose content hash changed.
- A file that cannot be read or parsed keeps serving the objects of its last good version;
  a deleted file's objects go. Every file failure is logged once per change, as a WARNING.
- Consumers (the ``Store``, then ``on_change``) see every change in scan order, one at a
  time; a consumer that raises is logged and never stops the source or its thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

import attrs

from meshclient.sources._errors import ManifestError, same_error
from meshclient.sources._manifests import (
    ManifestFile,
    ManifestSet,
    Tally,
    merge,
    normalize_paths,
    scan,
)
from meshclient.sources._watch import Watcher
from meshclient.store import Store

__all__ = ["DEFAULT_DEBOUNCE", "DEFAULT_STOP_TIMEOUT", "Changes", "FileSource",
           "FileSourceStatus"]

_log = logging.getLogger("meshclient.sources")

DEFAULT_DEBOUNCE: Final = 0.2
"""Seconds to keep gathering a burst of file events into one reload (at most)."""
DEFAULT_STOP_TIMEOUT: Final = 5.0
"""Seconds ``stop()`` waits for the watch thread (it checks every 50 ms)."""


@attrs.frozen(kw_only=True)
class Changes:
    """What one reload found, by file path, and the resulting manifests."""

    added: tuple[str, ...] = ()
    """Files (or missing paths) seen for the first time."""
    modified: tuple[str, ...] = ()
    """Files whose content, or whose failure, changed."""
    removed: tuple[str, ...] = ()
    """Files gone from the scan (deleted, or no longer under a given directory)."""
    failed: tuple[str, ...] = ()
    """Of ``added`` and ``modified``, those whose current content is not served."""
    manifests: ManifestSet

    @property
    def changed(self) -> bool:
        return bool(self.added or self.modified or self.removed)


@attrs.frozen(kw_only=True)
class FileSourceStatus:
    """A file source's counters at one moment."""

    files: int
    """File records (including missing paths and unlistable directories)."""
    objects: int
    """Objects served."""
    errors: int
    """Problems in the served set (file failures, object errors, duplicates)."""
    failed: int
    """Files whose current content is not served."""
    reloads: int
    """Scans completed, the initial load included."""
    reads: int
    """Files read (and hashed) because their stat changed."""
    parses: int
    """Files parsed because their content changed."""
    last_reload: float | None
    """When the last scan finished, by the source's clock; None before the first."""
    last_error: str | None
    """The most recent failure: a file, a consumer or the watcher; None if none yet."""
    watching: bool


def _ignore(manifests: ManifestSet) -> None:
    """The do-nothing ``on_change``."""


@attrs.define(eq=False)
class FileSource:
    """Manifest files and directories, published to a ``Store`` and/or a callback.

    Args:
        paths: Files and directories (see ``load_manifests``); a single path is accepted.
        namespace: For objects that do not name their own.
        store: Receives ``replace(objects, config_errors)`` on every change. File-level
            problems (``ManifestError``) are not ``ConfigError``s and reach only
            ``on_change``, ``manifests`` and ``status()``.
        on_change: Called with the new ``ManifestSet`` on every change, after ``store``.
            It must not call ``reload()``.
        debounce: Seconds the watch thread gathers a burst of events into one reload.
        clock: For ``status().last_reload``.

    Raises:
        ValueError: ``paths`` is empty or ``debounce`` is negative.
    """

    paths: tuple[str, ...] = attrs.field(converter=normalize_paths)
    namespace: str = attrs.field(default="default", kw_only=True)
    store: Store | None = attrs.field(default=None, kw_only=True)
    on_change: Callable[[ManifestSet], object] = attrs.field(default=_ignore, kw_only=True)
    debounce: float = attrs.field(default=DEFAULT_DEBOUNCE, kw_only=True)
    clock: Callable[[], float] = attrs.field(default=time.time, kw_only=True)
    _lock: threading.RLock = attrs.field(init=False, factory=threading.RLock)
    _cache: dict[str, ManifestFile] = attrs.field(init=False, factory=dict)
    _manifests: ManifestSet | None = attrs.field(init=False, default=None)
    _tally: Tally = attrs.field(init=False, factory=Tally)
    _reloads: int = attrs.field(init=False, default=0)
    _last_reload: float | None = attrs.field(init=False, default=None)
    _last_error: Exception | None = attrs.field(init=False, default=None)
    _watcher: Watcher | None = attrs.field(init=False, default=None)
    _consumers: tuple[Callable[[ManifestSet], object], ...] = attrs.field(init=False, default=())

    def __attrs_post_init__(self) -> None:
        store = self.store
        self._consumers = (self.on_change,) if store is None else (
            lambda manifests: store.replace(manifests.objects, manifests.config_errors),
            self.on_change,
        )

    @paths.validator
    def _check_paths(self, _: object, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError("paths: give at least one file or directory")

    @debounce.validator
    def _check_debounce(self, _: object, value: float) -> None:
        if value < 0:
            raise ValueError(f"debounce: {value!r} is negative")

    @property
    def manifests(self) -> ManifestSet | None:
        """The set last published; None before ``load()``."""
        return self._manifests

    @property
    def last_error(self) -> Exception | None:
        """The most recent failure: a file's ``ManifestError``, or what a consumer or the
        watcher raised; None if there was none."""
        return self._last_error

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.alive

    def load(self) -> ManifestSet:
        """Read every file and publish the result, whatever it is.

        Broken, unreadable and missing files do not make this fail: what can be read is
        published and the problems are in ``errors`` (and logged).

        Raises:
            ManifestError: None of ``paths`` exists: most likely a mistyped path, and there
                would be nothing to serve nor to watch. Nothing is published.
        """
        if not any(os.path.lexists(path) for path in self.paths):
            others = ", nor does any other path given" if len(self.paths) > 1 else ""
            raise ManifestError(self.paths[0], "NotFound", f"does not exist{others}")
        with self._lock:
            changes = self._scan()
            self._publish(changes.manifests)
            return changes.manifests

    def reload(self) -> Changes:
        """Re-stat every file, re-parse the changed ones, and publish if anything changed.

        Loads first if ``load()`` was never called (without its check for missing paths).
        Nothing is raised for file problems, which are reported as in ``load()``.
        """
        with self._lock:
            first = self._manifests is None
            changes = self._scan()
            if changes.changed or first:
                self._publish(changes.manifests)
            return changes

    def status(self) -> FileSourceStatus:
        """The counters now (never waits for a reload in progress)."""
        manifests = self._manifests
        error = self._last_error
        return FileSourceStatus(
            files=0 if manifests is None else len(manifests.files),
            objects=0 if manifests is None else len(manifests.objects),
            errors=0 if manifests is None else len(manifests.errors),
            failed=0 if manifests is None else len(manifests.failed),
            reloads=self._reloads, reads=self._tally.reads, parses=self._tally.parses,
            last_reload=self._last_reload, last_error=None if error is None else str(error),
            watching=self.watching,
        )

    def start(self) -> None:
        """Load if not yet loaded, then reload on changes from a daemon thread.

        Raises:
            RuntimeError: Already watching.
            ManifestError: As ``load()``.
        """
        with self._lock:
            if self.watching:
                raise RuntimeError("FileSource.start: already watching; call stop() first")
            if self._manifests is None:
                self.load()
            self._watcher = Watcher(
                self.paths, self._reload_from_watch, self._record, round(self.debounce * 1000),
            )
            self._watcher.start()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """End the watch thread, waiting up to ``timeout`` seconds; whether it ended.

        A reload in progress finishes first. Stopping a source that is not watching is a
        no-op that returns True.
        """
        watcher = self._watcher
        if watcher is None:
            return True
        stopped = watcher.stop(timeout)
        if not stopped:
            _log.warning("the manifest watch thread did not stop within %.1f s", timeout)
        return stopped

    def __enter__(self) -> FileSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _reload_from_watch(self) -> None:
        self.reload()

    def _record(self, exc: Exception) -> None:
        self._last_error = exc

    def _scan(self) -> Changes:
        previous = self._cache
        records = scan(self.paths, self.namespace, previous, self._tally)
        added: list[str] = []
        modified: list[str] = []
        failed: list[str] = []
        for record in records:
            old = previous.get(record.path)
            if old is None:
                added.append(record.path)
            elif old is not record and (
                old.digest != record.digest or not same_error(old.failure, record.failure)
            ):
                modified.append(record.path)
            else:
                continue
            if record.failure is not None:
                failed.append(record.path)
                self._warn(record, record.failure)
            elif old is not None and old.failure is not None:
                _log.info("%s: read again; serving its current version", record.path)
        self._cache = {record.path: record for record in records}
        removed = [path for path in previous if path not in self._cache]
        manifests = self._manifests
        if manifests is None or added or modified or removed:
            manifests = merge(records)
        self._reloads += 1
        self._last_reload = self.clock()
        return Changes(added=tuple(added), modified=tuple(modified), removed=tuple(removed),
                       failed=tuple(failed), manifests=manifests)

    def _warn(self, record: ManifestFile, failure: ManifestError) -> None:
        self._last_error = failure
        if failure.reason == "NotFound":
            _log.warning("%s; nothing is loaded from it", failure)
        elif record.served is not None:
            _log.warning("%s; keeping the last good version", failure)
        else:
            _log.warning("%s; nothing is loaded from it (no good version yet)", failure)

    def _publish(self, manifests: ManifestSet) -> None:
        self._manifests = manifests
        for consumer in self._consumers:
            try:
                consumer(manifests)
            except Exception as exc:  # a broken consumer must not stop the source
                _log.exception("a consumer of the manifests failed: %r", consumer)
                self._last_error = exc

