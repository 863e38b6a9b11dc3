"""A Kubernetes API server for tests: discovery, list and watch, spoken faithfully (ECOSYSTEM §4.4).

It runs on loopback in a thread with its own event loop, so both a client on the test's loop
and one on ``Mesh.from_kubernetes``'s own thread can use it; the test changes its objects with
plain (thread-safe) method calls. What it does, as the real one does:

* discovery: ``/api/v1`` and ``/apis/{group}/{version}`` list the served resources; a group or
  version it does not serve is 404;
* list: ``{"kind": "<Kind>List", "metadata": {"resourceVersion": "N"}, "items": [...]}`` with
  ``limit``/``continue`` paging (pages share one resourceVersion) and ``labelSelector``
  (``k=v`` terms); items carry no ``kind``/``apiVersion`` for built-in kinds, as the real
  API server sends them;
* watch: chunked JSON lines; ``resourceVersion`` unset/``0`` sends ``ADDED`` for everything,
  ``N`` sends what changed after N; a version older than the last compaction gets one
  ``ERROR`` line with a 410 Status, then EOF; ``allowWatchBookmarks`` adds ``BOOKMARK``
  events; the stream ends after ``timeoutSeconds``;
* errors: a Status object on one line with its HTTP code (403 for a forbidden resource).

Knobs for failures: ``forbid``, ``delay`` (slow answers), ``hang`` (headers, then silence),
``drop_watches`` (cut every open watch, optionally mid-line), ``expire_watches`` (410 on open
watches), ``compact`` (forget history), ``stop``/``restart`` (the API server is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web

from meshclient.sources import DEFAULT_KINDS, KindSpec

Obj = dict[str, Any]
ResKey = tuple[str, str]
"""(group, plural)."""

_BUILTIN_GROUPS = {"", "discovery.k8s.io"}


@attrs.define(eq=False)
class _Watch:
    res: ResKey
    namespace: str | None
    selector: dict[str, str]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Obj] | None] = attrs.field(factory=asyncio.Queue)
    request: web.Request | None = None


class FakeApiServer:
    """Objects by resource with a cluster-wide resourceVersion, served over HTTP on loopback.

    Args:
        kinds: The kinds it serves (others are absent: 404 in discovery).
        bookmark_interval: Seconds between bookmarks on an idle watch (None: only the one
            after the initial events).
    """

    def __init__(self, kinds: tuple[KindSpec, ...] = DEFAULT_KINDS, *,
                 bookmark_interval: float | None = None) -> None:
        self.specs: dict[ResKey, KindSpec] = {(k.group, k.plural): k for k in kinds}
        self.bookmark_interval = bookmark_interval
        self._lock = threading.RLock()
        self._objects: dict[ResKey, dict[tuple[str, str], Obj]] = {r: {} for r in self.specs}
        self._log: dict[ResKey, list[tuple[int, str, Obj]]] = {r: [] for r in self.specs}
        self._rv = 100
        self._compacted = 0
        self._watches: set[_Watch] = set()
        self.forbidden: set[str] = set()
        """Plurals that answer 403."""
        self.delay = 0.0
        self.hang = False
        self.expire_continue = False
        """Answer the next ``continue`` page with 410 (the token outlived compaction)."""
        self.requests: list[tuple[str, Mapping[str, str]]] = []
        self.authorizations: set[str] = set()
        self.watch_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._transports: set[asyncio.Transport] = set()
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeApiServer:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(asyncio.sleep(0.05))  # let pending accepts finish
            self._abort_leftovers()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-apiserver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake API server did not start")
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1", self._core_discovery)
        app.router.add_get("/api/v1/", self._core_discovery)
        app.router.add_get("/apis/{group}/{version}", self._discovery)
        app.router.add_get("/apis/{group}/{version}/", self._discovery)
        app.router.add_get("/api/v1/{plural}", self._resource)
        app.router.add_get("/api/v1/namespaces/{ns}/{plural}", self._resource)
        app.router.add_get("/apis/{group}/{version}/{plural}", self._resource)
        app.router.add_get("/apis/{group}/{version}/namespaces/{ns}/{plural}", self._resource)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5,
                                     handler_cancellation=True)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        made = server.connection_made

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            self._transports.add(transport)
            made(handler, transport)

        server.connection_made = connection_made  # type: ignore[method-assign]
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _shutdown(self) -> None:
        self._end_watches(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            # A client reconnecting in a tight loop can land a connection while the site
            # closes: keep the server so such late connections are closed (here, or when
            # the fake server closes) rather than left to the garbage collector.
            await asyncio.sleep(0.02)
            self._abort_leftovers()

    def _abort_leftovers(self) -> None:
        # aiohttp's Server.shutdown() forgets connections made while it runs, unclosed.
        for transport in list(self._transports):
            if not transport.is_closing():
                transport.abort()
        self._transports.clear()

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the server's loop and wait for it (from any other thread)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(10)

    def stop(self) -> None:
        """The API server goes down: every connection closes, new ones are refused."""
        if self._loop is not None and self._runner is not None:
            self._call(self._shutdown)

    def restart(self) -> None:
        """The API server comes back on the same port, with the same objects."""
        self._call(self._serve)

    def close(self) -> None:
        """Stop serving and end the thread (idempotent)."""
        if self._loop is not None and self._thread is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- changing objects (thread-safe) ---------------------------------------------------

    def _res_of(self, obj: Mapping[str, Any]) -> ResKey:
        group = obj["apiVersion"].rpartition("/")[0]
        for (g, plural), spec in self.specs.items():
            if g == group and spec.kind == obj["kind"]:
                return g, plural
        raise KeyError(f"the fake API server does not serve {obj['apiVersion']} {obj['kind']}")

    def apply(self, obj: Mapping[str, Any], *, notify: bool = True) -> Obj:
        """Create or update ``obj``; returns the stored copy with its new resourceVersion.

        ``notify=False`` changes it without telling open watches (an event lost to a
        compaction, which only a relist can find).
        """
        res = self._res_of(obj)
        with self._lock:
            self._rv += 1
            stored: Obj = json.loads(json.dumps(obj))
            meta = stored.setdefault("metadata", {})
            key = ("", meta["name"])
            if self.specs[res].namespaced:
                meta.setdefault("namespace", "default")
                key = (meta["namespace"], meta["name"])
            meta["resourceVersion"] = str(self._rv)
            kind = "MODIFIED" if key in self._objects[res] else "ADDED"
            self._objects[res][key] = stored
            if notify:
                self._record(res, kind, stored)
            return stored

    def delete(self, obj: Mapping[str, Any], *, notify: bool = True) -> bool:
        res = self._res_of(obj)
        meta = obj["metadata"]
        key = (meta.get("namespace", "default") if self.specs[res].namespaced else "",
               meta["name"])
        with self._lock:
            gone = self._objects[res].pop(key, None)
            if gone is None:
                return False
            self._rv += 1
            gone = json.loads(json.dumps(gone))
            gone["metadata"]["resourceVersion"] = str(self._rv)
            if notify:
                self._record(res, "DELETED", gone)
            return True

    def _record(self, res: ResKey, kind: str, obj: Obj) -> None:
        self._log[res].append((self._rv, kind, obj))
        for w in tuple(self._watches):
            if w.res == res and _visible(obj, w.namespace, w.selector):
                w.loop.call_soon_threadsafe(w.queue.put_nowait, (kind, obj))

    def objects(self, kind: str | None = None) -> dict[tuple[str, str, str], Obj]:
        """Every stored object by (kind, namespace, name)."""
        with self._lock:
            return {(self.specs[r].kind, *k): v for r, objs in self._objects.items()
                    for k, v in objs.items() if kind is None or self.specs[r].kind == kind}

    def remove_kind(self, kind: str) -> None:
        """Uninstall a kind (its CRD is deleted): 404 from now on, open watches close."""
        with self._lock:
            for res, spec in list(self.specs.items()):
                if spec.kind == kind:
                    del self.specs[res]
        self.drop_watches()

    def bump(self, n: int) -> None:
        """Advance the cluster's resourceVersion as changes to unwatched kinds would."""
        with self._lock:
            self._rv += n

    @property
    def resource_version(self) -> int:
        return self._rv

    def compact(self) -> None:
        """Forget the history: any watch or resume from an older version gets 410 Gone."""
        with self._lock:
            self._compacted = self._rv
            for res in self._log:
                self._log[res].clear()

    def expire_watches(self) -> None:
        """Compact, and tell every open watch its resourceVersion expired (410), then close."""
        self.compact()
        self._end_watches(("ERROR", _status(410, "Expired", "too old resource version")))

    def drop_watches(self, *, mid_line: bool = False) -> None:
        """Cut every open watch connection (optionally after half an event line)."""
        self._end_watches(("DROP_MID_LINE" if mid_line else "DROP", {}))

    def _end_watches(self, how: tuple[str, Obj] | None) -> None:
        with self._lock:
            watches = tuple(self._watches)
        for w in watches:
            with contextlib.suppress(RuntimeError):
                w.loop.call_soon_threadsafe(w.queue.put_nowait, how)

    def open_watches(self) -> int:
        with self._lock:
            return len(self._watches)

    # -- HTTP -----------------------------------------------------------------------------

    async def _core_discovery(self, request: web.Request) -> web.Response:
        return self._resource_list("v1", "")

    async def _discovery(self, request: web.Request) -> web.Response:
        group, version = request.match_info["group"], request.match_info["version"]
        return self._resource_list(f"{group}/{version}", group, version)

    def _resource_list(self, group_version: str, group: str,
                       version: str = "v1") -> web.Response:
        resources = [
            {"name": s.plural, "singularName": s.kind.lower(), "namespaced": s.namespaced,
             "kind": s.kind, "verbs": ["get", "list", "watch"]}
            for (g, _), s in self.specs.items() if g == group and s.versions[0] == version
        ]
        if not resources:
            return _error(404, "NotFound", "the server could not find the requested resource")
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                  "groupVersion": group_version, "resources": resources})

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        group = info.get("group", "")
        res = (group, info["plural"])
        spec = self.specs.get(res)
        query = dict(request.query.items())
        self.requests.append((request.path, query))
        self.authorizations.add(request.headers.get("Authorization", ""))
        if spec is None or info.get("version", "v1") != spec.versions[0]:
            return _error(404, "NotFound", "the server could not find the requested resource")
        if self.delay:
            await asyncio.sleep(self.delay)
        verb = "watch" if _true(query.get("watch")) else "list"
        if spec.plural in self.forbidden:
            return _error(403, "Forbidden",
                          f'{spec.plural}.{group} is forbidden: User "system:serviceaccount:'
                          f'default:app" cannot {verb} resource "{spec.plural}" in API group '
                          f'"{group}" at the cluster scope')
        namespace = info.get("ns")
        selector = _selector(query.get("labelSelector", ""))
        if verb == "watch":
            return await self._watch(request, res, spec, namespace, selector, query)
        return self._list(res, spec, namespace, selector, query)

    def _list(self, res: ResKey, spec: KindSpec, namespace: str | None,
              selector: dict[str, str], query: Mapping[str, str]) -> web.Response:
        with self._lock:
            cont = query.get("continue")
            if cont:
                rv_s, _, offset_s = cont.partition(":")
                rv, offset = int(rv_s), int(offset_s)
                if rv < self._compacted or self.expire_continue:
                    self.expire_continue = False
                    return _error(410, "Expired", "the provided continue parameter is too old")
            else:
                rv, offset = self._rv, 0
            items = sorted(
                (o for o in self._objects[res].values() if _visible(o, namespace, selector)),
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            # Pages of one list share its resourceVersion; objects changed since are shown
            # as they are now (a simplification: the real server reads them at ``rv``).
            limit = int(query.get("limit") or 0) or len(items) or 1
            page = items[offset:offset + limit]
            meta: Obj = {"resourceVersion": str(rv)}
            if offset + limit < len(items):
                meta["continue"] = f"{rv}:{offset + limit}"
        out = []
        for o in page:
            item = dict(o)
            if spec.group in _BUILTIN_GROUPS:
                item.pop("kind", None)
                item.pop("apiVersion", None)
            out.append(item)
        return web.json_response({"kind": f"{spec.kind}List",
                                  "apiVersion": f"{spec.group}/{spec.versions[0]}".lstrip("/"),
                                  "metadata": meta, "items": out})

    async def _watch(self, request: web.Request, res: ResKey, spec: KindSpec,
                     namespace: str | None, selector: dict[str, str],
                     query: Mapping[str, str]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
        except ConnectionError:  # the client went away first
            return resp
        self.watch_count += 1
        if self.hang:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                while self.hang:
                    await asyncio.sleep(0.05)
            return resp
        w = _Watch(res, namespace, selector, asyncio.get_running_loop(), request=request)
        rv_param = query.get("resourceVersion", "")
        bookmarks = _true(query.get("allowWatchBookmarks"))
        timeout = float(query.get("timeoutSeconds") or 1800)
        with self._lock:
            if rv_param not in ("", "0") and int(rv_param) < self._compacted:
                backlog: list[tuple[str, Obj]] | None = None
            elif rv_param in ("", "0"):
                backlog = [("ADDED", o) for o in self._objects[res].values()
                           if _visible(o, namespace, selector)]
            else:
                since = int(rv_param)
                backlog = [(k, o) for rv, k, o in self._log[res]
                           if rv > since and _visible(o, namespace, selector)]
            current = self._rv
            self._watches.add(w)
        try:
            if backlog is None:
                await _send(resp, "ERROR", _status(410, "Expired",
                                                   f"too old resource version: {rv_param} "
                                                   f"({self._compacted})"))
                return resp
            for kind, obj in backlog:
                await _send(resp, kind, obj)
            if bookmarks:
                await _send(resp, "BOOKMARK", self._bookmark(spec, current))
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                wait = min(left, self.bookmark_interval or left)
                try:
                    item = await asyncio.wait_for(w.queue.get(), wait)
                except TimeoutError:
                    if bookmarks and self.bookmark_interval:
                        await _send(resp, "BOOKMARK", self._bookmark(spec, self._rv))
                    continue
                if item is None:
                    break
                kind, obj = item
                if kind == "DROP" or kind == "DROP_MID_LINE":
                    if kind == "DROP_MID_LINE":
                        await resp.write(b'{"type": "MODIFIED", "object": {"kind": ')
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                await _send(resp, kind, obj)
                if kind == "ERROR":
                    break
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with self._lock:
                self._watches.discard(w)
        return resp

    def _bookmark(self, spec: KindSpec, rv: int) -> Obj:
        return {"kind": spec.kind, "apiVersion": f"{spec.group}/{spec.versions[0]}".lstrip("/"),
                "metadata": {"resourceVersion": str(rv)}}


async def _send(resp: web.StreamResponse, kind: str, obj: Obj) -> None:
    await resp.write(json.dumps({"type": kind, "object": obj},
                                separators=(",", ":")).encode() + b"\n")


def _status(code: int, reason: str, message: str) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _error(code: int, reason: str, message: str) -> web.Response:
    return web.Response(status=code, content_type="application/json",
                        text=json.dumps(_status(code, reason, message)))


def _true(value: str | None) -> bool:
    # Python clients send ``True``; Go's ParseBool accepts it (ECOSYSTEM §4.1).
    return value is not None and value.lower() in ("true", "1", "t")


def _selector(text: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        k, _, v = term.partition("=")
        terms[k.strip()] = v.lstrip("=").strip()
    return terms


def _visible(obj: Obj, namespace: str | None, selector: dict[str, str]) -> bool:
    meta = obj.get("metadata", {})
    if namespace is not None and meta.get("namespace") != namespace:
        return False
    labels = meta.get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())

