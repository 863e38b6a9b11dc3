"""Route regular expressions, with RE2 semantics (linear time, as Envoy uses).

Patterns come from route authors, so a backtracking engine would let one route stall every
request that reaches it; RE2 cannot. A pattern RE2 rejects (backreferences, lookaround, ...)
makes its rule invalid with RE2's own explanation.
"""

from __future__ import annotations

import functools
from typing import Protocol

import re2

__all__ = ["Pattern", "compile_regex", "regex_problem"]


class Pattern(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every rejected pattern to stderr


@functools.lru_cache(maxsize=8192)
def _compile(pattern: str) -> tuple[Pattern | None, str | None]:
    try:
        return re2.compile(pattern, options=_OPTIONS), None
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return None, f"is not a valid RE2 pattern: {detail}" if detail else (
            "is not a valid RE2 pattern"
        )
    except (TypeError, ValueError) as exc:
        return None, str(exc)


def regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot compile ``pattern``, or None."""
    return _compile(pattern)[1]


def compile_regex(pattern: str) -> Pattern:
    """The compiled pattern; call only after ``regex_problem`` said None."""
    compiled, problem = _compile(pattern)
    if compiled is None:
        raise ValueError(f"{pattern!r}: {problem}")
    return compiled
