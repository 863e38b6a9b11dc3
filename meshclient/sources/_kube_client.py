"""The Kubernetes source's I/O: discovery, list and watch with kubernetes-asyncio, batching.

One task per ``Reflector`` does its requests and hands what they mean (store changes) to
one applier task, which coalesces bursts (``debounce`` of quiet, at most ``max_delay``
after the first change) and applies each burst to the store as one batch, then calls
``on_batch`` (the mesh recompiles there, off the request path). Until every kind's first
list is in (or failing), nothing is published (at most ``initial_hold``), so a starting
client compiles once, not once per kind.

Objects stay raw dicts (``_preload_content=False``, ``Watch(return_type="object")``): the
client's typed models reject objects the API server accepted and are several times slower
(ECOSYSTEM.md §4.1); ``meshclient.model`` parses them with its own error reports.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import aiohttp
import attrs
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from meshclient.sources._kube_kinds import KindSpec
from meshclient.sources._kube_options import KubeOptions, SyncStatus
from meshclient.sources._kube_watch import Phase, Reflector
from meshclient.sources._kubernetes import without_gc
from meshclient.store import Change, Store

__all__ = ["KubernetesSource"]

_log = logging.getLogger("meshclient.sources.kubernetes")

_DISCOVERY_TTL: Final = 1.0
"""Seconds one discovery answer serves other kinds of its group (a starting client's burst);
a kind looked for again later asks again."""

OnBatch = Callable[[bool], Awaitable[None]]
"""Called with whether the store now holds every kind's initial list."""


class _Watch(watch.Watch):
    """``Watch(return_type="object")`` that borrows the source's ``ApiClient``.

    ``Watch()`` makes an ``ApiClient`` of its own, only to deserialize; each one loads the
    system CA store (~55 ms of CPU, measured), so 16 kinds cost almost a second of blocked
    loop at every start. The attributes set here are the ones ``Watch.__init__`` sets
    (kubernetes-asyncio 30 to 36); ``close`` leaves the borrowed client open.
    """

    def __init__(self, api_client: client.ApiClient) -> None:
        # Not super().__init__(): that is what builds the extra ApiClient.
        self._raw_return_type = "object"
        self._stop = False
        self._api_client = api_client
        self.resource_version = None
        self.resp = None

    async def close(self) -> None:
        if self.resp is not None:
            self.resp.release()
            self.resp = None


class _BrokenStream(Exception):
    """A watch line that is not a JSON event (a connection cut mid-line)."""


class KubernetesSource:
    """List+watch every configured kind into ``store``; keep the last snapshot on failure.

    Args:
        api_client: A kubernetes-asyncio ``ApiClient`` (closed by ``run`` when it ends).
        store: Where batches of changes are applied.
        options: What to watch and how.
        on_batch: Awaited after each batch is applied (the mesh recompiles there), with
            whether every kind's initial list is in the store now.
        clock: Monotonic seconds.
        rand: Uniform floats in [0, 1) (backoff jitter).
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        store: Store,
        options: KubeOptions | None = None,
        *,
        on_batch: OnBatch | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.options = options or KubeOptions()
        self.store = store
        self._api = api_client
        self._on_batch = on_batch
        self._clock = clock
        self.reflectors: list[Reflector] = []
        for given in self.options.kinds:
            spec = given
            if spec.kind == "ConfigMap" and self.options.config_map_selector is not None:
                spec = attrs.evolve(spec, label_selector=self.options.config_map_selector)
            scopes: Sequence[str | None] = (
                self.options.namespaces if spec.namespaced and self.options.namespaces
                else (None,))
            for ns in scopes:
                self.reflectors.append(
                    Reflector(spec, ns, backoff=self.options.backoff, rand=rand))
        self._pending: list[list[Change]] = []
        self._wake = asyncio.Event()
        self._first_change = 0.0
        self._started = 0.0
        self.batches = 0
        self.synced = asyncio.Event()
        """Set once every kind's initial list is applied and ``on_batch`` has run for it."""
        self._listed: set[int] = set()
        """Reflectors (by id) whose initial list has been queued for the applier."""
        self._resources: dict[
            tuple[str, str], tuple[float, asyncio.Future[frozenset[str] | None]]] = {}

    # -- running --------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the cluster until cancelled; never raises for API or network failures."""
        self._started = self._clock()
        tasks = [asyncio.create_task(self._follow(r), name=f"meshclient-watch-{r.spec.kind}")
                 for r in self.reflectors]
        tasks.append(asyncio.create_task(self._apply_loop(), name="meshclient-apply"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for r in self.reflectors:
                r.stop()
            await self._api.close()

    def status(self) -> SyncStatus:
        now = self._clock()
        kinds = tuple(r.statistics() for r in self.reflectors)
        failing = [r.last_healthy for r in self.reflectors if not r.current]
        age = 0.0
        if failing:
            age = now - min(s if s is not None else self._started for s in failing)
        return SyncStatus(
            synced=self.synced.is_set(), stale=bool(failing), age=max(age, 0.0), kinds=kinds,
            errors=tuple(k.error for k in kinds if k.error), batches=self.batches,
        )

    # -- one reflector ------------------------------------------------------------------

    async def _follow(self, r: Reflector) -> None:
        delay = 0.0
        while True:
            phase = r.phase
            verb = "watch" if phase is Phase.WATCHING else "list"
            try:
                if phase is Phase.DISCOVERING:
                    verb = "get"
                    version = await self._discover(r.spec)
                    self._submit(r.discovered(version, self._clock()), r)
                elif phase is Phase.LISTING:
                    await self._list(r)
                elif phase is Phase.WATCHING:
                    await self._watch(r)
                elif phase is Phase.BACKING_OFF:
                    await asyncio.sleep(delay)
                    r.retry()
                elif phase is Phase.ABSENT:
                    await asyncio.sleep(self.options.recheck_absent)
                    r.recheck()
                else:
                    return
            except ApiException as exc:
                status = int(exc.status or 0)
                if status == 410 and phase in (Phase.LISTING, Phase.WATCHING):
                    r.expired()
                elif status == 404 and phase is not Phase.DISCOVERING:
                    # The CRD went away (or the version did): its objects are gone too.
                    self._resources.pop((r.spec.group, str(r.version)), None)
                    self._submit(r.discovered(None, self._clock()), r)
                else:
                    delay = r.failed(status, _reason(exc), self._clock(), verb=verb)
            except (TimeoutError, aiohttp.ClientError, _BrokenStream, ValueError,
                    OSError) as exc:
                delay = r.failed(None, f"{type(exc).__name__}: {exc}".rstrip(": "),
                                 self._clock(), verb=verb)
            except Exception as exc:
                # Anything else (kubernetes-asyncio raises a bare Exception for a malformed
                # event) must not end this kind's watch for good: back off and list again.
                _log.exception("%s: unexpected failure", r.spec.resource)
                if r.phase in (Phase.BACKING_OFF, Phase.ABSENT, Phase.STOPPED):
                    delay = self.options.backoff.cap
                    continue
                delay = r.failed(-1, f"{type(exc).__name__}: {exc}", self._clock(),
                                 verb=verb)

    async def _discover(self, spec: KindSpec) -> str | None:
        """The first of the spec's versions whose resource list includes its plural."""
        for version in spec.versions:
            key = (spec.group, version)
            cached = self._resources.get(key)
            if cached is None or self._clock() - cached[0] > _DISCOVERY_TTL:
                # Kinds of one group share one request (a future the others await).
                future = asyncio.ensure_future(self._resource_names(spec.group, version))
                cached = self._resources[key] = (self._clock(), future)
            try:
                names = await asyncio.shield(cached[1])
            except BaseException:
                if self._resources.get(key) is cached:
                    del self._resources[key]
                raise
            if names is not None and spec.plural in names:
                return version
        return None

    async def _resource_names(self, group: str, version: str) -> frozenset[str] | None:
        timeout = aiohttp.ClientTimeout(connect=self.options.connect_timeout,
                                        total=self.options.list_timeout)
        resp: Any
        if group:
            resp = await client.CustomObjectsApi(self._api).get_api_resources(
                group, version, _preload_content=False, _request_timeout=timeout)
        else:
            resp = await client.CoreV1Api(self._api).get_api_resources(
                _preload_content=False, _request_timeout=timeout)
        try:
            body = await resp.read()
        finally:
            resp.release()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise ApiException(status=resp.status, reason=_status_message(body))
        doc = json.loads(body)
        return frozenset(str(r.get("name", "")) for r in doc.get("resources", ())
                         if isinstance(r, dict))

    def _list_fn(self, r: Reflector) -> Callable[..., Awaitable[Any]]:
        spec, version = r.spec, str(r.version)
        if not spec.group:
            core = client.CoreV1Api(self._api)
            snake = _snake(spec.kind)
            if not spec.namespaced:
                return getattr(core, f"list_{snake}")  # type: ignore[no-any-return]
            if r.namespace is not None:
                return functools.partial(getattr(core, f"list_namespaced_{snake}"), r.namespace)
            return getattr(core, f"list_{snake}_for_all_namespaces")  # type: ignore[no-any-return]
        custom = client.CustomObjectsApi(self._api)
        if spec.namespaced and r.namespace is not None:
            return functools.partial(custom.list_namespaced_custom_object, spec.group, version,
                                     r.namespace, spec.plural)
        # /apis/{group}/{version}/{plural}: every namespace (or a cluster-scoped kind).
        return functools.partial(custom.list_cluster_custom_object, spec.group, version,
                                 spec.plural)

    def _selectors(self, r: Reflector) -> dict[str, str]:
        return {"label_selector": r.spec.label_selector} if r.spec.label_selector else {}

    async def _list(self, r: Reflector) -> None:
        fn = self._list_fn(r)
        items: list[dict[str, object]] = []
        token: str | None = None
        rv = ""
        timeout = aiohttp.ClientTimeout(connect=self.options.connect_timeout,
                                        total=self.options.list_timeout)
        for _page in range(1_000_000):  # bounded: a list of 500 million objects is a bug
            kwargs: dict[str, Any] = {"limit": self.options.page_size, **self._selectors(r)}
            if token:
                kwargs["_continue"] = token
            resp = await fn(_preload_content=False, _request_timeout=timeout, **kwargs)
            try:
                body = await resp.read()
            finally:
                resp.release()
            if resp.status != 200:  # _preload_content=False: the REST layer raised nothing
                raise ApiException(status=resp.status, reason=_status_message(body))
            doc = json.loads(body)
            items.extend(doc.get("items") or ())
            meta = doc.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            token = meta.get("continue") or None
            if not token:
                break
        # Parsing 10,000 routes takes seconds: off the loop (other kinds' watches keep being
        # read), with the cyclic collector paused (it rescans the growing heap of new
        # objects, ~40 % of the time; nothing parsed forms cycles).
        now = self._clock()
        changes = await asyncio.get_running_loop().run_in_executor(
            None, without_gc, functools.partial(r.listed, items, rv, now))
        self._submit(changes, r)

    async def _watch(self, r: Reflector) -> None:
        list_fn = self._list_fn(r)
        options = self.options

        async def fn(*args: Any, **kwargs: Any) -> Any:
            resp = await list_fn(*args, **kwargs)
            if getattr(resp, "status", None) == 200:
                r.connected(self._clock())  # live again, before any event arrives
            return resp

        async with _Watch(self._api) as w:
            stream = w.stream(
                fn, resource_version=r.resource_version, allow_watch_bookmarks=True,
                timeout_seconds=int(options.watch_timeout),
                _request_timeout=aiohttp.ClientTimeout(connect=options.connect_timeout,
                                                       sock_read=options.read_timeout),
                **self._selectors(r),
            )
            async for event in stream:
                if not isinstance(event, dict):
                    raise _BrokenStream(f"not a watch event: {str(event)[:80]!r}")
                raw = event.get("raw_object")
                if not isinstance(raw, dict):
                    raise _BrokenStream("a watch event without an object")
                self._submit(r.event(str(event.get("type")), raw, self._clock()))
        r.watch_ended(self._clock())

    # -- batching -------------------------------------------------------------------------

    def _submit(self, changes: list[Change], listed: Reflector | None = None) -> None:
        """Queue one whole unit of changes (an event, a list's difference) for the applier.

        ``listed`` marks the reflector whose list (or absence) this is: the reflector says
        it is synced as soon as it has parsed the list, possibly on another thread, but it
        counts as synced for readiness only from here, once its changes are queued.
        """
        if listed is not None and listed.synced:
            self._listed.add(id(listed))
        if not changes and self.synced.is_set():
            return
        if not self._pending:
            self._first_change = self._clock()
        self._pending.append(changes)  # whole: one event, or one relist's difference
        self._wake.set()

    async def _apply_loop(self) -> None:
        options = self.options
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.synced.is_set():
                # Hold the first publish while some kind's first list is still on its way
                # (one compile, not one per kind); a kind that is failing (403, unreachable)
                # does not hold the others back.
                left = options.initial_hold - (self._clock() - self._started)
                if left > 0 and any(
                        id(r) not in self._listed and r.failures == 0 for r in self.reflectors
                ):
                    await self._sleep_or_wake(min(left, 0.5))
                    self._wake.set()
                    continue
            # Coalesce: wait for a quiet gap, but never longer than max_delay in all.
            for _ in range(10_000):
                left = options.max_delay - (self._clock() - self._first_change)
                if left <= 0 or not await self._sleep_or_wake(min(options.debounce, left)):
                    break
                self._wake.clear()
            synced = self._all_synced()
            batch, self._pending = self._pending, []
            self._wake.clear()
            try:
                self.store.apply(c for changes in batch for c in changes)
            except Exception:  # a bug; keep the last snapshot and keep following
                _log.exception("applying a batch of %d changes failed",
                               sum(len(c) for c in batch))
                continue
            self.batches += 1
            if self._on_batch is not None:
                try:
                    await self._on_batch(synced)
                except Exception:
                    _log.exception("recompiling after a Kubernetes batch failed")
            if synced and not self.synced.is_set():
                self.synced.set()
                _log.info("Kubernetes source synced: %d kinds, %d objects",
                          len(self.reflectors), sum(r.object_count() for r in self.reflectors))

    async def _sleep_or_wake(self, seconds: float) -> bool:
        """Sleep ``seconds``; True if woken early by a new change."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _all_synced(self) -> bool:
        return len(self._listed) == len(self.reflectors)


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def _status_message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(doc, dict):
        return f"{doc.get('reason', '')}: {doc.get('message', '')}".strip(": ")
    return str(doc)[:200]


def _reason(exc: ApiException) -> str:
    return str(exc.reason or exc.body or "").strip()
