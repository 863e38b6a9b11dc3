"""Watching: a daemon thread reloads on file changes and stops promptly.

These tests use real files and the real watcher. They wait for outcomes with bounded
``Event.wait`` calls (10 s, far above the ~1 s they take) so that a loaded machine makes them
slower, not flaky.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchfiles import Change

from meshclient.sources import FileSource, ManifestSet
from meshclient.sources._watch import watch_targets
from meshclient.store import Store

Write = Callable[[str, str], Path]

WAIT = 10.0
"""Seconds to wait for a reload the watcher should make within about one."""
STOP_WITHIN = 2.0
ADDED = Change.added


def route(name: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  hostnames: [a.example.com]
"""


class Until:
    """An ``on_change`` that sets an event once the served names satisfy a condition."""

    def __init__(self, condition: Callable[[set[str]], bool]) -> None:
        self.condition = condition
        self.event = threading.Event()
        self.calls = 0

    def __call__(self, manifests: ManifestSet) -> None:
        self.calls += 1
        if self.condition({obj.meta.name for obj in manifests.objects}):
            self.event.set()

    def wait(self) -> bool:
        return self.event.wait(WAIT)


@pytest.fixture
def started() -> Iterator[list[FileSource]]:
    """Sources appended here are stopped at teardown, even when a test fails."""
    sources: list[FileSource] = []
    yield sources
    for source in sources:
        source.stop()


def start(started: list[FileSource], source: FileSource) -> FileSource:
    started.append(source)
    source.start()
    return source


class TestWatch:
    def test_watch_new_file_in_directory_reloaded(self, write: Write, tmp_path: Path,
                                                  started: list[FileSource]) -> None:
        """A file written into a watched directory is loaded without calling reload()."""
        write("a.yaml", route("r1"))
        until = Until(lambda names: "r2" in names)
        store = Store()
        source = start(started, FileSource([tmp_path], store=store, on_change=until,
                                           debounce=0.05))
        assert source.watching
        write("sub/b.yaml", route("r2"))
        assert until.wait()
        assert {name for _, name in store.snapshot.of("HTTPRoute")} == {"r1", "r2"}
        assert source.status().watching

    def test_watch_change_after_watch_established_reloaded_by_event(
        self, write: Write, tmp_path: Path, started: list[FileSource]
    ) -> None:
        """Once the watch is up (its first reload done), a change in a subdirectory arrives
        as an event: nothing else would reload."""
        write("sub/a.yaml", route("r1"))
        until = Until(lambda names: names == {"r1", "r2"})
        source = start(started, FileSource([tmp_path], on_change=until, debounce=0.05))
        deadline = time.monotonic() + WAIT
        while source.status().reloads < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.status().reloads >= 2
        write("sub/b.yaml", route("r2"))
        assert until.wait()

    def test_watch_restart_after_stop_watches_again(
        self, write: Write, tmp_path: Path, started: list[FileSource]
    ) -> None:
        """A stopped source can be started again and picks up what changed meanwhile."""
        write("a.yaml", route("r1"))
        until = Until(lambda names: "r2" in names)
        source = start(started, FileSource([tmp_path], on_change=until, debounce=0.05))
        assert source.stop()
        write("b.yaml", route("r2"))
        source.start()
        assert until.wait()

    def test_watch_stop_returns_promptly_and_ends_thread(self, write: Write, tmp_path: Path,
                                                         started: list[FileSource]) -> None:
        """``stop()`` sets the stop event and joins: the thread ends within a couple of
        seconds, and later changes are no longer picked up."""
        write("a.yaml", route("r1"))
        until = Until(lambda names: "r2" in names)
        source = start(started, FileSource([tmp_path], on_change=until))
        time.sleep(0.2)  # let the thread get into watchfiles' wait
        began = time.monotonic()
        assert source.stop()
        assert time.monotonic() - began < STOP_WITHIN
        assert not source.watching
        write("b.yaml", route("r2"))
        assert not until.event.wait(1.5)

    def test_watch_start_twice_raises_runtime_error(self, tmp_path: Path,
                                                    started: list[FileSource]) -> None:
        """Starting a source that is already watching is a mistake, reported as one."""
        source = start(started, FileSource([tmp_path]))
        with pytest.raises(RuntimeError, match="already watching"):
            source.start()

    def test_watch_context_manager_starts_and_stops(self, tmp_path: Path) -> None:
        """``with FileSource(...)`` watches inside the block and not after it."""
        with FileSource([tmp_path]) as source:
            assert source.watching
        assert not source.watching

    def test_watch_stop_without_start_is_a_no_op(self, tmp_path: Path) -> None:
        """``stop()`` on a source that never watched returns True at once."""
        assert FileSource([tmp_path]).stop()

    def test_watch_explicit_file_replaced_by_rename_reloaded(
        self, write: Write, tmp_path: Path, started: list[FileSource]
    ) -> None:
        """Editors save by renaming a new file over the old; a watched file path still
        reloads, because its directory is what is watched."""
        path = write("a.yaml", route("r1"))
        until = Until(lambda names: names == {"r2"})
        start(started, FileSource([path], on_change=until, debounce=0.05))
        temporary = write("a.yaml.tmp~", route("r2"))
        os.replace(temporary, path)
        assert until.wait()

    @pytest.mark.parametrize("given", ["file", "directory"])
    def test_watch_configmap_symlink_swap_reloaded(
        self, write: Write, tmp_path: Path, started: list[FileSource], given: str
    ) -> None:
        """A Kubernetes ConfigMap volume updates by swapping its hidden ``..data`` symlink to
        a new directory; the volume, or a file in it, is reloaded."""
        volume = tmp_path / "vol"
        write("vol/..v1/routes.yaml", route("r1"))
        os.symlink("..v1", volume / "..data")
        os.symlink("..data/routes.yaml", volume / "routes.yaml")
        until = Until(lambda names: names == {"r2"})
        path = volume / "routes.yaml" if given == "file" else volume
        source = start(started, FileSource([path], on_change=until, debounce=0.05))
        assert [obj.meta.name for obj in source.manifests.objects] == ["r1"]  # type: ignore[union-attr]
        write("vol/..v2/routes.yaml", route("r2"))
        os.symlink("..v2", volume / "..data_tmp")
        os.replace(volume / "..data_tmp", volume / "..data")
        assert until.wait()

    def test_watch_missing_directory_created_later_loaded(
        self, write: Write, tmp_path: Path, started: list[FileSource]
    ) -> None:
        """A given directory that does not exist yet is picked up once it is created."""
        write("a.yaml", route("r1"))
        later = tmp_path / "later"
        until = Until(lambda names: "r2" in names)
        source = start(started, FileSource([tmp_path / "a.yaml", later], on_change=until,
                                           debounce=0.05))
        assert source.status().failed == 1
        write("later/deep/b.yaml", route("r2"))
        assert until.wait()
        assert source.status().failed == 0

    def test_watch_consumer_failure_does_not_end_the_thread(
        self, write: Write, tmp_path: Path, started: list[FileSource]
    ) -> None:
        """An ``on_change`` that raises on one reload is logged; the next change still
        reloads."""
        write("a.yaml", route("r1"))
        reached = threading.Event()

        def flaky(manifests: ManifestSet) -> None:
            served = {obj.meta.name for obj in manifests.objects}
            if "r2" in served and "r3" not in served:
                raise RuntimeError("consumer bug")
            if "r3" in served:
                reached.set()

        source = start(started, FileSource([tmp_path], on_change=flaky, debounce=0.05))
        write("b.yaml", route("r2"))
        deadline = time.monotonic() + WAIT
        while not isinstance(source.last_error, RuntimeError) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(source.last_error, RuntimeError)
        write("c.yaml", route("r3"))
        assert reached.wait(WAIT)
        assert source.watching


class TestTargets:
    def test_watch_targets_file_paths_watch_their_directory(self, tmp_path: Path) -> None:
        """A file is watched through its directory, so a rename over it is seen; other
        files there are ignored, the kubelet's ``..data`` swap is not."""
        file = str(tmp_path / "a.yaml")
        targets = watch_targets([file])
        assert targets.roots == (str(tmp_path),)
        assert targets.accepts(ADDED, file)
        assert not targets.accepts(ADDED, str(tmp_path / "b.yaml"))
        assert targets.accepts(ADDED, str(tmp_path / "..data"))

    def test_watch_targets_directories_watched_one_by_one(self, tmp_path: Path) -> None:
        """A given directory and its non-hidden subdirectories are each a root, watched
        non-recursively; a directory or file given inside it adds no root."""
        (tmp_path / "sub" / "deeper").mkdir(parents=True)
        (tmp_path / ".git" / "objects").mkdir(parents=True)
        targets = watch_targets([str(tmp_path), str(tmp_path / "sub"),
                                 str(tmp_path / "sub" / "a.yaml")])
        assert targets.roots == (
            str(tmp_path), str(tmp_path / "sub"), str(tmp_path / "sub" / "deeper"))
        assert targets.accepts(ADDED, str(tmp_path / "x" / "y.yaml"))
        assert not targets.accepts(ADDED, str(tmp_path / "x.swp"))

    def test_watch_targets_missing_parent_watches_nothing(self, tmp_path: Path) -> None:
        """A path whose directory does not exist either gives no root (it is re-checked)."""
        assert watch_targets([str(tmp_path / "no" / "a.yaml")]).roots == ()
