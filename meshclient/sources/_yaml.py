"""One manifest file's bytes to objects: YAML (multi-document) or JSON, Lists unpacked.

libyaml's ``CSafeLoader`` is about seven times faster than the pure-Python ``SafeLoader`` at
manifest scale and JSON through ``json`` another order of magnitude (ECOSYSTEM.md §9), so
``.json`` files skip YAML and the C loader is used whenever PyYAML was built with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Final

import attrs
import yaml

from meshclient.model import Object, parse_object
from meshclient.sources._errors import ManifestConfigError, ManifestError, Origin

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["LOADER", "Parsed", "parse_manifest"]

LOADER: Final[type[yaml.SafeLoader] | type[yaml.CSafeLoader]] = _Loader
"""The YAML loader in use: ``CSafeLoader`` when PyYAML has libyaml, else ``SafeLoader``."""


@attrs.frozen(kw_only=True)
class Parsed:
    """What one readable file holds: objects (each with its origin) and per-document errors."""

    objects: tuple[Object, ...]
    origins: tuple[Origin, ...]
    """Where each of ``objects`` was read, index for index."""
    errors: tuple[ManifestConfigError | ManifestError, ...]


def parse_manifest(path: str, data: bytes, namespace: str) -> Parsed | ManifestError:
    """Parse one file's content.

    Args:
        path: The file's path, as shown in errors; a ``.json`` suffix selects the JSON parser.
        data: The whole content.
        namespace: For objects that do not name their own.

    Returns:
        ``Parsed`` when the content is valid YAML (or JSON), even if some documents are not
        objects or some objects have errors; an ``InvalidSyntax`` ``ManifestError`` when it is
        not, in which case nothing from the file is usable: a half-written file must not
        replace the objects of its last good version with a prefix of them.
    """
    try:
        documents = _json(path, data) if path.endswith(".json") else _yaml_documents(path, data)
    except _FailedError as failed:
        return failed.error
    objects: list[Object] = []
    origins: list[Origin] = []
    errors: list[ManifestConfigError | ManifestError] = []
    for index, document in enumerate(documents):
        for origin, raw in _unpack(path, index, document, errors):
            obj, found = parse_object(raw, namespace)
            errors.extend(ManifestConfigError.at(e, origin) for e in found)
            if obj is not None:
                objects.append(obj)
                origins.append(origin)
    return Parsed(objects=tuple(objects), origins=tuple(origins), errors=tuple(errors))


class _FailedError(Exception):
    def __init__(self, error: ManifestError) -> None:
        super().__init__(error)
        self.error = error


def _json(path: str, data: bytes) -> list[object]:
    if not data.strip():
        return []
    try:
        return [json.loads(data)]
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bad UTF-8
        line = getattr(exc, "lineno", None)
        column = getattr(exc, "colno", None)
        detail = getattr(exc, "msg", str(exc))
        raise _FailedError(ManifestError(
            path, "InvalidSyntax", f"is not valid JSON: {detail}", line=line, column=column,
        )) from exc
    except RecursionError as exc:
        raise _FailedError(ManifestError(path, "InvalidSyntax", "is nested too deeply")) from exc


def _yaml_documents(path: str, data: bytes) -> list[object]:
    documents: list[object] = []
    try:
        # Iterated by hand so that a syntax error can say which document it is in.
        for document in yaml.load_all(data, Loader=LOADER):
            documents.append(document)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        raise _FailedError(ManifestError(
            path, "InvalidSyntax", f"is not valid YAML: {problem}", document=len(documents),
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        )) from exc
    except yaml.YAMLError as exc:  # ReaderError: bytes that are not UTF-8/16
        raise _FailedError(ManifestError(
            path, "InvalidSyntax", f"is not valid YAML: {exc}", document=len(documents),
        )) from exc
    except RecursionError as exc:
        raise _FailedError(ManifestError(
            path, "InvalidSyntax", "is nested too deeply", document=len(documents),
        )) from exc
    return documents


def _unpack(
    path: str, index: int, document: object, errors: list[ManifestConfigError | ManifestError],
) -> Iterator[tuple[Origin, Mapping[str, object]]]:
    """The objects in one document: itself, or the items of a List."""
    if document is None:  # an empty document (``---`` twice, or a comment only)
        return
    if not isinstance(document, dict):
        errors.append(ManifestError(
            path, "NotAnObject", f"is {_a(document)}, not a Kubernetes object (a mapping)",
            document=index,
        ))
        return
    kind = document.get("kind")
    if not (isinstance(kind, str) and kind.endswith("List") and (
        kind == "List" or "items" in document
    )):
        yield Origin(path, index), document
        return
    items = document.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        errors.append(ManifestError(
            path, "NotAnObject", f"{kind}.items is {_a(items)}, not a list", document=index,
        ))
        return
    # A typed list from the API (``HTTPRouteList``) leaves kind and apiVersion out of its
    # items: they are the list's, minus the suffix.
    item_kind = kind.removesuffix("List") if kind != "List" else None
    api_version = document.get("apiVersion")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(ManifestError(
                path, "NotAnObject", f"is {_a(item)}, not a Kubernetes object (a mapping)",
                document=index, item=position,
            ))
            continue
        if item_kind is not None and "kind" not in item:
            typed = {**item, "kind": item_kind}
            if "apiVersion" not in typed and api_version is not None:
                typed["apiVersion"] = api_version
            item = typed  # noqa: PLW2901
        yield Origin(path, index, position), item


def _a(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, bool):
        return f"a boolean ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    return f"a {type(value).__name__}"
