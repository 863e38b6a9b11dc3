"""Status conditions, as a controller would write them (SPEC-NOTES §10)."""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["Condition", "ObjectStatus"]

# Route condition reasons (SH); the exact spec strings.
ACCEPTED: Final = "Accepted"
NOT_ALLOWED_BY_LISTENERS: Final = "NotAllowedByListeners"
NO_MATCHING_LISTENER_HOSTNAME: Final = "NoMatchingListenerHostname"
NO_MATCHING_PARENT: Final = "NoMatchingParent"
UNSUPPORTED_VALUE: Final = "UnsupportedValue"
INCOMPATIBLE_FILTERS: Final = "IncompatibleFilters"
RESOLVED_REFS: Final = "ResolvedRefs"
REF_NOT_PERMITTED: Final = "RefNotPermitted"
INVALID_KIND: Final = "InvalidKind"
BACKEND_NOT_FOUND: Final = "BackendNotFound"
UNSUPPORTED_PROTOCOL: Final = "UnsupportedProtocol"
PARTIALLY_INVALID: Final = "PartiallyInvalid"
CONFLICTED: Final = "Conflicted"


@attrs.frozen(kw_only=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""


@attrs.frozen(kw_only=True)
class ObjectStatus:
    """The conditions of one object, or of one object for one parent (routes, listeners)."""

    kind: str
    namespace: str
    name: str
    conditions: tuple[Condition, ...]
    parent: str | None = None
    """``Gateway ns/name section x``, ``Service ns/name``, or ``listener NAME`` for listeners."""

    @property
    def rejected(self) -> bool:
        """Whether the object, for this parent, is not (or not fully) in service."""
        for c in self.conditions:
            if c.type == "Accepted" and c.status == "False":
                return True
            if c.type == "ResolvedRefs" and c.status == "False":
                return True
            if c.type == "PartiallyInvalid" and c.status == "True":
                return True
            if c.type == "Conflicted" and c.status == "True":
                return True
        return False

    def condition(self, kind: str) -> Condition | None:
        for c in self.conditions:
            if c.type == kind:
                return c
        return None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "namespace": self.namespace,
                                  "name": self.name}
        if self.parent is not None:
            out["parent"] = self.parent
        out["conditions"] = [attrs.asdict(c) for c in self.conditions]
        return out
