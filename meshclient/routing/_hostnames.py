"""Hostname wildcards, intersection and specificity (SPEC-NOTES §1.1, §1.5)."""

from __future__ import annotations

__all__ = ["host_matches", "intersect", "specificity", "suffixes"]


def host_matches(pattern: str | None, host: str) -> bool:
    """Whether ``host`` falls under ``pattern`` (None matches any host).

    ``*.example.com`` covers one or more labels (``a.example.com``, ``a.b.example.com``) and
    never the bare ``example.com``.
    """
    if pattern is None:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def intersect(listener: str | None, route: str | None) -> str | bool | None:
    """The hostname both a listener and a route accept.

    Returns the narrower hostname, None when both are absent (any host), or False when the
    two have nothing in common.
    """
    if listener is None:
        return route
    if route is None:
        return listener
    if listener == route:
        return listener
    if _covers(listener, route):
        return (
            route  # the route is narrower: a.b.example.com or *.b.example.com under *.example.com
        )
    if _covers(route, listener):
        return listener
    return False


def _covers(wildcard: str, name: str) -> bool:
    """Whether wildcard ``wildcard`` covers ``name``, itself exact or a narrower wildcard."""
    return (
        wildcard.startswith("*.")
        and name.endswith(wildcard[1:])
        and (len(name) > len(wildcard) - 1)
    )


def specificity(hostname: str | None) -> tuple[int, int]:
    """Precedence key (larger wins): non-wildcard length, then length with wildcards."""
    if hostname is None:
        return (0, 0)
    if hostname.startswith("*."):
        return (0, len(hostname))
    return (len(hostname), len(hostname))


def suffixes(host: str) -> list[str]:
    """The wildcard suffixes that could cover ``host``, most specific first.

    ``a.b.example.com`` → ``['.b.example.com', '.example.com', '.com']``.
    """
    out = []
    i = host.find(".")
    while i >= 0:
        out.append(host[i:])
        i = host.find(".", i + 1)
    return out
