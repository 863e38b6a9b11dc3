"""What a policy sees of one request, and the compiled-rule shape both policy kinds share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from meshclient.authz._identity import ANONYMOUS, Caller

__all__ = ["AuthzRequest", "CompiledRule", "Matcher"]

_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})


@attrs.frozen(kw_only=True)
class AuthzRequest:
    """One request, already normalised (see ``Authorizer.check``)."""

    method: str = "GET"
    """Upper-cased."""
    path: str = "/"
    """Normalised (``normalize_path``), without the query."""
    host: str = ""
    """Lower-cased, without the port."""
    port: int | None = None
    """The destination (our own listening) port."""
    headers: Mapping[str, str] = _NO_HEADERS
    """Lower-cased names; repeated headers joined with ``,`` (RFC 9110 §5.3)."""
    caller: Caller = ANONYMOUS
    destination_ip: str | None = None
    sni: str | None = None


Matcher = Callable[[AuthzRequest], bool]


@attrs.frozen(kw_only=True)
class CompiledRule:
    """One rule of one policy, as a predicate plus the callers it can only match."""

    policy: str
    """``Kind ns/name`` of the policy it came from."""
    index: int
    match: Matcher
    principals: frozenset[tuple[str, str]] | None = None
    """Index keys: ``("p", principal)`` / ``("n", namespace)``; when set, the rule cannot match
    a caller whose principal and namespace are both absent from it."""
    paths: tuple[frozenset[str], frozenset[str]] | None = None
    """(exact paths, path prefixes): when set, the rule cannot match other paths."""
    header: tuple[str, frozenset[str]] | None = None
    """(lower-cased header name, exact values): the rule needs one of these values."""
