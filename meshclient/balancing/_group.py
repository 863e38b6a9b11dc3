"""Runtime state of one endpoint set: tiers, health, pools, hash tables, session maps.

Invariants:

* ``pools`` hold exactly the healthy, positive-weight endpoints of the tiers that get traffic;
  they are rebuilt (O(n)) when an endpoint is ejected or returns, never per pick.
* ``ejected`` counts this group's ejected handles; ``expiry`` holds one entry per ejection
  (stale entries are skipped when popped), so a pick learns of returns in O(1).
* Handles survive updates: an endpoint still present after ``update`` keeps its counters,
  latency estimate and ejection, and a ``report`` for a pick made before the update lands on
  the same object.
"""

from __future__ import annotations

import heapq
import itertools
from array import array
from collections.abc import Callable, Collection
from typing import Any, Final

import attrs

from meshclient.balancing._config import BalancerConfig
from meshclient.balancing._endpoints import EndpointInfo, EndpointSet
from meshclient.balancing._hashing import TABLE_SIZE, TIER_SALT, build_maglev, spread
from meshclient.balancing._locality import TIERS, assign_tiers, preference_for, tier_loads
from meshclient.balancing._outlier import OutlierState, OutlierTracker, Signal
from meshclient.balancing._pickers import Chooser, Pool
from meshclient.balancing._results import EndpointSetStatistics, EndpointStatistics, Pick
from meshclient.balancing._session import session_digest

__all__ = ["ALL_TIERS", "EndpointGroup", "EndpointHandle"]

ALL_TIERS: Final = -1
"""Hash-table key for the panic table, which spans every tier."""
_PROBES: Final = 32
"""Hashed picks look this far along the table for a usable endpoint before giving up on
the hash (ejections are capped at a few percent, so a handful of probes almost always do)."""
_CARELESS_TRIES: Final = 3
_PICK_CACHE_MAX: Final = 16
_SESSION_RULES_MAX: Final = 64

_HEALTHY: Final = OutlierState.HEALTHY
_EJECTED: Final = OutlierState.EJECTED
_seq = itertools.count()


@attrs.define(eq=False)
class EndpointHandle:
    """One endpoint's live counters. Opaque to adapters: they only pass it back."""

    info: EndpointInfo
    tracker: OutlierTracker
    owner: EndpointGroup | None = None
    tier: int = 2
    same_node: bool = False
    app_protocol: str | None = None
    in_flight: int = 0
    picks: int = 0
    ewma: float = 0.0
    ewma_at: float | None = None
    """When ``ewma`` was last set; None until a pick first looks at the endpoint."""
    observed: bool = False
    """Whether a latency was ever observed (for statistics)."""
    picks_by_backend: dict[int, Pick[Any]] = attrs.field(factory=dict)
    """Prebuilt picks keyed by ``id(backend)``; each holds its backend, so ids stay unique."""
    last_backend: object = None
    last_pick: Pick[Any] | None = None
    """The most recent of ``picks_by_backend``: one identity check on the hot path."""

    def pick_for(self, backend: Any) -> Pick[Any]:
        """The prebuilt pick of this endpoint for ``backend`` (made on first use)."""
        cached = self.picks_by_backend.get(id(backend))
        if cached is not None:
            self.last_backend, self.last_pick = backend, cached
            return cached
        if len(self.picks_by_backend) >= _PICK_CACHE_MAX:
            self.picks_by_backend.clear()  # backends of old snapshots; a bound, not an LRU
        made: Pick[Any] = Pick(
            address=self.info.address, port=self.info.port, backend=backend,
            same_node=self.same_node, app_protocol=self.app_protocol, handle=self,
        )
        self.picks_by_backend[id(backend)] = made
        self.last_backend, self.last_pick = backend, made
        return made

    def forget_picks(self) -> None:
        self.picks_by_backend.clear()
        self.last_backend = self.last_pick = None


@attrs.define(eq=False)
class EndpointGroup:
    """One ``EndpointSet`` with the state picking needs."""

    value: EndpointSet
    config: BalancerConfig
    choose_in: Chooser
    rand: Callable[[], float]
    handles: list[EndpointHandle]
    by_address: dict[tuple[str, int], EndpointHandle]
    tier_members: tuple[list[EndpointHandle], ...]
    panic_pool: Pool
    """Every endpoint with weight > 0, whatever its health or tier."""
    max_ejected: int
    empty: bool = False
    """No endpoint with weight > 0: nothing to pick (sessions aside)."""
    ejected: int = 0
    healthy: int = 0
    ejections: int = 0
    expiry: list[tuple[float, int, EndpointHandle]] = attrs.field(factory=list)
    panic: bool = False
    fast_pool: Pool | None = None
    """The pool every pick uses when there is only one (or panic); None: draw a tier."""
    fast_tier: int | None = None
    """``fast_pool``'s tier (``ALL_TIERS`` in panic)."""
    pools: list[Pool] = attrs.field(factory=list)
    pool_tiers: list[int] = attrs.field(factory=list)
    cumulative_loads: list[float] = attrs.field(factory=list)
    loads: tuple[float, ...] = (0.0, 0.0, 0.0)
    tables: dict[int, tuple[list[EndpointHandle], array[int]]] = attrs.field(factory=dict)
    tokens: dict[str, dict[str, EndpointHandle]] = attrs.field(factory=dict)
    """Per rule key: session digest → endpoint, built on the rule's first session pick."""

    @classmethod
    def build(
        cls,
        value: EndpointSet,
        config: BalancerConfig,
        choose_in: Chooser,
        rand: Callable[[], float],
        previous: EndpointGroup | None,
    ) -> EndpointGroup:
        """Make the group for ``value``, adopting ``previous``'s handles where they match."""
        locality = config.locality
        tiers = assign_tiers(value.endpoints, locality, preference_for(value, locality))
        old = previous.by_address if previous is not None else {}
        handles: list[EndpointHandle] = []
        by_address: dict[tuple[str, int], EndpointHandle] = {}
        members: tuple[list[EndpointHandle], ...] = tuple([] for _ in range(TIERS))
        for info, tier in zip(value.endpoints, tiers, strict=True):
            h = old.get((info.address, info.port))
            if h is None:
                h = EndpointHandle(info=info, tracker=OutlierTracker(config.outlier),
                                   ewma=config.ewma.default_rtt)
            h.info = info
            h.tier = tier
            h.same_node = locality.node is not None and info.node == locality.node
            h.app_protocol = info.app_protocol or value.app_protocol
            h.forget_picks()
            handles.append(h)
            by_address[(info.address, info.port)] = h
            if info.weight > 0:
                members[tier].append(h)
        pickable = [h for h in handles if h.info.weight > 0]
        pct = config.outlier.max_ejection_percent
        # Envoy: at least one endpoint may always be ejected, whatever the percentage.
        max_ejected = max(1, pct * len(pickable) // 100) if pct else 0
        group = cls(
            value=value, config=config, choose_in=choose_in, rand=rand, handles=handles,
            by_address=by_address, tier_members=members,
            panic_pool=Pool.of(pickable, int(rand() * len(pickable)) if pickable else 0),
            max_ejected=max_ejected, empty=not pickable,
        )
        for h in handles:
            h.owner = group
            if h.tracker.state is _EJECTED:
                group.ejected += 1
                heapq.heappush(group.expiry, (h.tracker.ejected_until, next(_seq), h))
        group.rebuild(previous)
        return group

    def rebuild(self, previous: EndpointGroup | None = None) -> None:
        """Recompute panic, tier loads and pools from the handles' current health."""
        healthy = [[h for h in tm if h.tracker.state is _HEALTHY] for tm in self.tier_members]
        n_healthy = sum(len(x) for x in healthy)
        n_total = len(self.panic_pool.members)
        self.panic = n_total > 0 and (
            n_healthy == 0 or n_healthy < self.config.panic_threshold * n_total
        )
        self.loads = tier_loads([len(x) for x in healthy], [len(x) for x in self.tier_members],
                                self.config.locality.overprovisioning)
        self.healthy = n_healthy
        # Keep round-robin positions across rebuilds, so an ejection does not restart turns.
        source = previous if previous is not None else self
        old_cursor = {t: p.cursor for t, p in zip(source.pool_tiers, source.pools, strict=True)}
        self.pools, self.pool_tiers, self.cumulative_loads = [], [], []
        acc = 0.0
        for tier, (share, members) in enumerate(zip(self.loads, healthy, strict=True)):
            if share <= 0.0 or not members:
                continue
            cursor = old_cursor.get(tier)
            if cursor is None:
                cursor = int(self.rand() * len(members))  # spread clients over the ring
            self.pools.append(Pool.of(members, cursor))
            self.pool_tiers.append(tier)
            acc += share
            self.cumulative_loads.append(acc)
        if self.cumulative_loads:
            self.cumulative_loads[-1] = 1.0  # float sums must not leave a gap below 1
        if self.panic or not self.pools:
            self.fast_pool, self.fast_tier = self.panic_pool, ALL_TIERS
        elif len(self.pools) == 1:
            self.fast_pool, self.fast_tier = self.pools[0], self.pool_tiers[0]
        else:
            self.fast_pool = self.fast_tier = None

    # -- picking ------------------------------------------------------------------------

    def pool_for(self, u: float) -> tuple[Pool, int]:
        """The pool (and its tier) for a draw ``u`` in [0, 1)."""
        if self.panic or not self.pools:
            return self.panic_pool, ALL_TIERS
        if len(self.pools) == 1:
            return self.pools[0], self.pool_tiers[0]
        for i, c in enumerate(self.cumulative_loads):
            if u < c:
                return self.pools[i], self.pool_tiers[i]
        return self.pools[-1], self.pool_tiers[-1]

    def choose(
        self, now: float, exclude: Collection[str], capacity: int | None
    ) -> EndpointHandle | None:
        """An endpoint by policy, or None when every usable one is at capacity."""
        pool = self.fast_pool
        if pool is None:
            pool = self.pool_for(self.rand())[0]
        h = self.choose_in(pool, self.rand, now)
        if (exclude and h.info.address in exclude) or (
            capacity is not None and h.in_flight >= capacity
        ):
            return self.choose_carefully(pool, now, exclude, capacity)
        return h

    def choose_carefully(
        self, pool: Pool, now: float, exclude: Collection[str], capacity: int | None
    ) -> EndpointHandle | None:
        """The degraded path, for when the policy's choice was tried before or is full.

        Try the policy a few more times, then scan its tier, then the others; a retry that
        finds only endpoints it already tried goes back to one of them rather than failing.
        """
        def fits(h: EndpointHandle, strict: bool) -> bool:
            if strict and h.info.address in exclude:
                return False
            return capacity is None or h.in_flight < capacity

        for _ in range(_CARELESS_TRIES):
            h = self.choose_in(pool, self.rand, now)
            if fits(h, True):
                return h
        order = [pool] if self.panic else [pool, *(p for p in self.pools if p is not pool)]
        for strict in (True, False) if exclude else (True,):
            for p in order:
                ms = p.members
                start = int(self.rand() * len(ms))
                for k in range(len(ms)):
                    h = ms[(start + k) % len(ms)]
                    if fits(h, strict):
                        return h
        return None

    def table(self, tier: int) -> tuple[list[EndpointHandle], array[int]]:
        """The Maglev table of a tier (or ``ALL_TIERS``), built on first use."""
        got = self.tables.get(tier)
        if got is None:
            members = self.panic_pool.members if tier == ALL_TIERS else self.tier_members[tier]
            got = (members, build_maglev([h.info.key for h in members],
                                         [h.info.weight for h in members]))
            self.tables[tier] = got
        return got

    def choose_hashed(
        self, hv: int, now: float, exclude: Collection[str], capacity: int | None
    ) -> EndpointHandle | None:
        """The endpoint a key hash maps to, skipping unusable ones along the table."""
        tier = self.fast_tier
        if tier is None:
            tier = self.pool_for(spread(hv, TIER_SALT))[1]
        got = self.tables.get(tier)
        members, table = got if got is not None else self.table(tier)
        if table:
            slot = hv % TABLE_SIZE
            h = members[table[slot]]
            if (tier == ALL_TIERS or h.tracker.state is _HEALTHY) and not (
                exclude and h.info.address in exclude
            ) and (capacity is None or h.in_flight < capacity):
                return h
            return self._probe(members, table, slot, tier == ALL_TIERS, now, exclude,
                               capacity)
        return self.choose(now, exclude, capacity)

    def _probe(
        self, members: list[EndpointHandle], table: array[int], slot: int, any_health: bool,
        now: float, exclude: Collection[str], capacity: int | None,
    ) -> EndpointHandle | None:
        # Walking on along the table spreads an unusable endpoint's keys over the others in
        # proportion to their slots, and leaves every other key where it was.
        for k in range(1, _PROBES):
            h = members[table[(slot + k) % TABLE_SIZE]]
            if (any_health or h.tracker.state is _HEALTHY) and not (
                exclude and h.info.address in exclude
            ) and (capacity is None or h.in_flight < capacity):
                return h
        return self.choose(now, exclude, capacity)

    def token_owner(self, rule: str, digest: str) -> EndpointHandle | None:
        """The endpoint a session digest of ``rule`` names, if it is in this set."""
        owners = self.tokens.get(rule)
        if owners is None:
            if len(self.tokens) >= _SESSION_RULES_MAX:
                self.tokens.clear()  # rules of old snapshots; a bound, not an LRU
            owners = {session_digest(rule, h.info.key): h for h in self.handles}
            self.tokens[rule] = owners
        return owners.get(digest)

    # -- health -------------------------------------------------------------------------

    def may_eject(self) -> bool:
        return self.ejected < self.max_ejected

    def ejected_now(self, h: EndpointHandle) -> None:
        """Record that ``h`` just moved to EJECTED."""
        self.ejected += 1
        self.ejections += 1
        heapq.heappush(self.expiry, (h.tracker.ejected_until, next(_seq), h))
        self.rebuild()

    def expire(self, now: float) -> None:
        """Return every endpoint whose ejection is over at ``now``."""
        changed = False
        while self.expiry and self.expiry[0][0] <= now:
            until, _, h = heapq.heappop(self.expiry)
            t = h.tracker
            if h.owner is not self or t.state is not _EJECTED or t.ejected_until != until:
                continue  # moved to a newer group, or re-ejected with a later time
            t.feed(Signal.EXPIRE, now)
            self.ejected -= 1
            changed = True
        if changed:
            self.rebuild()

    # -- statistics ---------------------------------------------------------------------

    def statistics(self) -> EndpointSetStatistics:
        v = self.value
        sizes = tuple(len(m) for m in self.tier_members)
        loads = tuple(self.loads)
        return EndpointSetStatistics(
            namespace=v.namespace, service=v.service, port=v.port,
            endpoints=len(self.handles),
            healthy=self.healthy,
            ejected=self.ejected, panic=self.panic,
            terminating_fallback=v.terminating_fallback, left_out=v.left_out,
            tier_sizes=(sizes[0], sizes[1], sizes[2]),
            tier_loads=(loads[0], loads[1], loads[2]),
            in_flight=sum(h.in_flight for h in self.handles),
        )

    def endpoint_statistics(self) -> tuple[EndpointStatistics, ...]:
        return tuple(
            EndpointStatistics(
                address=h.info.address, port=h.info.port, tier=h.tier, weight=h.info.weight,
                in_flight=h.in_flight, picks=h.picks,
                ewma=h.ewma if h.observed else None,
                outlier=h.tracker.statistics(),
            )
            for h in self.handles
        )
