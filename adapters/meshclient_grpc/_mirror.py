"""RequestMirror for gRPC calls: copies sent fire-and-forget, their answers ignored.

A GRPCRoute rule (or one of its backendRefs) may mirror calls to another Service (GR
filters, ``percent`` of them). The copy goes to an endpoint of the mirror backend picked by
the same balancer, with the metadata the call itself carries; its result is reported to the
balancer and otherwise dropped, and it never delays or fails the call. Only unary-request
calls are mirrored: a request iterator can be read once, by the call itself.
"""

from __future__ import annotations

from typing import Any

import grpc

from meshclient.balancing import Pick
from meshclient.routing import Backend
from meshclient_grpc._calls import Attempt, CallState, Router
from meshclient_grpc._policy import TLSProblem, outcome_of

__all__ = ["mirror_attempts", "mirror_done"]


def mirror_attempts(state: CallState) -> list[tuple[Attempt, Pick[Backend], float]]:
    """The copies to send for this call's first attempt: (attempt, pick, start time)."""
    state.mirrors_due = False
    router = state.router
    d = state.decision
    pick = state.pick
    mirrors = d.mirrors + (pick.backend.mirrors if pick is not None else ())
    out: list[tuple[Attempt, Pick[Backend], float]] = []
    for m in mirrors:
        if m.percent < 100.0 and router.rand() * 100.0 >= m.percent:
            continue
        backend = m.backend
        if not backend.valid:
            continue
        got = router.balancer.pick((backend,), now=router.wall())
        if got.__class__ is not Pick:
            continue
        mpick: Pick[Backend] = got
        key = router.key_for(backend, mpick)
        if isinstance(key, TLSProblem):
            router.balancer.report(mpick, None, None, now=router.wall())
            continue
        timeout = None if state.deadline is None else max(0.0,
                                                          state.deadline - router.clock())
        out.append((Attempt(key, state.metadata, timeout), mpick, router.clock()))
    return out


def mirror_done(router: Router, pick: Pick[Backend], t0: float, call: Any,
                code: grpc.StatusCode | None, details: str) -> None:
    """Report a finished copy to the balancer (None code: it was cancelled)."""
    outcome = None if code is None else outcome_of(code, details, per_try=False)
    router.balancer.report(pick, outcome, router.clock() - t0 if outcome else None,
                           now=router.wall())
