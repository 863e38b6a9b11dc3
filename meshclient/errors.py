"""The errors meshclient raises or reports.

::

    MeshError
     ├── ConfigError     one object (or one field of it) is invalid; the rest keeps serving
     └── SourceError     a source could not be read; the last good snapshot stays in use

What a route asks for that meshclient does not do is not an error at all: the rule compiles
to ``via: gateway`` (or a 500 for Service parents) with the reason on the decision.

``reason`` is the Gateway API condition reason (``UnsupportedValue``, ``BackendNotFound``,
...), so a route's status, ``meshclient validate`` and ``resolve --json`` share one wording.
"""

from __future__ import annotations

import attrs

__all__ = ["ConfigError", "MeshError", "SourceError"]


class MeshError(Exception):
    """Base class of every error meshclient raises."""


# Not kw_only: exceptions unpickle from their positional args.
@attrs.frozen(eq=True, hash=True)
class ConfigError(MeshError):
    """One invalid value in one Kubernetes object.

    The message reads ``Kind ns/name: field.path: 'value' why (Reason)``.
    """

    kind: str
    namespace: str
    name: str
    field: str
    value: object
    reason: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else (
            f"{self.kind} {self.name}"
        )
        if self.field:
            where = f"{where}: {self.field}"
        if self.value is _NO_VALUE:
            return f"{where}: {self.detail} ({self.reason})"
        return f"{where}: {self.value!r} {self.detail} ({self.reason})"


class SourceError(MeshError):
    """A configuration source failed to read; the previous snapshot is kept."""


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: object = _NoValue()
"""Marks a ConfigError about a missing field (there is no value to show)."""
