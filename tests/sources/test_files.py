"""``FileSource``: the initial load, reloads that re-parse only what changed, and publishing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from meshclient.model import HTTPRoute
from meshclient.sources import FileSource, ManifestError, ManifestSet
from meshclient.store import Store

Write = Callable[[str, str], Path]

_HOUR_NS = 3600 * 10**9


def route(name: str, host: str = "a.example.com") -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  hostnames: [{host}]
  rules:
  - backendRefs: [{{name: svc, port: 80}}]
"""


BROKEN = "apiVersion: v1\nkind: [unclosed\n"
"""Invalid YAML: the error is on line 3 (the end of the file), column 1."""


def names(manifests: ManifestSet | None) -> list[str]:
    assert manifests is not None
    return [obj.meta.name for obj in manifests.objects]


def age(*paths: Path) -> None:
    """Date files an hour back, so their stat is trusted (not "racy") on the next scan."""
    for path in paths:
        past = time.time_ns() - _HOUR_NS
        os.utime(path, ns=(past, past))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestLoad:
    def test_load_publishes_objects_and_object_errors_to_store(self, write: Write) -> None:
        """``load()`` replaces the store's objects; object errors go along with them."""
        path = write("a.yaml", route("r1") + "---\n" + route("r2").replace(
            "- backendRefs", "- matches: [{path: {type: Bogus}}]\n    backendRefs"))
        store = Store()
        source = FileSource([path], store=store)
        manifests = source.load()
        assert names(manifests) == ["r1", "r2"]
        snapshot = store.snapshot
        assert isinstance(snapshot.get("HTTPRoute", "default", "r1"), HTTPRoute)
        assert [e.name for e in snapshot.errors] == ["r2"]
        assert source.manifests is manifests

    def test_load_calls_on_change_after_the_store(self, write: Write) -> None:
        """``on_change`` sees the ManifestSet after the store already holds it."""
        path = write("a.yaml", route("r1"))
        store = Store()
        seen: list[tuple[ManifestSet, int]] = []
        source = FileSource(path, store=store,
                            on_change=lambda m: seen.append((m, len(store.snapshot.of(
                                "HTTPRoute")))))
        manifests = source.load()
        assert seen == [(manifests, 1)]

    def test_load_no_path_exists_raises_and_publishes_nothing(self, tmp_path: Path) -> None:
        """When none of the paths exists, ``load()`` raises a ManifestError naming the first
        and leaves the store alone."""
        store = Store()
        source = FileSource([tmp_path / "a", tmp_path / "b"], store=store)
        with pytest.raises(ManifestError, match="nor does any other path") as info:
            source.load()
        assert (info.value.reason, info.value.path) == ("NotFound", str(tmp_path / "a"))
        assert store.snapshot.version == 0
        assert source.manifests is None

    def test_load_broken_files_still_loads_the_rest(self, write: Write, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
        """A broken or missing file is reported and logged; everything else is published."""
        write("a.yaml", route("r1"))
        broken = write("b.yaml", BROKEN)
        store = Store()
        with caplog.at_level(logging.WARNING, logger="meshclient.sources"):
            source = FileSource([tmp_path, tmp_path / "missing.yaml"], store=store)
            manifests = source.load()
        assert names(manifests) == ["r1"]
        assert [(e.reason, e.path) for e in manifests.errors
                if isinstance(e, ManifestError)] == [
            ("InvalidSyntax", str(broken)), ("NotFound", str(tmp_path / "missing.yaml"))]
        assert len(store.snapshot.of("HTTPRoute")) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2
        assert messages[0].startswith(f"{broken}:3:1 documents[0]: is not valid YAML")
        assert messages[0].endswith("nothing is loaded from it (no good version yet)")

    def test_filesource_empty_paths_raises_value_error(self) -> None:
        """At least one path is required, and the error names the argument."""
        with pytest.raises(ValueError, match="paths"):
            FileSource([])

    def test_filesource_negative_debounce_raises_value_error(self, tmp_path: Path) -> None:
        """``debounce`` is a duration in seconds and cannot be negative."""
        with pytest.raises(ValueError, match="debounce"):
            FileSource([tmp_path], debounce=-1)


class TestReload:
    def test_reload_changed_file_publishes_new_objects(self, write: Write) -> None:
        """Editing a file replaces its objects and reports it as modified."""
        path = write("a.yaml", route("r1"))
        store = Store()
        source = FileSource([path], store=store)
        source.load()
        write("a.yaml", route("r2") + "---\n" + route("r3"))
        changes = source.reload()
        assert changes.changed
        assert changes.modified == (str(path),)
        assert names(changes.manifests) == ["r2", "r3"]
        assert sorted(name for _, name in store.snapshot.of("HTTPRoute")) == ["r2", "r3"]

    def test_reload_nothing_changed_publishes_nothing(self, write: Write) -> None:
        """A reload that finds no change leaves the store at its version and parses nothing."""
        path = write("a.yaml", route("r1"))
        store = Store()
        calls: list[ManifestSet] = []
        source = FileSource([path], store=store, on_change=calls.append)
        source.load()
        version = store.snapshot.version
        changes = source.reload()
        assert not changes.changed
        assert changes.manifests is source.manifests
        assert store.snapshot.version == version
        assert len(calls) == 1
        assert source.status().parses == 1

    def test_reload_only_changed_files_reparsed(self, write: Write, tmp_path: Path) -> None:
        """Of three files, changing one re-reads and re-parses that one only (files whose
        stat is unchanged are not even read)."""
        paths = [write(f"{n}.yaml", route(n)) for n in ("a", "b", "c")]
        age(*paths)
        source = FileSource([tmp_path])
        source.load()
        before = source.status()
        assert (before.reads, before.parses) == (3, 3)
        write("b.yaml", route("b2"))
        changes = source.reload()
        after = source.status()
        assert (after.reads, after.parses) == (4, 4)
        assert changes.modified == (str(paths[1]),)
        assert names(changes.manifests) == ["a", "b2", "c"]

    def test_reload_touched_file_read_but_not_parsed(self, write: Write) -> None:
        """A new mtime with the same content costs a read and a hash, not a parse, and is
        no change."""
        path = write("a.yaml", route("r1"))
        age(path)
        source = FileSource([path])
        source.load()
        os.utime(path)
        changes = source.reload()
        assert not changes.changed
        status = source.status()
        assert (status.reads, status.parses) == (2, 1)

    def test_reload_broken_file_keeps_last_good_objects(
        self, write: Write, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Invalid YAML in a file that parsed before keeps its last good objects served, and
        the error names the file and the line; one WARNING says so."""
        path = write("a.yaml", route("r1"))
        other = write("b.yaml", route("r2"))
        store = Store()
        source = FileSource([path, other], store=store)
        source.load()
        write("a.yaml", BROKEN)
        with caplog.at_level(logging.WARNING, logger="meshclient.sources"):
            changes = source.reload()
            source.reload()  # same broken content: no second warning
        assert changes.failed == (str(path),)
        assert names(changes.manifests) == ["r1", "r2"]
        assert len(store.snapshot.of("HTTPRoute")) == 2
        [error] = changes.manifests.errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.path, error.line) == ("InvalidSyntax", str(path), 3)
        [record] = [f for f in changes.manifests.files if f.path == str(path)]
        assert not record.ok
        assert record.served is not None
        assert record.served != record.digest
        [message] = [r.getMessage() for r in caplog.records]
        assert message.startswith(f"{path}:3:1 documents[0]: is not valid YAML")
        assert message.endswith("; keeping the last good version")
        status = source.status()
        assert (status.failed, status.errors) == (1, 1)
        assert status.last_error is not None
        assert status.last_error.startswith(f"{path}:3:1")
        assert source.last_error is error

    def test_reload_broken_twice_keeps_the_version_before_both(self, write: Write) -> None:
        """A second, different breakage still serves the last version that parsed."""
        path = write("a.yaml", route("r1"))
        source = FileSource([path])
        source.load()
        write("a.yaml", BROKEN)
        source.reload()
        write("a.yaml", "kind: {unclosed\n")
        changes = source.reload()
        assert changes.modified == (str(path),)
        assert names(changes.manifests) == ["r1"]
        [error] = changes.manifests.errors
        assert isinstance(error, ManifestError)
        assert error.line == 2

    def test_reload_fixed_file_clears_the_error(self, write: Write) -> None:
        """Once the file parses again, its new objects are served and its error is gone."""
        path = write("a.yaml", route("r1"))
        store = Store()
        source = FileSource([path], store=store)
        source.load()
        write("a.yaml", BROKEN)
        source.reload()
        write("a.yaml", route("r9"))
        changes = source.reload()
        assert changes.failed == ()
        assert names(changes.manifests) == ["r9"]
        assert changes.manifests.errors == ()
        assert changes.manifests.files[0].ok
        assert [name for _, name in store.snapshot.of("HTTPRoute")] == ["r9"]
        assert source.status().failed == 0

    def test_reload_deleted_file_drops_its_objects(self, write: Write, tmp_path: Path) -> None:
        """A file deleted from a watched directory takes its objects with it, silently."""
        write("a.yaml", route("r1"))
        gone = write("b.yaml", route("r2"))
        store = Store()
        source = FileSource([tmp_path], store=store)
        source.load()
        gone.unlink()
        changes = source.reload()
        assert changes.removed == (str(gone),)
        assert names(changes.manifests) == ["r1"]
        assert changes.manifests.errors == ()
        assert [name for _, name in store.snapshot.of("HTTPRoute")] == ["r1"]

    def test_reload_deleted_explicit_file_drops_objects_and_reports(self, write: Write) -> None:
        """A file given by name that disappears loses its objects and is a NotFound error."""
        path = write("a.yaml", route("r1"))
        source = FileSource([path])
        source.load()
        path.unlink()
        changes = source.reload()
        assert changes.failed == (str(path),)
        assert names(changes.manifests) == []
        [error] = changes.manifests.errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.path) == ("NotFound", str(path))
        assert not source.reload().changed  # still missing: no new change

    def test_reload_new_file_in_directory_added(self, write: Write, tmp_path: Path) -> None:
        """A file that appears under a given directory is read on the next reload."""
        write("a.yaml", route("r1"))
        source = FileSource([tmp_path])
        source.load()
        added = write("sub/b.yaml", route("r2"))
        changes = source.reload()
        assert changes.added == (str(added),)
        assert names(changes.manifests) == ["r1", "r2"]

    def test_reload_unreadable_file_keeps_last_good_objects(
        self, write: Write, tmp_path: Path
    ) -> None:
        """A file that can no longer be read (here: replaced by a FIFO) keeps serving."""
        path = write("a.yaml", route("r1"))
        source = FileSource([path])
        source.load()
        path.unlink()
        os.mkfifo(path)
        changes = source.reload()
        assert names(changes.manifests) == ["r1"]
        [error] = changes.manifests.errors
        assert isinstance(error, ManifestError)
        assert error.reason == "Unreadable"

    def test_reload_before_load_loads(self, write: Write) -> None:
        """``reload()`` on a source never loaded publishes the first set."""
        path = write("a.yaml", route("r1"))
        store = Store()
        source = FileSource([path], store=store)
        changes = source.reload()
        assert changes.added == (str(path),)
        assert store.snapshot.version == 1


class TestConsumers:
    def test_on_change_raising_is_logged_and_source_continues(
        self, write: Write, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A consumer that raises is logged on ``meshclient.sources`` and recorded as
        ``last_error``; the store is still written and later reloads still run."""
        path = write("a.yaml", route("r1"))
        store = Store()

        def explode(manifests: ManifestSet) -> None:
            raise RuntimeError("consumer bug")

        source = FileSource([path], store=store, on_change=explode)
        with caplog.at_level(logging.ERROR, logger="meshclient.sources"):
            source.load()
        assert isinstance(source.last_error, RuntimeError)
        assert "a consumer of the manifests failed" in caplog.records[0].getMessage()
        write("a.yaml", route("r2"))
        source.reload()
        assert [name for _, name in store.snapshot.of("HTTPRoute")] == ["r2"]
        assert source.status().last_error == "consumer bug"

    def test_status_counts_files_objects_errors_and_reloads(
        self, write: Write, tmp_path: Path
    ) -> None:
        """``status()`` is a frozen record of the counters, timed by the injected clock."""
        write("a.yaml", route("r1") + "---\n" + route("r2"))
        write("b.yaml", BROKEN)
        clock = Clock()
        source = FileSource([tmp_path], clock=clock)
        before = source.status()
        assert (before.files, before.reloads, before.last_reload) == (0, 0, None)
        source.load()
        clock.now = 1005.0
        source.reload()
        status = source.status()
        assert (status.files, status.objects, status.errors, status.failed) == (2, 2, 1, 1)
        assert (status.reloads, status.parses, status.last_reload) == (2, 2, 1005.0)
        assert not status.watching
