"""GRPCRoute matching (SPEC-NOTES §6): service/method and header matches, their precedence.

A gRPC call's ``:path`` is ``/<service>/<method>``. Within one hostname tier the winner is,
in order: more matched service characters, more matched method characters, more header
matchers, then the older route, ``namespace/name`` and rule order. For one request every
matcher that names a service matches the same service (so the same number of characters),
which turns the first two keys into "has a service matcher", "has a method matcher": a
static sort key. Exact service+method matches (Core) are one dict lookup; the rest (service
only, method only, regular expressions — Impl) are few and sorted.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from meshclient.model import GRPCRouteMatch
from meshclient.model._regex import Pattern, compile_regex
from meshclient.routing._decision import NO_EDITS, HeaderEdits, Plan
from meshclient.routing._request import RequestHead
from meshclient.routing._table import values_hold
from meshclient.routing._targets import RuleTarget

__all__ = ["GrpcEntry", "GrpcTier", "build_grpc_tier", "grpc_entry", "split_grpc_path"]


def split_grpc_path(path: str) -> tuple[str, str] | None:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``); None if not that shape."""
    if not path.startswith("/"):
        return None
    service, sep, method = path[1:].partition("/")
    if not sep or not service or not method or "/" in method:
        return None
    return service, method


@attrs.frozen(kw_only=True)
class GrpcEntry:
    target: RuleTarget
    sort_key: tuple[object, ...]
    service: str | None = None
    method: str | None = None
    regex: Pattern | None = None
    """For RegularExpression matches: the whole ``service/method`` pattern."""
    headers: tuple[tuple[str, str | None, Pattern | None], ...] = ()
    prefix: None = None  # the adapters' Entry protocol; gRPC has no prefix rewrites
    fast_plan: Plan | None = None  # as Entry's
    fast_edits: HeaderEdits = NO_EDITS

    def holds(self, head: RequestHead, service: str, method: str) -> bool:
        if self.regex is not None:
            if self.regex.fullmatch(f"{service}/{method}") is None:
                return False
        else:
            if self.service is not None and self.service != service:
                return False
            if self.method is not None and self.method != method:
                return False
        return values_hold(self.headers, head.header)


def grpc_entry(target: RuleTarget, match: GRPCRouteMatch, order: tuple[object, ...]) -> GrpcEntry:
    headers = tuple(
        (h.name, h.value if h.type == "Exact" else None,
         compile_regex(h.value) if h.type == "RegularExpression" else None)
        for h in match.headers
    )
    m = match.method
    service = m.service if m is not None else None
    method = m.method if m is not None else None
    regex = None
    if m is not None and m.type == "RegularExpression":
        # An omitted part matches anything (GR); RE2 patterns are joined on the literal '/'.
        regex = compile_regex(f"(?:{service or '[^/]+'})/(?:{method or '[^/]+'})")
    key = (0 if service else 1, 0 if method else 1, -len(headers), *order)
    return GrpcEntry(target=target, sort_key=key, service=service or None,
                     method=method or None, regex=regex, headers=headers,
                     fast_plan=target.plan if target.simple else None,
                     fast_edits=target.response_edits)


@attrs.frozen(kw_only=True)
class GrpcTier:
    exact: dict[tuple[str, str], tuple[GrpcEntry, ...]]
    rest: tuple[GrpcEntry, ...]

    def find(self, head: RequestHead) -> GrpcEntry | None:
        parts = split_grpc_path(head.path_only)
        if parts is None:
            return None
        best = None
        for entry in self.exact.get(parts, ()):
            if entry.holds(head, *parts):
                best = entry
                break
        for entry in self.rest:
            if best is not None and entry.sort_key > best.sort_key:
                break
            if entry.holds(head, *parts):
                best = entry
                break
        return best


def build_grpc_tier(entries: Iterable[GrpcEntry]) -> GrpcTier:
    exact: dict[tuple[str, str], list[GrpcEntry]] = {}
    rest: list[GrpcEntry] = []
    for e in entries:
        if e.regex is None and e.service is not None and e.method is not None:
            exact.setdefault((e.service, e.method), []).append(e)
        else:
            rest.append(e)
    return GrpcTier(
        exact={k: tuple(sorted(v, key=lambda e: e.sort_key)) for k, v in exact.items()},
        rest=tuple(sorted(rest, key=lambda e: e.sort_key)),
    )
