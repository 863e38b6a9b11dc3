"""Choosing one endpoint from a pool of eligible ones: the four policies.

A pool holds the healthy endpoints of one locality tier (or, in panic, all of them) and is
rebuilt only when health changes, so each choice below is O(1), or O(log n) with unequal
weights (a bisect, or a heap for weighted round robin).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Final

import attrs

from meshclient.balancing._config import PeakEwma, Policy

if TYPE_CHECKING:
    from meshclient.balancing._group import EndpointHandle

__all__ = ["Chooser", "Pool", "make_chooser"]

Rand = Callable[[], float]
Chooser = Callable[["Pool", Rand, float], "EndpointHandle"]
"""(pool, rand, now) → one member of the (non-empty) pool."""


@attrs.define(eq=False)
class Pool:
    """The endpoints one choice is made from, with the policy's cursor state."""

    members: list[EndpointHandle]
    cumulative: list[int] | None
    """Running weight sums, or None when all weights are equal (the common, faster case)."""
    total: int
    cursor: int = 0
    heap: list[tuple[float, int]] | None = None
    """Weighted round robin: (virtual deadline, member index), earliest first."""

    @classmethod
    def of(cls, members: Sequence[EndpointHandle], cursor: int = 0) -> Pool:
        ms = list(members)
        weights = [h.info.weight for h in ms]
        if len(set(weights)) <= 1:
            return cls(ms, None, len(ms), cursor % len(ms) if ms else 0)
        cum = list(accumulate(weights))
        return cls(ms, cum, cum[-1], cursor)

    def sample(self, rand: Rand) -> EndpointHandle:
        """One member at random, in proportion to weight."""
        m = self.members
        if self.cumulative is None:
            return m[int(rand() * len(m))]
        return m[bisect_right(self.cumulative, rand() * self.total)]


def _round_robin(pool: Pool, rand: Rand, now: float) -> EndpointHandle:
    m = pool.members
    if pool.cumulative is None:
        i = pool.cursor
        pool.cursor = i + 1 if i + 1 < len(m) else 0
        return m[i]
    # Earliest deadline first (Envoy's weighted round robin): each member's deadline
    # advances by 1/weight when served, so shares follow weights and turns interleave.
    heap = pool.heap
    if heap is None:
        heap = pool.heap = [(1.0 / h.info.weight, i) for i, h in enumerate(m)]
        heapq.heapify(heap)
    deadline, i = heap[0]
    heapq.heapreplace(heap, (deadline + 1.0 / m[i].info.weight, i))
    return m[i]


def _random(pool: Pool, rand: Rand, now: float) -> EndpointHandle:
    return pool.sample(rand)


def _two(pool: Pool, rand: Rand) -> tuple[EndpointHandle, EndpointHandle]:
    m = pool.members
    n = len(m)
    if pool.cumulative is None:
        # One draw for both: the fraction left after picking i is itself uniform, and a
        # double has 53 bits, plenty for two indices into any endpoint set.
        r = rand() * n
        i = int(r)
        j = int((r - i) * (n - 1))
        if j >= i:
            j += 1  # two distinct members, uniformly
        return m[i], m[j]
    a = pool.sample(rand)
    b = pool.sample(rand)
    if b is a:
        b = pool.sample(rand)  # one more draw; a heavy member may still come twice
    return a, b


def _least_request(pool: Pool, rand: Rand, now: float) -> EndpointHandle:
    if len(pool.members) == 1:
        return pool.members[0]
    a, b = _two(pool, rand)
    return b if b.in_flight < a.in_flight else a


_NEGLIGIBLE_DECAY: Final = 0.02
"""Estimates younger than this many decay constants are compared undecayed: the factor is
above 0.98, a smaller error than latency noise, and skipping exp() per candidate is most of
this policy's cost above least-request's."""


def _peak_ewma(settings: PeakEwma) -> Chooser:
    inv_decay = 1.0 / settings.decay
    older = -_NEGLIGIBLE_DECAY * settings.decay  # (last update - now) below this: decay
    floor = settings.floor
    exp = math.exp

    def choose(pool: Pool, rand: Rand, now: float) -> EndpointHandle:
        m = pool.members
        n = len(m)
        if n == 1:
            return m[0]
        if pool.cumulative is None:  # _two() inlined: the equal-weight case is the hot one
            r = rand() * n
            i = int(r)
            j = int((r - i) * (n - 1))
            a = m[i]
            b = m[j + 1 if j >= i else j]
        else:
            a, b = _two(pool, rand)
        # cost = estimate decayed to now × (in flight + 1), the estimate floored; written out
        # twice rather than called twice, because this runs per request. An endpoint never
        # looked at starts its default estimate's decay now, as tower stamps a new
        # endpoint's estimate when it is created: a newcomer is tried once its peers' costs
        # rise above its decaying default.
        ea = a.ewma
        at = a.ewma_at
        if at is None:
            a.ewma_at = now
        else:
            at -= now
            if at < older:
                ea *= exp(at * inv_decay)
        eb = b.ewma
        bt = b.ewma_at
        if bt is None:
            b.ewma_at = now
        else:
            bt -= now
            if bt < older:
                eb *= exp(bt * inv_decay)
        cost_a = (ea if ea > floor else floor) * (a.in_flight + 1)
        cost_b = (eb if eb > floor else floor) * (b.in_flight + 1)
        return b if cost_b < cost_a else a

    return choose


def make_chooser(policy: Policy, ewma: PeakEwma) -> Chooser:
    """The choice function for ``policy``."""
    if policy is Policy.ROUND_ROBIN:
        return _round_robin
    if policy is Policy.RANDOM:
        return _random
    if policy is Policy.LEAST_REQUEST:
        return _least_request
    return _peak_ewma(ewma)
