"""Pure helpers the sync and aio channels share: status mapping, Linkerd-style annotations, TLS.

Nothing here does I/O. Three pieces:

* **Statuses.** The resilience and balancing layers speak HTTP statuses (``Outcome`` takes
  100..999). A gRPC status becomes the HTTP status gRPC's own mapping gives it
  (``google.rpc.Code``), made one-to-one for the five statuses a retry policy may name, so a
  retry code set of gRPC statuses is a set of these numbers: ``cancelled`` 499,
  ``deadline-exceeded`` 504, ``internal`` 500, ``resource-exhausted`` 429, ``unavailable``
  503. ``UNKNOWN`` and ``DATA_LOSS`` get 520 and 521 so they never collide with ``internal``.
  The other way, a rejected call answers ``GRPC_STATUS`` (GR: 404 → UNIMPLEMENTED, 500/503 →
  UNAVAILABLE).
* **Annotations** (SPEC-NOTES §6 reading). GRPCRoute has no retry or timeout fields, so the
  Linkerd convention applies: ``retry.linkerd.io/grpc``, ``retry.linkerd.io/limit``,
  ``retry.linkerd.io/timeout`` and ``timeout.linkerd.io/request`` on the GRPCRoute that
  matched or on the Service the call was addressed to (its parent). A route that carries any
  ``retry.linkerd.io/*`` annotation replaces all of the Service's retry annotations; timeouts
  likewise. An HTTPRoute rule's GEP-1731 ``retry``/``timeouts`` fields win over annotations.
  Operators turn the whole thing off with ``annotations=False`` (a cluster that also runs
  Linkerd proxies would otherwise retry twice). The chosen policy's ``source`` says where it
  came from (``GRPCRoute default/pay annotations``, ``Service shop/pay annotations``,
  ``HTTPRoute``, or ``connect-failure default``).
* **TLS names.** grpcio has one knob, ``grpc.ssl_target_name_override``, that is both the SNI
  and the DNS name verified; it cannot check a URI SAN (a SPIFFE ID) at all, and a client call
  exposes no peer certificate (ECOSYSTEM.md §2.1). ``tls_name`` picks the name to verify or
  says why the policy cannot be honoured; it never silently verifies less than asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import attrs
import grpc

from meshclient.model import RetryPolicy, Timeouts
from meshclient.resilience import Failure, Outcome
from meshclient.routing import BackendTLS, Decision
from meshclient.routing._decision import GRPC_STATUS

__all__ = [
    "CONNECT_DEFAULT",
    "GRPC_NAMES",
    "HTTP_OF",
    "RetrySettings",
    "TLSProblem",
    "answer_code",
    "outcome_of",
    "parse_linkerd_duration",
    "settings_from_annotations",
    "tls_name",
]

_C = grpc.StatusCode

HTTP_OF: Final[Mapping[grpc.StatusCode, int]] = {
    _C.OK: 200, _C.CANCELLED: 499, _C.UNKNOWN: 520, _C.INVALID_ARGUMENT: 400,
    _C.DEADLINE_EXCEEDED: 504, _C.NOT_FOUND: 404, _C.ALREADY_EXISTS: 409,
    _C.PERMISSION_DENIED: 403, _C.RESOURCE_EXHAUSTED: 429, _C.FAILED_PRECONDITION: 400,
    _C.ABORTED: 409, _C.OUT_OF_RANGE: 400, _C.UNIMPLEMENTED: 501, _C.INTERNAL: 500,
    _C.UNAVAILABLE: 503, _C.DATA_LOSS: 521, _C.UNAUTHENTICATED: 401,
}
"""The HTTP status the core layers see for a gRPC status (one-to-one on retryable ones)."""

GRPC_NAMES: Final[Mapping[str, grpc.StatusCode]] = {
    "cancelled": _C.CANCELLED, "deadline-exceeded": _C.DEADLINE_EXCEEDED,
    "internal": _C.INTERNAL, "resource-exhausted": _C.RESOURCE_EXHAUSTED,
    "unavailable": _C.UNAVAILABLE,
}
"""The statuses ``retry.linkerd.io/grpc`` may list (Linkerd reference: retries)."""

_BY_VALUE: Final = {c.value[0]: c for c in grpc.StatusCode}

RETRY_GRPC: Final = "retry.linkerd.io/grpc"
RETRY_LIMIT: Final = "retry.linkerd.io/limit"
RETRY_TIMEOUT: Final = "retry.linkerd.io/timeout"
TIMEOUT_REQUEST: Final = "timeout.linkerd.io/request"

CONNECT_DEFAULT: Final = RetryPolicy(attempts=2, codes=frozenset(), backoff=0.0,
                                     source="connect-failure default")
"""Without any policy a call is still retried on another endpoint when it never left the
client (connect failure): gRPC's transparent retries do the same (gRFC A6)."""


_OUTCOMES: Final = {code: Outcome.response(status) for code, status in HTTP_OF.items()}
_CONNECT: Final = Outcome.failed(Failure.CONNECT)
_TIMEOUT: Final = Outcome.failed(Failure.TIMEOUT)


def outcome_of(code: grpc.StatusCode, details: str, *, per_try: bool) -> Outcome | None:
    """The core ``Outcome`` of an attempt that ended with ``code``; None: not the endpoint's
    doing (the caller's deadline or cancellation), so only its in-flight count changes."""
    if code is _C.OK:
        return _OUTCOMES[_C.OK]
    if code is _C.UNAVAILABLE and details.startswith("failed to connect"):
        return _CONNECT  # grpc's wording for refused, unreachable and failed TLS handshakes
    if code is _C.DEADLINE_EXCEEDED:
        return _TIMEOUT if per_try else None
    if code is _C.CANCELLED and details == "Locally cancelled by application!":
        return None
    return _OUTCOMES.get(code)


def answer_code(http_status: int | None) -> grpc.StatusCode:
    """The gRPC status meshclient answers for a core HTTP status (GR; unknown → UNKNOWN)."""
    return _BY_VALUE.get(GRPC_STATUS.get(http_status or 500, 2), _C.UNKNOWN)


# Linkerd durations are Go durations ("300ms", "1.5s", "1m30s").
_GO_DURATION: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+")
_GO_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_linkerd_duration(text: str) -> float | None:
    """Seconds for a Go-style duration such as ``300ms`` or ``1.5s``; None if it is not one."""
    text = text.strip()
    if not _GO_DURATION.fullmatch(text):
        return None
    return sum(float(n) * _UNIT[u] for n, u in _GO_PART.findall(text))


@attrs.frozen(kw_only=True)
class RetrySettings:
    """The retry policy and timeouts one call runs under, and why."""

    policy: RetryPolicy | None = None
    timeouts: Timeouts | None = None
    idempotent: bool | None = None
    """True when an operator named the statuses to retry (annotations): the call is then
    retried even though it may have reached the server, as Linkerd does. None: gRPC calls
    are POSTs, so only failures that never sent them are retried."""
    problems: tuple[str, ...] = ()
    """Annotations that could not be read (ignored, named here for logs)."""


NO_SETTINGS: Final = RetrySettings()


def _retry_from(annotations: Mapping[str, str], source: str,
                problems: list[str]) -> RetryPolicy | None:
    raw = annotations.get(RETRY_GRPC)
    if raw is None:
        return None
    codes: set[int] = set()
    for part in raw.split(","):
        name = part.strip().lower()
        if not name:
            continue
        code = GRPC_NAMES.get(name)
        if code is None:
            problems.append(f"{source}: {RETRY_GRPC}: {name!r} is not one of "
                            f"{', '.join(GRPC_NAMES)}")
            continue
        codes.add(HTTP_OF[code])
    attempts = 1
    limit = annotations.get(RETRY_LIMIT)
    if limit is not None:
        if limit.strip().isdigit():
            attempts = int(limit.strip())
        else:
            problems.append(f"{source}: {RETRY_LIMIT}: {limit!r} is not a whole number")
    return RetryPolicy(attempts=attempts, codes=frozenset(codes), source=source)


def _duration(annotations: Mapping[str, str], key: str, source: str,
              problems: list[str]) -> float | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    got = parse_linkerd_duration(raw)
    if got is None:
        problems.append(f"{source}: {key}: {raw!r} is not a duration such as '300ms'")
    return got


def _has(annotations: Mapping[str, str], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in annotations)


def settings_from_annotations(
    decision: Decision,
    route_annotations: Mapping[str, str] | None,
    service_annotations: Mapping[str, str] | None,
) -> RetrySettings:
    """The retry and timeout settings of a forwarded call (see the module docstring).

    Args:
        decision: The call's decision (its ``retry``/``timeouts`` come from an HTTPRoute).
        route_annotations: Annotations of the GRPCRoute that matched, if any.
        service_annotations: Annotations of the Service the call was addressed to, if any.
    """
    problems: list[str] = []
    policy = decision.retry
    timeouts = decision.timeouts
    idempotent: bool | None = None
    route = decision.route
    route_src = f"{route.kind} {route.namespace}/{route.name} annotations" if route else ""
    parent = decision.parent
    svc_src = f"Service {parent.namespace}/{parent.name} annotations" if parent else ""
    retry_anns, retry_src = (route_annotations, route_src) if (
        route_annotations and _has(route_annotations, "retry.linkerd.io/")
    ) else (service_annotations, svc_src)
    time_anns, time_src = (route_annotations, route_src) if (
        route_annotations and _has(route_annotations, "timeout.linkerd.io/")
    ) else (service_annotations, svc_src)
    per_try = None
    if policy is None and retry_anns:
        policy = _retry_from(retry_anns, retry_src, problems)
        if policy is not None:
            idempotent = True
            per_try = _duration(retry_anns, RETRY_TIMEOUT, retry_src, problems)
    request = None
    if (timeouts is None or timeouts.request is None) and time_anns:
        request = _duration(time_anns, TIMEOUT_REQUEST, time_src, problems)
    if per_try is not None or request is not None:
        base = timeouts or Timeouts()
        timeouts = Timeouts(
            request=base.request if request is None else request,
            backend_request=base.backend_request if per_try is None else per_try,
        )
    return RetrySettings(policy=policy, timeouts=timeouts, idempotent=idempotent,
                         problems=tuple(problems))


class TLSProblem(str):
    """Why a BackendTLSPolicy cannot be honoured by grpcio (the call fails with it)."""

    __slots__ = ()


def _wildcard_covers(pattern: str, name: str) -> bool:
    if not pattern.startswith("*."):
        return pattern == name
    head, _, rest = name.partition(".")
    return bool(head) and rest == pattern[2:]


def tls_name(tls: BackendTLS, *, spiffe_via_dns_san: bool) -> str | TLSProblem:
    """The DNS name to send as SNI and verify for a backend's TLS policy, or a problem.

    * No ``subjectAltNames``: ``validation.hostname`` (SNI and verified name, BTP).
    * DNS SANs: the hostname when a SAN covers it (SNI as the policy says), else the first
      non-wildcard DNS SAN (grpcio cannot send one name and verify another).
    * URI SANs only (SPIFFE IDs): grpcio cannot check them. Refused, unless the operator
      sets ``spiffe_via_dns_san``, declaring that workload certificates carry a DNS SAN equal
      to ``validation.hostname`` that stands for the SPIFFE identity; then that is verified.
    """
    hostname = tls.hostname
    sans = tls.subject_alt_names
    if not sans:
        return hostname
    dns = [v for t, v in sans if t == "Hostname"]
    if dns:
        if any(_wildcard_covers(p.lower(), hostname.lower()) for p in dns):
            return hostname
        for name in dns:
            if not name.startswith("*."):
                return name
        return TLSProblem(
            f"BackendTLSPolicy {tls.policy}: only wildcard DNS subjectAltNames "
            f"({', '.join(dns)}) that do not cover {hostname!r}: grpcio verifies one exact name"
        )
    if spiffe_via_dns_san:
        return hostname
    uris = ", ".join(v for _, v in sans)
    return TLSProblem(
        f"BackendTLSPolicy {tls.policy}: subjectAltNames name only URIs ({uris}); a Python "
        "gRPC client cannot verify a URI SAN, so the call was not sent. Give workload "
        "certificates a DNS SAN for the identity and set spiffe_via_dns_san=True to verify "
        f"{hostname!r} in its place"
    )
