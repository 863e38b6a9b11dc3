"""How one attempt ended, as the adapter saw it: a status, or a failure before any response."""

from __future__ import annotations

import enum
from typing import Final

import attrs

__all__ = ["NOT_SENT", "Failure", "Outcome"]


class Failure(enum.StrEnum):
    """Ways an attempt can end without a response.

    The values are shared with ``meshclient.balancing.FAILURE_KINDS`` (the layers are peers
    and cannot import each other; a test keeps the two equal).
    """

    CONNECT = "connect"
    """No connection: refused, unreachable, DNS, TLS handshake. The request was not sent."""
    REFUSED_STREAM = "refused_stream"
    """HTTP/2 REFUSED_STREAM, or a stream above a GOAWAY's last stream id: never processed."""
    RESET = "reset"
    """The connection was reset or closed after the request went out: it may have arrived."""
    TIMEOUT = "timeout"
    """The attempt hit its per-try (``backendRequest``) timeout."""


NOT_SENT: Final = frozenset({Failure.CONNECT, Failure.REFUSED_STREAM})
"""Failures after which the server cannot have seen the request, so any method may retry."""


def _exactly_one(
    instance: Outcome, attribute: attrs.Attribute[Failure | None], value: Failure | None
) -> None:
    if (instance.status is None) == (instance.failure is None):
        raise ValueError(
            f"Outcome needs exactly one of status and failure, got status={instance.status!r} "
            f"failure={instance.failure!r}"
        )


@attrs.frozen
class Outcome:
    """A response status, or a ``Failure``; never both.

    Use ``Outcome.response(status)`` and ``Outcome.failed(failure)``: they hand out shared
    instances, so the request path builds nothing.
    """

    status: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(100),
             attrs.validators.le(999)]
        ),
    )
    failure: Failure | None = attrs.field(default=None, validator=_exactly_one)

    @property
    def reached_server(self) -> bool:
        """Whether the server may have seen (and acted on) the request."""
        return self.failure not in NOT_SENT

    @classmethod
    def response(cls, status: int) -> Outcome:
        """The shared outcome for a response with ``status``.

        Raises:
            ValueError: ``status`` is not a three-digit HTTP status.
        """
        got = _RESPONSES.get(status)
        if got is None:
            got = cls(status=status)
            _RESPONSES[status] = got  # bounded: 100..999
        return got

    @classmethod
    def failed(cls, failure: Failure) -> Outcome:
        """The shared outcome for ``failure``."""
        return _FAILURES[failure]


_RESPONSES: dict[int, Outcome] = {}
_FAILURES: Final = {f: Outcome(failure=f) for f in Failure}
