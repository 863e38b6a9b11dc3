"""Stateful property: any sequence of edits, breakages, deletions and touches, each followed
by a reload, serves exactly what a simple model of "last good version per file" predicts,
and parses a file only when its content is new."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from meshclient.sources import FileSource, ManifestError

FILES = ("a.yaml", "b.yaml", "sub/c.yaml")
BROKEN = ("kind: [unclosed\n", "apiVersion: v1\n  bad: indent\n")


def content(file: str, names: frozenset[str]) -> str:
    # Names are prefixed with the file so files never hold duplicates of each other.
    prefix = file.replace("/", "-").removesuffix(".yaml")
    return "---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {prefix}-{n}}}\n"
        for n in sorted(names)
    )


class ReloadMachine(RuleBasedStateMachine):
    """Any reload sequence keeps each file's last good version and parses new content once."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="meshclient-states-"))
        (self.root / "sub").mkdir()
        self.source = FileSource([self.root])
        self.source.load()
        self.served: dict[str, frozenset[str]] = {}
        """The model: per file on disk, the names of its last good version."""
        self.broken: set[str] = set()
        self.last_read: dict[str, str] = {}
        """Per file the scan knows, the content it last read (and so will not parse again)."""
        self.parses = 0

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _write(self, file: str, text: str) -> None:
        (self.root / file).write_text(text)
        if self.last_read.get(file) != text:
            self.parses += 1
        self.last_read[file] = text

    @rule(file=st.sampled_from(FILES), names=st.frozensets(st.sampled_from("xyz"), max_size=3))
    def write_good(self, file: str, names: frozenset[str]) -> None:
        self._write(file, content(file, names))
        self.served[file] = names
        self.broken.discard(file)
        self.source.reload()

    @rule(file=st.sampled_from(FILES), text=st.sampled_from(BROKEN))
    def write_broken(self, file: str, text: str) -> None:
        self._write(file, text)
        self.served.setdefault(file, frozenset())
        self.broken.add(file)
        self.source.reload()

    @rule(file=st.sampled_from(FILES))
    def delete(self, file: str) -> None:
        path = self.root / file
        if path.exists():
            path.unlink()
        self.served.pop(file, None)
        self.broken.discard(file)
        self.last_read.pop(file, None)
        self.source.reload()

    @rule(file=st.sampled_from(FILES))
    def touch(self, file: str) -> None:
        path = self.root / file
        if path.exists():
            os.utime(path)
        self.source.reload()

    @invariant()
    def serves_the_last_good_version_of_each_file(self) -> None:
        manifests = self.source.manifests
        assert manifests is not None
        expected = {
            f"{file.replace('/', '-').removesuffix('.yaml')}-{n}"
            for file, names in self.served.items() for n in names
        }
        assert {obj.meta.name for obj in manifests.objects} == expected

    @invariant()
    def reports_exactly_the_broken_files(self) -> None:
        manifests = self.source.manifests
        assert manifests is not None
        reported = {(e.reason, e.path) for e in manifests.errors if isinstance(e, ManifestError)}
        assert reported == {("InvalidSyntax", str(self.root / f)) for f in self.broken}

    @invariant()
    def parses_only_new_content(self) -> None:
        assert self.source.status().parses == self.parses


TestFileSourceReloadSequences = ReloadMachine.TestCase
TestFileSourceReloadSequences.settings = settings(
    max_examples=40, stateful_step_count=12, deadline=None)
