"""The compiled lookup structures a request walks, and the walk itself.

Precedence (SPEC-NOTES §2.6) is turned into structure rather than a sort per request:

* a host finds its *tiers*: the exact-hostname tier, then each covering wildcard from the
  longest, then the hostname-less tier — hostname precedence is the tier order;
* inside a tier, Exact paths are one dict lookup, PathPrefix values one lookup per path
  segment boundary (longest first), RegularExpression matches come last;
* each bucket is already sorted by the rest of the key (method, header count, query count,
  age, namespace/name, rule and match order), so the first entry whose remaining conditions
  hold is the winner.

A request therefore costs a few dict lookups plus the conditions of the entries it meets;
the number of routes elsewhere in the table does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from meshclient.model import HTTPRouteMatch
from meshclient.model._regex import Pattern, compile_regex
from meshclient.routing._decision import NO_EDITS, HeaderEdits, Plan
from meshclient.routing._hostnames import host_matches
from meshclient.routing._request import RequestHead
from meshclient.routing._targets import RuleTarget

__all__ = ["Entry", "HostTable", "Tier", "build_tier"]


@attrs.frozen(kw_only=True)
class Entry:
    """One match of one rule, with the conditions left after the path is decided."""

    target: RuleTarget
    sort_key: tuple[object, ...]
    method: str | None = None
    headers: tuple[tuple[str, str | None, Pattern | None], ...] = ()
    """(name, exact value, regex): one of the two is set."""
    queries: tuple[tuple[str, str | None, Pattern | None], ...] = ()
    regex: Pattern | None = None
    prefix: str | None = None
    """The PathPrefix value matched (for ReplacePrefixMatch)."""
    unconditional: bool = False
    """No method, header or query condition: the path alone decides."""
    fast_plan: Plan | None = None
    """The target's plan when it is a plain forward (``RuleTarget.simple``): the Decision is
    then this plan and the request, built without touching the target (a cache miss less
    per request on a large table)."""
    fast_edits: HeaderEdits = NO_EDITS

    def conditions_hold(self, head: RequestHead) -> bool:
        if self.method is not None and head.method != self.method:
            return False
        return values_hold(self.headers, head.header) and values_hold(self.queries, head.query)


def values_hold(
    matchers: tuple[tuple[str, str | None, Pattern | None], ...],
    lookup: Callable[[str], str | None],
) -> bool:
    """Every (name, exact value | regex) matcher finds its value (HR: ANDed; missing fails)."""
    for name, exact, pattern in matchers:
        value = lookup(name)
        if value is None:
            return False
        if pattern is None:
            if value != exact:
                return False
        elif pattern.fullmatch(value) is None:
            return False
    return True


@attrs.frozen(kw_only=True)
class Tier:
    """All entries that share one hostname (exact, one wildcard, or none)."""

    exact: dict[str, tuple[Entry, ...]]
    prefix: dict[str, tuple[Entry, ...]]
    regex: tuple[Entry, ...]

    def find(self, head: RequestHead) -> Entry | None:
        path = head.path_only
        if self.exact:
            entries = self.exact.get(path)
            if entries is not None:
                for entry in entries:
                    if entry.unconditional or entry.conditions_hold(head):
                        return entry
        prefix = self.prefix
        if prefix:
            # Segment-boundary prefixes of the path, longest first ('' is the root), walked
            # in place: most requests stop at the first or second lookup.
            i = len(path) if path[-1:] != "/" else path.rfind("/")
            while i >= 0:
                entries = prefix.get(path[:i])
                if entries is not None:
                    for entry in entries:
                        if entry.unconditional or entry.conditions_hold(head):
                            return entry
                i = path.rfind("/", 0, i)
        for entry in self.regex:
            if entry.regex is not None and entry.regex.fullmatch(path) is not None and (
                entry.conditions_hold(head)
            ):
                return entry
        return None


def entry_for(target: RuleTarget, match: HTTPRouteMatch, order: tuple[object, ...]) -> Entry:
    """An Entry with its precedence key (everything after hostname and path)."""
    headers = tuple(
        (h.name, h.value if h.type == "Exact" else None,
         compile_regex(h.value) if h.type == "RegularExpression" else None)
        for h in match.headers
    ) if match.headers else ()
    queries = tuple(
        (q.name, q.value if q.type == "Exact" else None,
         compile_regex(q.value) if q.type == "RegularExpression" else None)
        for q in match.query_params
    ) if match.query_params else ()
    key = (0 if match.method else 1, -len(headers), -len(queries), *order)
    path = match.path
    return Entry(
        target=target,
        sort_key=key,
        method=match.method,
        headers=headers,
        queries=queries,
        regex=compile_regex(path.value) if path.type == "RegularExpression" else None,
        prefix=path.value if path.type == "PathPrefix" else None,
        unconditional=not (match.method or headers or queries),
        fast_plan=target.plan if target.simple else None,
        fast_edits=target.response_edits,
    )


def build_tier(items: Iterable[tuple[HTTPRouteMatch, Entry]]) -> Tier:
    exact: dict[str, list[Entry]] = {}
    prefix: dict[str, list[Entry]] = {}
    regex: list[Entry] = []
    for match, entry in items:
        if match.path.type == "Exact":
            exact.setdefault(match.path.value, []).append(entry)
        elif match.path.type == "PathPrefix":
            # "/abc" and "/abc/" are the same prefix; "/" is the root ("").
            prefix.setdefault(match.path.value.rstrip("/"), []).append(entry)
        else:
            regex.append(entry)

    def ordered(entries: Sequence[Entry]) -> tuple[Entry, ...]:
        return tuple(sorted(entries, key=lambda e: e.sort_key))

    return Tier(
        exact={k: ordered(v) for k, v in exact.items()},
        prefix={k: ordered(v) for k, v in prefix.items()},
        regex=ordered(regex),
    )


@attrs.frozen(kw_only=True)
class HostTable:
    """Route tiers of one listener (or one Service port), found by request host."""

    exact: dict[str, tuple[Tier, ...]]
    wildcard: dict[str, tuple[Tier, ...]]
    """Keyed by the suffix after '*' (``.example.com``)."""
    any_host: tuple[Tier, ...]

    def tiers(self, host: str) -> tuple[Tier, ...]:
        tiers = self.exact.get(host)
        if tiers is not None:
            return tiers
        if self.wildcard:
            i = host.find(".")
            while i >= 0:
                tiers = self.wildcard.get(host[i:])
                if tiers is not None:
                    return tiers
                i = host.find(".", i + 1)
        return self.any_host

    def find(self, head: RequestHead) -> Entry | None:
        for tier in self.tiers(head.host):
            entry = tier.find(head)
            if entry is not None:
                return entry
        return None


def build_host_table(
    by_host: Mapping[str | None, Sequence[Any]], build: Callable[[Any], Any] | None = None
) -> HostTable:
    """Merge entries per hostname into the tier lists each kind of host will walk.

    ``build`` makes one tier from one hostname's entries (``build_tier`` for HTTPRoutes by
    default; ``build_grpc_tier`` for GRPCRoutes).
    """
    make = build or build_tier
    tiers = {host: make(items) for host, items in by_host.items()}
    wild = sorted((h for h in tiers if h is not None and h.startswith("*.")),
                  key=len, reverse=True)
    none_tier = (tiers[None],) if None in tiers else ()

    def covering(name: str) -> tuple[Tier, ...]:
        # Wildcards covering ``name``, most specific first (longer suffix = more labels).
        return tuple(tiers[w] for w in wild if name != w and host_matches(w, name))

    exact = {h: (tiers[h], *covering(h), *none_tier)
             for h in tiers if h is not None and not h.startswith("*.")}
    wildcard = {w[1:]: (tiers[w], *covering(w), *none_tier) for w in wild}
    return HostTable(exact=exact, wildcard=wildcard, any_host=none_tier)
