"""Syntax checks for the names Gateway API fields hold."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = ["hostname_problem", "is_ip", "precise_hostname_problem"]

# SH: Hostname — RFC 1123 labels, lower case, an optional leading "*." wildcard label.
_HOSTNAME: Final = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_PRECISE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HEADER_NAME: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def hostname_problem(value: str) -> str | None:
    """Why ``value`` is not a valid (possibly wildcard) Gateway API hostname, or None."""
    if not value or len(value) > 253:
        return "must be 1 to 253 characters"
    if is_ip(value):
        return "must be a DNS name, not an IP address"
    if not _HOSTNAME.match(value):
        if value.endswith("."):
            return "must not end with a dot"
        if "*" in value:
            return "may only use '*' as the whole first label ('*.example.com')"
        return "must be lower-case RFC 1123 labels"
    return None


def precise_hostname_problem(value: str) -> str | None:
    """Why ``value`` is not a valid PreciseHostname (no wildcard), or None."""
    if "*" in value:
        return "must not be a wildcard"
    problem = hostname_problem(value)
    if problem is None and not _PRECISE.match(value):
        return "must be lower-case RFC 1123 labels"
    return problem


def header_name_problem(value: str) -> str | None:
    if not value or len(value) > 256:
        return "must be 1 to 256 characters"
    if not _HEADER_NAME.match(value):
        return "is not a valid HTTP header name (RFC 7230 token)"
    return None
