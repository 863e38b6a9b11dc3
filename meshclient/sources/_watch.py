"""A daemon thread that calls back when files under the manifest paths change.

What is watched, each directory on its own (never recursively): every directory a scan reads
(a given directory and its non-hidden subdirectories), and the parent of each given file,
not the file itself, because editors and Kubernetes ConfigMap volumes replace a file by
renaming another over it (the kubelet swaps a hidden ``..data`` symlink), which an inotify
watch on the old file never reports. Watching the parents recursively instead would put a
watch on every directory under, say, the home directory that holds one given file.

The set of directories is recomputed after each batch of changes (a subdirectory may have
appeared) and the watch restarts when it differs. A given path that does not exist yet is
covered by its parent; if the parent is missing too, the given paths are re-checked once a
second.

The callback only says "something changed": the file source re-stats every file and
re-parses only changed ones, so a spurious or coalesced event costs stats, not parses.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import attrs
import watchfiles

__all__ = ["Watcher", "watch_targets"]

_log = logging.getLogger("meshclient.sources")

_STEP_MS: Final = 50
"""How long watchfiles waits for quiet before it yields a batch; also how often the rust
side checks the stop event, which bounds how long ``stop()`` takes."""
_TICK_MS: Final = 1000
"""How often the loop wakes without changes, to see whether missing paths appeared."""
_MAX_BACKOFF: Final = 30.0


@attrs.frozen
class Targets:
    """What to hand to ``watchfiles.watch`` for a set of manifest paths, right now."""

    roots: tuple[str, ...]
    """Directories to watch, each non-recursively."""
    files: frozenset[str]
    """Absolute paths given as files (existing or not)."""
    dirs: tuple[str, ...]
    """Absolute paths of given directories, each ending with a separator."""
    parents: frozenset[str]
    """Directories watched for a given file in them."""
    shape: tuple[tuple[bool, bool], ...]
    """For each given path: whether it is a directory, and whether its parent is one; when
    this changes, the targets must be recomputed."""

    def accepts(self, change: watchfiles.Change, path: str) -> bool:
        """Whether an event can concern a manifest (the watchfiles filter protocol)."""
        if path in self.files or path.startswith(self.dirs):
            return _DEFAULT_FILTER(change, path)
        # The kubelet's atomic writer: ``..data`` and ``..<timestamp>`` next to the file.
        return os.path.dirname(path) in self.parents and os.path.basename(path).startswith("..")


_DEFAULT_FILTER: Final = watchfiles.DefaultFilter()


def watch_targets(paths: Sequence[str]) -> Targets:
    """The directories to watch for ``paths``, as the filesystem is now."""
    roots: dict[str, None] = {}
    visited: set[str] = set()
    dirs: list[str] = []
    files: set[str] = set()
    parents: set[str] = set()
    for path in paths:
        full = os.path.abspath(path)
        if os.path.isdir(full):
            dirs.append(os.path.join(full, ""))
            roots.update(dict.fromkeys(_directories(full, visited)))
            continue
        files.add(full)
        parent = os.path.dirname(full)
        if os.path.isdir(parent):
            parents.add(parent)
            roots[parent] = None
    return Targets(
        roots=tuple(roots), files=frozenset(files), dirs=tuple(dirs), parents=frozenset(parents),
        shape=shape_of(paths),
    )


def shape_of(paths: Sequence[str]) -> tuple[tuple[bool, bool], ...]:
    """What ``Targets.shape`` would be now: a cheap check, a few stats."""
    return tuple(
        (os.path.isdir(path), os.path.isdir(os.path.dirname(os.path.abspath(path))))
        for path in paths
    )


def _directories(directory: str, visited: set[str]) -> Iterator[str]:
    """``directory`` and the non-hidden directories under it, as a scan walks them."""
    real = os.path.realpath(directory)
    if real in visited:
        return
    visited.add(real)
    yield directory
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.name.startswith(".") and entry.is_dir():
                yield from _directories(entry.path, visited)
        except OSError:
            continue


@attrs.define(eq=False)
class Watcher:
    """Calls ``on_change`` (on its own thread) after each burst of changes under ``paths``.

    ``on_change`` is also called once each time a watch is (re)established, to catch changes
    made before it saw them. Exceptions from ``on_change`` or the watcher go to ``report``
    and never end the thread; a watcher that fails is retried with growing pauses, polling
    instead of inotify from then on (inotify can run out of watches).
    """

    paths: tuple[str, ...]
    on_change: Callable[[], None]
    report: Callable[[Exception], None]
    debounce_ms: int
    _stop: threading.Event = attrs.field(init=False, factory=threading.Event)
    _thread: threading.Thread | None = attrs.field(init=False, default=None)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="meshclient-files", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end and wait up to ``timeout`` seconds; whether it ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def _run(self) -> None:
        failures = 0
        force_polling: bool | None = None
        while not self._stop.is_set():
            targets = watch_targets(self.paths)
            try:
                if targets.roots:
                    self._watch(targets, force_polling)
                else:
                    self._wait_for(targets)
                failures = 0
            except FileNotFoundError:
                # A root vanished between looking and watching: look again.
                self._stop.wait(_STEP_MS / 1000)
            except Exception as exc:
                failures += 1
                pause = min(_MAX_BACKOFF, 0.5 * 2**failures)
                _log.warning("watching %s failed (%s); retrying in %.1f s by polling",
                             ", ".join(targets.roots), exc, pause)
                self.report(exc)
                force_polling = True
                self._stop.wait(pause)

    def _watch(self, targets: Targets, force_polling: bool | None) -> None:
        established = False
        for changes in watchfiles.watch(
            *targets.roots, watch_filter=targets.accepts, debounce=self.debounce_ms,
            step=_STEP_MS, stop_event=self._stop, rust_timeout=_TICK_MS, yield_on_timeout=True,
            raise_interrupt=False, recursive=False, force_polling=force_polling,
            ignore_permission_denied=True,
        ):
            if changes or not established:
                established = True
                self._call()
            # After changes, directories may have come or gone; otherwise only check the
            # given paths, which is cheaper than walking the tree every tick.
            if (watch_targets(self.paths) != targets if changes
                    else shape_of(self.paths) != targets.shape):
                return  # watch the new set

    def _wait_for(self, targets: Targets) -> None:
        while not self._stop.wait(_TICK_MS / 1000):
            if shape_of(self.paths) != targets.shape:
                self._call()
                return

    def _call(self) -> None:
        try:
            self.on_change()
        except Exception as exc:  # the thread must outlive any one failure
            _log.exception("reloading manifests failed; keeping the last good snapshot")
            self.report(exc)
