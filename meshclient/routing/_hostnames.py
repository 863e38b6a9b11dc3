"""Hostname wildcards and intersection (SPEC-NOTES §1.1, §1.5)."""

from __future__ import annotations

__all__ = ["host_matches", "intersect"]


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
