"""The ``Balancer``: endpoint sets per Service port, and the pick/report calls adapters make."""

from __future__ import annotations

import enum
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from math import exp as _exp
from typing import Any, Final

import attrs

from meshclient.balancing._config import BalancerConfig, Policy
from meshclient.balancing._endpoints import build_endpoint_sets
from meshclient.balancing._group import EndpointGroup, EndpointHandle
from meshclient.balancing._hashing import BACKEND_SALT, key_hash, spread
from meshclient.balancing._outlier import OutcomeLike, OutlierState, classify
from meshclient.balancing._pickers import Chooser, make_chooser
from meshclient.balancing._results import (
    B,
    BalancerStatistics,
    EndpointSetStatistics,
    EndpointStatistics,
    NoEndpoints,
    Overflow,
    Pick,
)
from meshclient.balancing._session import SessionConfig, parse_token
from meshclient.balancing._session import session_token as make_token
from meshclient.model import EndpointSlice, Service

__all__ = ["Balancer"]

_HEALTHY: Final = OutlierState.HEALTHY
_EJECTED: Final = OutlierState.EJECTED

_GroupKey = tuple[str, str, int | None]


class _Foreign(enum.Enum):
    TOKEN = "token"
    """A session token meshclient did not issue: pick by its hash instead."""


_FOREIGN: Final = _Foreign.TOKEN


def _choose_backend(backends: Sequence[B], u: float) -> B | None:
    """The backend a draw ``u`` in [0, 1) lands on, by weight; None if no weight is > 0."""
    total = 0
    for b in backends:
        if b.weight > 0:
            total += b.weight
    if total <= 0:
        return None
    x = u * total
    acc = 0
    chosen = None
    for b in backends:
        w = b.weight
        if w > 0:
            acc += w
            chosen = b
            # Strictly below: a backend of weight 0 never covers any part of [0, total).
            if x < acc:
                return b
    return chosen  # float rounding left x at the very top; the last positive one owns it


@attrs.define(eq=False, kw_only=True)
class Balancer:
    """Endpoint sets of every Service port, with their live counters.

    ``update`` swaps in new sets atomically and keeps each surviving endpoint's counters,
    latency estimate and ejection. ``pick`` and ``report`` are O(1) in the number of
    endpoints (O(log n) with unequal weights) except on degraded paths (every choice
    excluded or full), and take a short lock so threads sharing a balancer keep exact
    in-flight counts.

    Args:
        rand: Uniform floats in [0, 1): ``random.Random(seed).random`` in tests.
        config: Policy, locality, outlier detection, limits.
    """

    rand: Callable[[], float]
    config: BalancerConfig = attrs.field(factory=BalancerConfig)
    _groups: dict[_GroupKey, EndpointGroup] = attrs.field(init=False, factory=dict)
    _keys_of: dict[tuple[str, str], list[_GroupKey]] = attrs.field(init=False, factory=dict)
    """Each Service's keys in ``_groups`` (changed under the lock only, never read outside)."""
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _choose_in: Chooser = attrs.field(init=False)
    _capacity: int | None = attrs.field(init=False)
    _max_concurrent: int | None = attrs.field(init=False)
    _inv_decay: float = attrs.field(init=False)
    _penalty: float = attrs.field(init=False)
    _ewma: bool = attrs.field(init=False)
    _retired_picks: int = attrs.field(init=False, default=0)
    """Picks of endpoints that updates removed (live ones count on their handles)."""
    _overflows: int = attrs.field(init=False, default=0)
    _no_endpoints: int = attrs.field(init=False, default=0)
    _sessions_kept: int = attrs.field(init=False, default=0)
    _sessions_started: int = attrs.field(init=False, default=0)
    _ejections: int = attrs.field(init=False, default=0)
    _generation: int = attrs.field(init=False, default=0)
    _last_backend: object = attrs.field(init=False, default=None)
    _last_group: EndpointGroup | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self._choose_in = make_chooser(self.config.policy, self.config.ewma)
        self._capacity = self.config.limits.capacity
        self._max_concurrent = self.config.limits.max_concurrent
        self._inv_decay = 1.0 / self.config.ewma.decay
        self._penalty = self.config.ewma.failure_penalty
        self._ewma = self.config.policy is Policy.PEAK_EWMA

    # -- snapshot -----------------------------------------------------------------------

    def update(
        self,
        services: Iterable[Service],
        slices: Iterable[EndpointSlice],
        *,
        weights: Mapping[str, int] | None = None,
        only: Collection[tuple[str, str]] | None = None,
    ) -> None:
        """Replace every endpoint set with those of a new snapshot.

        Unchanged sets are kept as they are; changed ones keep the state of endpoints that
        remain. A Service with a single port is also found by backends without a port.

        Args:
            services: The snapshot's Services (with ``only``: just those Services).
            slices: The snapshot's EndpointSlices (with ``only``: just their slices).
            weights: Optional per-endpoint weights by address (Kubernetes has no such field;
                this is for operators and agents that know better); absent means 1.
            only: ``(namespace, name)`` of the Services that changed: every other Service's
                sets are kept as they are, so an update costs what changed, not the whole
                cluster. A Service named here but absent from ``services`` is removed.
        """
        sets = build_endpoint_sets(
            services, slices, ip_families=self.config.ip_families, weights=weights
        )
        ports_per_service = Counter((k[0], k[1]) for k in sets)
        with self._lock:
            old = self._groups
            new: dict[_GroupKey, EndpointGroup] = {}
            if only is not None:
                # Copy the map (C speed) and take out the changed Services' keys: no Python
                # loop over the Services that did not change.
                new = dict(old)
                services_changed = {*only, *ports_per_service}
                old = {k: new.pop(k) for svc in services_changed
                       for k in self._keys_of.pop(svc, ()) if k in new}
            else:
                self._keys_of = {}
            fresh: list[EndpointGroup] = []
            for key, value in sets.items():
                prev = old.get(key)
                if prev is not None and prev.value == value:
                    group = prev
                else:
                    group = EndpointGroup.build(value, self.config, self._choose_in,
                                                self.rand, prev)
                    if prev is not None and prev.tables:
                        fresh.append(group)
                new[key] = group
                keys = self._keys_of.setdefault((key[0], key[1]), [])
                keys.append(key)
                if ports_per_service[(key[0], key[1])] == 1:
                    new[(key[0], key[1], None)] = group
                    keys.append((key[0], key[1], None))
            touched = new if only is None else {k: new[k] for k in sets}
            live = {id(h) for g in touched.values() for h in g.handles}
            self._retired_picks += sum(
                h.picks for h in {id(h): h for g in old.values() for h in g.handles}.values()
                if id(h) not in live
            )
            self._groups = new
            self._last_backend = self._last_group = None
            self._generation += 1
            tiers = {id(g): list(old[g.value.key].tables) for g in fresh}
        # A set that was hashed will be hashed again: build its tables now, off the request
        # path and outside the lock (a pick racing us builds its own; both are equal).
        for group in fresh:
            for tier in tiers[id(group)]:
                group.table(tier)

    # -- the request path ---------------------------------------------------------------

    def pick(
        self,
        backends: Sequence[B],
        *,
        now: float,
        hash_key: str | None = None,
        exclude: Collection[str] = (),
        session: SessionConfig | None = None,
        session_token: str | None = None,
    ) -> Pick[B] | Overflow[B] | NoEndpoints[B]:
        """Choose a backend by weight, then an endpoint of it.

        Args:
            backends: The rule's weighted backends (weight 0 is never chosen, except by a
                session that is already pinned to it).
            now: The caller's clock, in seconds (ejections end by it; session tokens carry
                it, so use wall-clock seconds when sessions must outlive the process).
            hash_key: Pick by consistent hash of this key (Maglev) instead of the policy.
            exclude: Addresses already tried by this request; avoided while others exist.
            session: The rule's session persistence, if it has one.
            session_token: The token the request carried (cookie or header value).

        Returns:
            ``Pick`` (report it exactly once), ``Overflow`` (every usable endpoint full) or
            ``NoEndpoints`` (nothing to send to; answer its status).
        """
        if session is not None:
            return self._pick_in_session(backends, now, hash_key, exclude, session,
                                         session_token)
        lock = self._lock
        lock.acquire()  # not ``with``: half the cost, and this runs per request
        try:
            # The request path: kept flat on purpose (each call costs ~0.1 µs of a 2 µs budget);
            # rare branches call out.
            hv = 0
            backend: B | None
            if hash_key is not None:
                hv = key_hash(hash_key)
            if len(backends) == 1:
                backend = backends[0]
                if backend.weight <= 0:
                    backend = None
            elif hash_key is not None:
                backend = _choose_backend(backends, spread(hv, BACKEND_SALT))
            else:
                backend = _choose_backend(backends, self.rand())
            if backend is None:
                self._no_endpoints += 1
                return NoEndpoints(backend=None, reason="no backend has a weight above 0",
                                   status=500)
            # Requests of one rule pass the same backend object every time: remember its group
            # and skip building and hashing the key (``update`` forgets it).
            if backend is self._last_backend:
                group = self._last_group
            else:
                group = self._groups.get((backend.namespace, backend.name, backend.port))
                self._last_backend, self._last_group = backend, group
            if group is None or group.empty:
                return self._no_endpoints_in(backend, group)
            if group.expiry and group.expiry[0][0] <= now:
                group.expire(now)
            cap = self._capacity
            h: EndpointHandle | None
            if hash_key is not None:
                h = group.choose_hashed(hv, now, exclude, cap)
            else:
                pool = group.fast_pool
                if pool is None:
                    pool = group.pool_for(self.rand())[0]
                h = self._choose_in(pool, self.rand, now)
                if (exclude and h.info.address in exclude) or (
                    cap is not None and h.in_flight >= cap
                ):
                    h = group.choose_carefully(pool, now, exclude, cap)
            if h is None:
                self._overflows += 1
                return Overflow(backend=backend, reason=(
                    f"every endpoint of {backend.namespace}/{backend.name} is at its limit of "
                    f"{cap} requests"))
            # _commit() inlined: the hot path's last step.
            n = h.in_flight
            h.in_flight = n + 1
            h.picks += 1
            if cap is None and h.last_backend is backend:
                return h.last_pick  # type: ignore[return-value]  # made for this very backend
            mc = self._max_concurrent
            if mc is not None and n >= mc:
                return attrs.evolve(h.pick_for(backend), pending=True)
            return h.pick_for(backend)
        finally:
            lock.release()

    def _pick_in_session(
        self, backends: Sequence[B], now: float, hash_key: str | None,
        exclude: Collection[str], session: SessionConfig, token: str | None,
    ) -> Pick[B] | Overflow[B] | NoEndpoints[B]:
        # Following a session and starting one are separate critical sections: nothing
        # needs them to be atomic, and the plain pick stays a single flat function.
        if token is not None:
            with self._lock:
                kept = self._follow_session(backends, session, token, now, exclude)
            if kept is _FOREIGN:
                # Not one of our tokens (a header value the client chose): hash it, per
                # rule, and hand out nothing, so the client's own value keeps working.
                return self.pick(backends, now=now, hash_key=f"{session.rule}\0{token}",
                                 exclude=exclude)
            if kept is not None:
                return kept
        got = self.pick(backends, now=now, hash_key=hash_key, exclude=exclude)
        if isinstance(got, Pick):
            with self._lock:
                self._sessions_started += 1
            return attrs.evolve(got, session_token=make_token(session, got.handle.info.key,
                                                              now))
        return got

    def report(
        self, pick: Pick[Any], outcome: OutcomeLike | None, latency: float | None, *,
        now: float,
    ) -> None:
        """Account for the end of one attempt sent to ``pick``.

        Args:
            pick: What ``pick`` returned for the attempt.
            outcome: How it ended (``meshclient.resilience.Outcome`` fits), or None when it
                was cancelled before an outcome: only the in-flight count changes.
            latency: Seconds from sending to the full response (or the failure); None when
                not measured.
            now: The caller's clock.

        Raises:
            RuntimeError: More reports than picks for this endpoint (a double report); the
                counters are left unchanged.
            ValueError: ``outcome`` is neither a status nor a known failure (see
                ``classify``); the in-flight count has been released.
        """
        h: EndpointHandle = pick.handle
        lock = self._lock
        lock.acquire()
        try:
            n = h.in_flight
            if n <= 0:
                raise RuntimeError(
                    f"report for {h.info.address}:{h.info.port} without a matching pick"
                )
            h.in_flight = n - 1
            if outcome is None:
                return
            status = outcome.status
            if self._ewma:
                rtt = latency
                if status is None:  # a failure without response: never cheaper than the penalty
                    penalty = self._penalty
                    rtt = penalty if rtt is None or rtt < penalty else rtt
                if rtt is not None:
                    # tower's PeakEwma update: a peak (or the first observation) is believed
                    # at once, anything lower is blended in by the time since the last one.
                    e = h.ewma
                    at = h.ewma_at
                    if rtt > e or at is None or not h.observed:
                        e = rtt
                        h.observed = True
                    elif now > at:
                        w = _exp((at - now) * self._inv_decay)
                        e = e * w + rtt * (1.0 - w)
                    h.ewma = e
                    h.ewma_at = now
            t = h.tracker
            # A success on a healthy endpoint with nothing counted changes nothing: skip the
            # table.
            if status is not None and status < 500 and t.clean:
                return
            signal = classify(outcome)
            group = h.owner
            if group is None:  # pragma: no cover - every handle is built inside a group
                return
            before = t.state
            if t.feed(signal, now, may_eject=group.may_eject()) is _EJECTED and (
                before is _HEALTHY
            ):
                group.ejected_now(h)
                self._ejections += 1
        finally:
            lock.release()

    # -- internals ----------------------------------------------------------------------

    def _commit(self, h: EndpointHandle, backend: B) -> Pick[B]:
        n = h.in_flight
        h.in_flight = n + 1
        h.picks += 1
        mc = self._max_concurrent
        if mc is not None and n >= mc:
            return attrs.evolve(h.pick_for(backend), pending=True)
        if h.last_backend is backend:
            return h.last_pick  # type: ignore[return-value]  # made for this very backend
        return h.pick_for(backend)

    def _no_endpoints_in(self, backend: B, group: EndpointGroup | None) -> NoEndpoints[B]:
        self._no_endpoints += 1
        what = f"Service {backend.namespace}/{backend.name} port {backend.port}"
        if group is None:
            return NoEndpoints(backend=backend, reason=f"{what} is not known to the balancer")
        return NoEndpoints(backend=backend, reason=f"{what} has no usable endpoints")

    def _follow_session(
        self, backends: Sequence[B], session: SessionConfig, token: str, now: float,
        exclude: Collection[str],
    ) -> Pick[B] | Overflow[B] | _Foreign | None:
        """The pick a session token asks for, ``_FOREIGN``, or None to start a new session."""
        # Look the digest up before validating the token's shape: a known digest is ours by
        # construction, and the shape check (a regex) is only needed when it is unknown.
        digest = token[:16]
        owner: tuple[B, EndpointGroup, EndpointHandle] | None = None
        for b in backends:  # every backend, weight 0 included: a session beats weights
            group = self._groups.get((b.namespace, b.name, b.port))
            if group is not None:
                h = group.token_owner(session.rule, digest)
                if h is not None:
                    owner = (b, group, h)
                    break
        parsed = parse_token(token) if owner is None or session.absolute_timeout else None
        if owner is None:
            if parsed is None:
                return _FOREIGN
            return None  # ours, but its endpoint is gone: re-pin
        limit = session.absolute_timeout
        if limit is not None:
            issued = parsed[1] if parsed is not None else None
            if issued is None or now - issued > limit:
                return None  # GEP-1619 absoluteTimeout: this session is over; start another
        b, group, h = owner
        if group.expiry and group.expiry[0][0] <= now:
            group.expire(now)
        # GEP-1619: when the pinned endpoint stops serving, fall back and re-pin. A retry
        # that excludes it counts: its failure is the evidence.
        if (h.tracker.state is _EJECTED and not group.panic) or (
            exclude and h.info.address in exclude
        ):
            return None
        cap = self._capacity
        if cap is not None and h.in_flight >= cap:
            self._overflows += 1
            return Overflow(backend=b, reason=(
                f"the session's endpoint {h.info.address}:{h.info.port} is at its limit of "
                f"{cap} requests"))
        self._sessions_kept += 1
        return self._commit(h, b)

    # -- statistics ---------------------------------------------------------------------

    def statistics(self) -> BalancerStatistics:
        with self._lock:
            groups = {id(g): g for g in self._groups.values()}
            return BalancerStatistics(
                sets=len(groups),
                endpoints=sum(len(g.handles) for g in groups.values()),
                # Every pick ends as a Pick (counted on its endpoint), Overflow or NoEndpoints;
                # adding them up keeps a counter off the request path.
                picks=self._retired_picks + self._overflows + self._no_endpoints + sum(
                    h.picks for g in groups.values() for h in g.handles),
                overflows=self._overflows, no_endpoints=self._no_endpoints,
                in_flight=sum(h.in_flight for g in groups.values() for h in g.handles),
                sessions_kept=self._sessions_kept,
                sessions_started=self._sessions_started, ejections=self._ejections,
                generation=self._generation,
            )

    def set_statistics(
        self, namespace: str, name: str, port: int | None
    ) -> EndpointSetStatistics | None:
        """One endpoint set's counters, or None if the balancer has no such set."""
        with self._lock:
            group = self._groups.get((namespace, name, port))
            return group.statistics() if group is not None else None

    def endpoint_statistics(
        self, namespace: str, name: str, port: int | None
    ) -> tuple[EndpointStatistics, ...]:
        """Each endpoint's counters in one set, sorted by endpoint key; empty if unknown."""
        with self._lock:
            group = self._groups.get((namespace, name, port))
            return group.endpoint_statistics() if group is not None else ()

