"""``load_manifests``: which files are read, how documents become objects, what is reported."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from meshclient.errors import ConfigError, SourceError
from meshclient.model import HTTPRoute, ObjectKey, Service
from meshclient.sources import (
    LOADER,
    ManifestConfigError,
    ManifestError,
    ManifestSet,
    Origin,
    load_manifests,
)

Write = Callable[[str, str], Path]


def route(name: str, host: str = "a.example.com", namespace: str | None = None) -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}{ns}}}
spec:
  hostnames: [{host}]
  rules:
  - backendRefs: [{{name: svc, port: 80}}]
"""


def service(name: str) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  ports: [{{port: 80}}]
"""


def names(manifests: ManifestSet) -> list[str]:
    return [obj.meta.name for obj in manifests.objects]


def manifest_errors(manifests: ManifestSet) -> list[ManifestError]:
    return [e for e in manifests.errors if isinstance(e, ManifestError)]


class TestDocuments:
    def test_load_multi_document_yaml_reads_every_document_in_order(self, write: Write) -> None:
        """Each ``---``-separated document is one object, kept in file order."""
        path = write("a.yaml", route("r1") + "---\n" + service("svc") + "---\n" + route("r2"))
        manifests = load_manifests([path])
        assert names(manifests) == ["r1", "svc", "r2"]
        assert [type(o) for o in manifests.objects] == [HTTPRoute, Service, HTTPRoute]
        assert manifests.errors == ()

    def test_load_empty_documents_skipped_silently(self, write: Write) -> None:
        """Empty documents (``---`` twice, comments only, an empty file) are no objects and
        no errors, yet still count in document indexes."""
        path = write("a.yaml", "---\n# nothing\n---\n" + route("r1") + "---\n---\n")
        empty = write("empty.yaml", "")
        manifests = load_manifests([path, empty])
        assert names(manifests) == ["r1"]
        assert manifests.errors == ()
        assert manifests.origins[ObjectKey("HTTPRoute", "default", "r1")] == Origin(
            str(path), 1)

    def test_load_non_mapping_document_reported_and_others_kept(self, write: Write) -> None:
        """A document that is not a mapping is a NotAnObject error naming file and document."""
        path = write("a.yaml", "- just\n- a list\n---\n" + route("r1") + "---\nplain text\n")
        manifests = load_manifests([path])
        assert names(manifests) == ["r1"]
        errors = manifest_errors(manifests)
        assert [(e.reason, e.path, e.document) for e in errors] == [
            ("NotAnObject", str(path), 0), ("NotAnObject", str(path), 2)]
        assert str(errors[0]) == (
            f"{path} documents[0]: is a list, not a Kubernetes object (a mapping) (NotAnObject)")

    def test_load_kind_list_unpacks_items(self, write: Write) -> None:
        """``kind: List`` (what ``kubectl get -o yaml`` prints) yields each of its items."""
        items = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": n}} for n in "ab"]
        path = write("list.yaml", json.dumps({"apiVersion": "v1", "kind": "List",
                                               "items": items}))
        manifests = load_manifests([path])
        assert names(manifests) == ["a", "b"]
        assert manifests.origins[ObjectKey("Service", "default", "b")] == Origin(str(path), 0, 1)

    def test_load_typed_list_items_inherit_kind_and_api_version(self, write: Write) -> None:
        """Items of an ``HTTPRouteList`` (an API list response) may omit kind and apiVersion."""
        path = write("routes.yaml", """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRouteList
            items:
            - metadata: {name: r1}
              spec: {hostnames: [a.example.com]}
            - apiVersion: v1
              kind: Service
              metadata: {name: svc}
            - 3
        """)
        manifests = load_manifests([path])
        assert [type(o) for o in manifests.objects] == [HTTPRoute, Service]
        [error] = manifest_errors(manifests)
        assert (error.reason, error.document, error.item) == ("NotAnObject", 0, 2)
        assert str(error).startswith(f"{path} documents[0].items[2]: is a number (3)")

    def test_load_list_with_non_list_items_reported(self, write: Write) -> None:
        """A List whose ``items`` is not a list is an error, not an object."""
        path = write("list.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n")
        [error] = load_manifests([path]).errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.document) == ("NotAnObject", 0)
        assert "List.items is a dict, not a list" in str(error)

    def test_load_unknown_kinds_ignored_without_errors(self, write: Write) -> None:
        """Kinds meshclient does not read (Deployments, CRDs) are skipped, not errors."""
        path = write("a.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            ---
            apiVersion: example.com/v1
            kind: Widget
            metadata: {name: w}
        """)
        manifests = load_manifests([path])
        assert manifests.objects == ()
        assert manifests.errors == ()

    def test_load_object_with_errors_kept_and_errors_located(self, write: Write) -> None:
        """An object with invalid fields is still loaded; each ConfigError gains the file and
        document it came from."""
        bad = route("r2").replace("- backendRefs", "- matches: [{path: {type: Bogus}}]\n"
                                                  "    backendRefs")
        path = write("a.yaml", route("r1") + "---\n" + bad)
        manifests = load_manifests([path])
        assert names(manifests) == ["r1", "r2"]
        [error] = manifests.errors
        assert isinstance(error, ManifestConfigError)
        assert isinstance(error, ConfigError)
        assert (error.kind, error.name, error.reason) == ("HTTPRoute", "r2", "UnsupportedValue")
        assert (error.path, error.document, error.item) == (str(path), 1, None)
        assert str(error).startswith(
            f"{path} documents[1]: HTTPRoute default/r2: spec.rules[0].matches[0].path.type: "
            "'Bogus'")
        assert manifests.config_errors == (error,)

    def test_load_namespace_fills_objects_without_one(self, write: Write) -> None:
        """``namespace`` applies to objects that name none; others keep their own."""
        path = write("a.yaml", route("r1") + "---\n" + route("r2", namespace="other"))
        manifests = load_manifests([path], namespace="team")
        assert [o.meta.namespace for o in manifests.objects] == ["team", "other"]

    def test_loader_libyaml_used_when_available(self) -> None:
        """The C loader is used whenever PyYAML has libyaml (ECOSYSTEM.md §9)."""
        import yaml

        expected = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
        assert expected is LOADER


class TestSyntax:
    def test_load_invalid_yaml_reports_line_column_and_document(self, write: Write) -> None:
        """A YAML syntax error names the file, the 1-based line and column, and the document;
        nothing from that file is loaded."""
        path = write("a.yaml", route("r1") + "---\nkind: [unclosed\nmetadata: {}\n")
        other = write("b.yaml", service("svc"))
        manifests = load_manifests([path, other])
        assert names(manifests) == ["svc"]
        [error] = manifests.errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.path, error.document) == ("InvalidSyntax", str(path), 1)
        assert error.line == 10
        assert error.column is not None
        assert str(error).startswith(f"{path}:10:{error.column} documents[1]: is not valid YAML")
        [record, _] = manifests.files
        assert not record.ok
        assert record.failure is error

    def test_load_invalid_json_reports_line_and_column(self, write: Write) -> None:
        """A ``.json`` file is parsed as JSON; its syntax errors carry line and column."""
        path = write("a.json", '{\n  "kind": \n}\n')
        [error] = load_manifests([path]).errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.line, error.column) == ("InvalidSyntax", 3, 1)
        assert str(error) == f"{path}:3:1: is not valid JSON: Expecting value (InvalidSyntax)"

    def test_load_json_file_read_as_objects(self, write: Write) -> None:
        """JSON objects, and JSON Lists, load like their YAML equivalents."""
        path = write("a.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}}]}))
        assert names(load_manifests([path])) == ["svc"]

    def test_load_bytes_not_utf8_reported(self, tmp_path: Path) -> None:
        """Content that is not text is an InvalidSyntax error, not a crash."""
        path = tmp_path / "a.yaml"
        path.write_bytes(b"kind: \xff\xfe\x00bad")
        [error] = load_manifests([path]).errors
        assert isinstance(error, ManifestError)
        assert error.reason == "InvalidSyntax"

    def test_manifest_error_pickles_with_its_fields(self) -> None:
        """Errors survive pickling (they cross process boundaries in test runners and pools)."""
        error = ManifestError("a.yaml", "InvalidSyntax", "is not valid YAML: x", document=1,
                              line=2, column=3)
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), copy.args, str(copy)) == (ManifestError, error.args, str(error))
        assert copy.line == 2
        assert isinstance(error, SourceError)
        located = ManifestConfigError("HTTPRoute", "ns", "r", "spec", 1, "Invalid", "bad",
                                      "a.yaml", 0, 2)
        copy_located = pickle.loads(pickle.dumps(located))
        assert (copy_located.args, str(copy_located)) == (located.args, str(located))


class TestPaths:
    def test_load_directory_recursive_sorted_hidden_skipped(self, write: Write,
                                                            tmp_path: Path) -> None:
        """Directories are walked recursively in name order for .yaml/.yml/.json files;
        hidden files and directories and other suffixes are skipped."""
        write("b.yaml", service("b"))
        write("a/z.yml", service("az"))
        write("a/m.json", json.dumps({"apiVersion": "v1", "kind": "Service",
                                      "metadata": {"name": "am"}}))
        write("c/d/e.yaml", service("cde"))
        write(".hidden.yaml", service("hidden1"))
        write(".git/x.yaml", service("hidden2"))
        write("a/.cache/y.yaml", service("hidden3"))
        write("notes.txt", service("txt"))
        manifests = load_manifests([tmp_path])
        assert names(manifests) == ["am", "az", "b", "cde"]
        assert [f.path for f in manifests.files] == [
            str(tmp_path / "a" / "m.json"), str(tmp_path / "a" / "z.yml"),
            str(tmp_path / "b.yaml"), str(tmp_path / "c" / "d" / "e.yaml")]

    def test_load_explicit_file_read_whatever_its_suffix(self, write: Write) -> None:
        """A file named explicitly is read even without a manifest suffix (as YAML)."""
        assert names(load_manifests([write("routes.txt", route("r1"))])) == ["r1"]

    def test_load_single_path_accepted_for_a_sequence(self, write: Write) -> None:
        """A bare path (str or PathLike) means a one-path sequence, not its characters."""
        path = write("a.yaml", route("r1"))
        assert names(load_manifests(path)) == names(load_manifests(str(path))) == ["r1"]

    def test_load_bytes_path_raises_type_error(self) -> None:
        """Paths must be text; a bytes path is a TypeError naming the argument."""
        with pytest.raises(TypeError, match="paths"):
            load_manifests([b"a.yaml"])  # type: ignore[list-item]

    def test_load_missing_path_reported_by_name_and_rest_loaded(
        self, write: Write, tmp_path: Path
    ) -> None:
        """A path given that does not exist is a NotFound error naming it."""
        path = write("a.yaml", route("r1"))
        missing = tmp_path / "nope"
        manifests = load_manifests([missing, path])
        assert names(manifests) == ["r1"]
        [error] = manifests.errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.path) == ("NotFound", str(missing))
        assert str(error) == f"{missing}: does not exist (NotFound)"

    def test_load_same_file_twice_read_once(self, write: Write, tmp_path: Path) -> None:
        """A file given directly and inside a given directory is read once, at its first
        place, so it is no duplicate of itself."""
        path = write("a.yaml", route("r1"))
        manifests = load_manifests([path, tmp_path, tmp_path])
        assert names(manifests) == ["r1"]
        assert manifests.errors == ()
        assert len(manifests.files) == 1

    def test_load_symlink_loop_terminates(self, write: Write, tmp_path: Path) -> None:
        """A directory symlink back to an ancestor is walked once."""
        write("d/a.yaml", route("r1"))
        os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
        assert names(load_manifests([tmp_path])) == ["r1"]

    def test_load_symlinked_file_followed_like_a_configmap_volume(
        self, write: Write, tmp_path: Path
    ) -> None:
        """A ConfigMap volume's visible files are symlinks into a hidden ``..data`` directory;
        they are read, the hidden directory itself is not walked twice."""
        write("vol/..2024_01/routes.yaml", route("r1"))
        os.symlink("..2024_01", tmp_path / "vol" / "..data")
        os.symlink("..data/routes.yaml", tmp_path / "vol" / "routes.yaml")
        assert names(load_manifests([tmp_path / "vol"])) == ["r1"]

    def test_load_fifo_reported_unreadable(self, write: Write, tmp_path: Path) -> None:
        """A path that is not a regular file is reported, never opened (a FIFO would block)."""
        fifo = tmp_path / "pipe.yaml"
        os.mkfifo(fifo)
        [error] = load_manifests([fifo]).errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.detail) == ("Unreadable", "is not a regular file")


class TestDuplicates:
    def test_load_duplicate_object_first_kept_both_locations_named(
        self, write: Write, tmp_path: Path
    ) -> None:
        """Two objects with one kind/namespace/name: the first in path order is kept and the
        second is reported where it is, naming where the first is."""
        write("a.yaml", route("r1", host="first.example.com"))
        write("b.yaml", service("svc") + "---\n" + route("r1", host="second.example.com"))
        manifests = load_manifests([tmp_path])
        assert names(manifests) == ["r1", "svc"]
        kept = manifests.objects[0]
        assert isinstance(kept, HTTPRoute)
        assert kept.hostnames == ("first.example.com",)
        [error] = manifests.errors
        assert isinstance(error, ManifestError)
        assert (error.reason, error.path, error.document) == (
            "Duplicate", str(tmp_path / "b.yaml"), 1)
        assert str(error) == (
            f"{tmp_path / 'b.yaml'} documents[1]: HTTPRoute default/r1 is also defined at "
            f"{tmp_path / 'a.yaml'} documents[0]; keeping that one (Duplicate)")

    def test_load_same_name_different_kind_or_namespace_not_duplicates(
        self, write: Write
    ) -> None:
        """Identity is kind, namespace and name together."""
        path = write("a.yaml", route("x") + "---\n" + service("x") + "---\n"
                     + route("x", namespace="other"))
        manifests = load_manifests([path])
        assert names(manifests) == ["x", "x", "x"]
        assert manifests.errors == ()
