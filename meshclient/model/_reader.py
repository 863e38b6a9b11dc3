"""Reading Kubernetes dicts into model values, collecting errors instead of raising.

A ``Reader`` wraps one mapping at one field path of one object. Every accessor returns a
usable value (the default when the field is missing or wrong) and records a ``ConfigError``
that names the object, the field path and the value, so that one bad field never hides the
others and parsing always finishes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final, TypeVar

from meshclient.errors import _NO_VALUE, ConfigError

T = TypeVar("T")
_Str = str  # the Reader methods named str/int shadow the builtins in its class body
_Int = int
_Bool = bool

UNSUPPORTED_VALUE: Final = "UnsupportedValue"
INVALID: Final = "Invalid"


class Reader:
    """One mapping inside one object, with the path that leads to it."""

    __slots__ = ("errors", "kind", "name", "namespace", "path", "raw")

    def __init__(
        self,
        raw: Mapping[str, object],
        *,
        kind: str,
        namespace: str,
        name: str,
        path: str,
        errors: list[ConfigError],
    ) -> None:
        self.raw = raw
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.path = path
        self.errors = errors

    # -- errors -------------------------------------------------------------------------

    def field_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def error(
        self, key: str | int, value: object, detail: str, reason: str = UNSUPPORTED_VALUE
    ) -> None:
        self.errors.append(
            ConfigError(
                self.kind, self.namespace, self.name, self.field_path(key), value, reason, detail
            )
        )

    def missing(self, key: str, reason: str = INVALID) -> None:
        self.errors.append(
            ConfigError(
                self.kind,
                self.namespace,
                self.name,
                self.field_path(key),
                _NO_VALUE,
                reason,
                "is required",
            )
        )

    def with_errors(self, errors: list[ConfigError]) -> Reader:
        """The same mapping, recording into another error list (a rule's own)."""
        return Reader(
            self.raw,
            kind=self.kind,
            namespace=self.namespace,
            name=self.name,
            path=self.path,
            errors=errors,
        )

    # -- accessors ----------------------------------------------------------------------

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def get(self, key: str) -> object:
        return self.raw.get(key)

    def str(self, key: _Str, default: _Str = "", *, required: _Bool = False) -> _Str:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.missing(key)
            return default
        if not isinstance(value, str):
            self.error(key, value, "must be a string", INVALID)
            return default
        return value

    def opt_str(self, key: _Str) -> _Str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(key, value, "must be a string", INVALID)
            return None
        return value

    def int(
        self,
        key: _Str,
        default: _Int | None = None,
        *,
        minimum: _Int | None = None,
        maximum: _Int | None = None,
        required: _Bool = False,
    ) -> _Int | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.missing(key)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, value, "must be an integer", INVALID)
            return default
        if minimum is not None and value < minimum:
            self.error(key, value, f"must be at least {minimum}", INVALID)
            return default
        if maximum is not None and value > maximum:
            self.error(key, value, f"must be at most {maximum}", INVALID)
            return default
        return value

    def bool(self, key: _Str, default: _Bool = False) -> _Bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, value, "must be true or false", INVALID)
            return default
        return value

    def child(self, key: _Str) -> Reader | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.error(key, value, "must be an object", INVALID)
            return None
        return self._at(self.field_path(key), value)

    def children(self, key: _Str, *, max_items: _Int | None = None) -> list[Reader]:
        """The objects of a list field (non-objects are reported and skipped)."""
        out: list[Reader] = []
        base = self.field_path(key)
        for index, item in self._items(key, max_items):
            if not isinstance(item, Mapping):
                self.errors.append(
                    ConfigError(
                        self.kind, self.namespace, self.name, f"{base}[{index}]", item, INVALID,
                        "must be an object",
                    )
                )
                continue
            out.append(self._at(f"{base}[{index}]", item))
        return out

    def strings(self, key: _Str, *, max_items: _Int | None = None) -> list[_Str]:
        out: list[str] = []
        base = self.field_path(key)
        for index, item in self._items(key, max_items):
            if not isinstance(item, str):
                self.errors.append(
                    ConfigError(
                        self.kind, self.namespace, self.name, f"{base}[{index}]", item, INVALID,
                        "must be a string",
                    )
                )
                continue
            out.append(item)
        return out

    def mapping_of_str(self, key: _Str) -> dict[_Str, _Str]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(key, value, "must be an object", INVALID)
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                self.error(key, {k: v}, "must map strings to strings", INVALID)
                continue
            out[k] = v
        return out

    def list_present(self, key: _Str) -> _Bool:
        """Whether the field is present as a list (``[]`` counts: it differs from absent)."""
        return isinstance(self.raw.get(key), list)

    def _items(self, key: _Str, max_items: _Int | None) -> Iterator[tuple[_Int, object]]:
        value = self.raw.get(key)
        if value is None:
            return iter(())
        if not isinstance(value, list):
            self.error(key, value, "must be a list", INVALID)
            return iter(())
        if max_items is not None and len(value) > max_items:
            self.error(key, f"<{len(value)} items>", f"may hold at most {max_items} items", INVALID)
            value = value[:max_items]
        return enumerate(value)

    def _at(self, path: _Str, raw: Mapping[_Str, object]) -> Reader:
        return Reader(
            raw, kind=self.kind, namespace=self.namespace, name=self.name, path=path,
            errors=self.errors,
        )
