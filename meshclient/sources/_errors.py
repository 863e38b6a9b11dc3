"""Errors that say which manifest file, and which document in it, a problem came from.

::

    MeshError
     ├── ConfigError
     │    └── ManifestConfigError   an object error, plus the file and document it was read from
     └── SourceError
          └── ManifestError         a file or document problem: missing, unreadable, bad YAML,
                                    not an object, a duplicate object

Locations print as ``path[:line:column] documents[i][.items[j]]``: document and item indexes
count from 0, like the field paths in ``ConfigError``; line and column count from 1, like a
compiler's.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

from meshclient.errors import ConfigError, SourceError

__all__ = ["ManifestConfigError", "ManifestError", "ManifestReason", "Origin", "same_error"]

ManifestReason = Literal["NotFound", "Unreadable", "InvalidSyntax", "NotAnObject", "Duplicate"]
"""Why a file or document could not be used.

``NotFound``: a path given explicitly does not exist. ``Unreadable``: it exists but cannot
be read (permissions, not a regular file, a directory that cannot be listed).
``InvalidSyntax``: not valid YAML or JSON. ``NotAnObject``: a document, or a List item, is
not a mapping. ``Duplicate``: a second object with the same kind, namespace and name.
"""

FILE_FAILURES: Final[frozenset[str]] = frozenset({"NotFound", "Unreadable", "InvalidSyntax"})
"""Reasons that make a whole file unusable (as opposed to one document in it)."""


def _where(path: str, document: int | None, item: int | None) -> str:
    if document is None:
        return path
    if item is None:
        return f"{path} documents[{document}]"
    return f"{path} documents[{document}].items[{item}]"


@attrs.frozen
class Origin:
    """Where one object was read: file path, document index, and List item index."""

    path: str
    document: int
    item: int | None = None

    def __str__(self) -> str:
        return _where(self.path, self.document, self.item)


# Not kw_only: exceptions unpickle from their positional args.
@attrs.frozen(eq=True, hash=True)
class ManifestError(SourceError):
    """A manifest file, or one document in it, could not be used.

    The message reads ``path:line:column documents[i]: detail (Reason)``.
    """

    path: str
    reason: ManifestReason
    detail: str
    document: int | None = None
    """Index of the document in a multi-document file; None when the whole file is meant."""
    item: int | None = None
    """Index in a List's ``items``; None outside Lists."""
    line: int | None = None
    """1-based line of a syntax error."""
    column: int | None = None
    """1-based column of a syntax error."""

    @property
    def location(self) -> str:
        path = self.path
        if self.line is not None:
            path = f"{path}:{self.line}" if self.column is None else (
                f"{path}:{self.line}:{self.column}"
            )
        return _where(path, self.document, self.item)

    def __str__(self) -> str:
        return f"{self.location}: {self.detail} ({self.reason})"


@attrs.frozen(eq=True, hash=True)
class ManifestConfigError(ConfigError):
    """A ``ConfigError`` in an object read from a manifest, with the file and document.

    The message reads ``path documents[i]: Kind ns/name: field: 'value' why (Reason)``.
    """

    path: str
    document: int
    item: int | None = None

    @classmethod
    def at(cls, error: ConfigError, origin: Origin) -> ManifestConfigError:
        """The same error, located at ``origin``."""
        return cls(
            error.kind, error.namespace, error.name, error.field, error.value, error.reason,
            error.detail, origin.path, origin.document, origin.item,
        )

    @property
    def origin(self) -> Origin:
        return Origin(self.path, self.document, self.item)

    def __str__(self) -> str:
        return f"{self.origin}: {super().__str__()}"


def same_error(a: BaseException | None, b: BaseException | None) -> bool:
    """Whether two errors say the same thing.

    attrs makes exception classes compare and hash by identity whatever ``eq`` says
    (``auto_exc``), so errors are compared by type and ``args`` (their field values).
    """
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and a.args == b.args
