"""Verdicts and audit records: who asked for what, which policy decided, allow or deny."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

import attrs

from meshclient.authz._identity import Caller

__all__ = ["AuditRecord", "DecisionHook", "DryRunResult", "LogDecisions", "Verdict"]

LogDecisions = Literal["all", "deny", "none"]


@attrs.frozen(kw_only=True)
class DryRunResult:
    """What a dry-run policy (``istio.io/dry-run: "true"``) would have done."""

    policy: str
    action: str
    matched: bool


@attrs.frozen(kw_only=True)
class Verdict:
    """The outcome of one authorization decision.

    Verdicts for each policy are built when policies compile; a decision returns one of them.
    """

    allowed: bool
    status: int
    """200 when allowed; 403 denied; 401 when credentials were required, missing or bad."""
    reason: str
    """A short code, safe to show the caller (it says nothing of the policy's contents)."""
    policy: str | None = None
    """``Kind ns/name`` of the policy that decided, if one did."""
    audit: bool = False
    """An AUDIT policy matched the request."""
    dry_run: tuple[DryRunResult, ...] = ()
    detail: str = ""
    """For logs only: never sent to the caller."""


def _deny(reason: str, status: int = 403, detail: str = "") -> Verdict:
    return Verdict(allowed=False, status=status, reason=reason, detail=detail)


DENY_ON_ERROR: Final = _deny("error", detail="authorization could not decide; denying")
ALLOW_NO_POLICY: Final = Verdict(allowed=True, status=200, reason="no_policy")
DENY_NO_MATCH: Final = _deny("no_matching_policy")
DENY_MISSING_CREDENTIALS: Final = _deny("missing_credentials", 401)


@attrs.frozen(kw_only=True)
class AuditRecord:
    """One decision as logged to ``meshclient.authz`` and handed to ``on_decision``."""

    workload: str
    """``namespace`` (and service account) of the server deciding."""
    caller: Caller
    method: str
    host: str
    path: str
    port: int | None
    verdict: Verdict

    @property
    def who(self) -> str:
        parts = []
        if self.caller.peer is not None:
            parts.append(self.caller.peer.spiffe_id)
        if self.caller.user is not None:
            parts.append(f"user={self.caller.user.principal}")
        if not parts:
            parts.append("anonymous")
        if self.caller.source_ip:
            parts.append(f"from {self.caller.source_ip}")
        return " ".join(parts)

    def message(self) -> str:
        v = self.verdict
        word = "allow" if v.allowed else "deny"
        by = f" by {v.policy}" if v.policy else ""
        dry = "".join(
            f"; dry-run {d.policy} ({d.action}) {'matched' if d.matched else 'did not match'}"
            for d in v.dry_run
        )
        return (f"authz {word} {v.status} {v.reason}{by}: {self.who} -> {self.method} "
                f"{self.host}{self.path} port={self.port} on {self.workload}"
                f"{' [audit]' if v.audit else ''}{dry}")


DecisionHook = Callable[[AuditRecord], object]
