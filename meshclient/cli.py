"""The ``meshclient`` command: ``resolve``, ``validate`` and ``routes``.

``resolve`` is a stable contract (DESIGN.md): other tools feed it JSON lines and read one
JSON decision per line, so its field names do not change.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from meshclient.mesh import Mesh
from meshclient.routing import Action, Decision, RequestHead
from meshclient.sources import ManifestError

__all__ = ["main"]


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway", action="append", default=[], metavar="NS/NAME",
                   help="act for this Gateway (repeatable); default: every Gateway")
    p.add_argument("--gateway-class", action="append", default=[], metavar="NAME",
                   help="act for the Gateways of this GatewayClass (repeatable)")
    p.add_argument("--namespace", metavar="NS",
                   help="the client's own namespace (consumer routes, short Service names)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshclient",
        description="Proxyless Gateway API routing: explain, validate and list routes.")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("resolve", help="explain what meshclient would do with a request")
    r.add_argument("--config", action="append", required=True, metavar="PATH",
                   help="manifest file or directory (repeatable)")
    _add_selection(r)
    r.add_argument("-X", "--request", dest="method", default="GET", metavar="METHOD")
    r.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'")
    r.add_argument("url", nargs="?", help="the request URL; omit to read JSON lines on stdin")
    r.add_argument("--json", action="store_true", help="print the decision as JSON")

    v = sub.add_parser("validate", help="report every object's acceptance, like a controller")
    v.add_argument("paths", nargs="+", metavar="PATH")
    _add_selection(v)
    v.add_argument("--json", action="store_true", help="one JSON object per status line")

    t = sub.add_parser("routes", help="list hostname → route/rule → backends")
    t.add_argument("paths", nargs="+", metavar="PATH")
    _add_selection(t)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = args.config if args.command == "resolve" else args.paths
    try:
        mesh = Mesh.from_files(*paths, gateways=args.gateway,
                               gateway_classes=args.gateway_class, namespace=args.namespace,
                               watch=False)
    except ValueError as exc:
        print(f"meshclient: {exc}", file=sys.stderr)
        return 2
    if args.command == "resolve":
        return _resolve(mesh, args)
    if args.command == "validate":
        return _validate(mesh, args.json)
    return _routes(mesh)


# -- resolve ---------------------------------------------------------------------------------


def _resolve(mesh: Mesh, args: argparse.Namespace) -> int:
    for problem in mesh.problems:
        if isinstance(problem, ManifestError):
            print(f"meshclient: warning: {problem}", file=sys.stderr)
    if args.url is None:
        return _resolve_lines(mesh, sys.stdin, sys.stdout)
    headers: list[tuple[str, str]] = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            print(f"meshclient: -H {h!r} is not 'Name: value'", file=sys.stderr)
            return 2
        headers.append((name.strip(), value.strip()))
    try:
        decision = mesh.resolve(args.method, args.url, headers)
    except ValueError as exc:
        print(f"meshclient: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(decision.to_json()))
    else:
        print(_describe(decision))
    return 0


def _resolve_lines(mesh: Mesh, stdin: TextIO, stdout: TextIO) -> int:
    for lineno, line in enumerate(stdin, 1):
        if not line.strip():
            continue
        try:
            out: dict[str, Any] = _resolve_one(mesh, json.loads(line))
        except (ValueError, TypeError) as exc:
            # One bad line must not stop the stream: answer it in place, in order.
            out = {"action": "error", "error": f"line {lineno}: {exc}"}
        stdout.write(json.dumps(out) + "\n")
        stdout.flush()
    return 0


def _resolve_one(mesh: Mesh, request: object) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise TypeError("each line must be a JSON object")
    url = request.get("url")
    if not isinstance(url, str):
        raise TypeError("'url' must be a string")
    method = request.get("method", "GET")
    if not isinstance(method, str):
        raise TypeError("'method' must be a string")
    raw_headers = request.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise TypeError("'headers' must be an object of name → value or list of values")
    headers: list[tuple[str, str]] = []
    for name, value in raw_headers.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str):
                raise TypeError(f"header {name!r}: values must be strings")
            headers.append((name, v))
    return mesh.table.decide(RequestHead.from_url(method, url, headers)).to_json()


def _describe(d: Decision) -> str:
    lines = [f"{d.action.value}" + (f" {d.status}" if d.status else "")
             + (f" → {d.location}" if d.location else "")]
    if d.route is not None:
        rule = f" rule {d.route.rule}" if d.route.rule is not None else ""
        named = f" ({d.route.rule_name})" if d.route.rule_name else ""
        lines.append(f"  route:    {d.route.kind} {d.route.namespace}/{d.route.name}{rule}{named}")
    if d.parent is not None:
        section = f" section {d.parent.section}" if d.parent.section else ""
        lines.append(f"  parent:   {d.parent.kind} {d.parent.namespace}/{d.parent.name}{section}")
    total = sum(b.weight for b in d.backends) or 1
    for b in d.backends:
        share = f"{100 * b.weight / total:.0f}%"
        bad = f"  [{b.status}: {b.reason}]" if b.status else ""
        lines.append(f"  backend:  {b.namespace}/{b.name}:{b.port} weight {b.weight} "
                     f"({share}){bad}")
    if d.action is Action.FORWARD:
        lines.append(f"  request:  {d.request.method} {d.request.host}{d.request.path} "
                     f"via {d.via.value}")
    if d.timeouts is not None:
        lines.append(f"  timeouts: request={d.timeouts.request} "
                     f"backend_request={d.timeouts.backend_request}")
    if d.retry is not None:
        lines.append(f"  retry:    {d.retry.attempts} retries on {sorted(d.retry.codes)}, "
                     f"backoff {d.retry.backoff}s")
    for m in d.mirrors:
        lines.append(f"  mirror:   {m.backend.namespace}/{m.backend.name}:{m.backend.port} "
                     f"{m.percent:g}%")
    lines.extend(f"  reason:   {r}" for r in d.reasons)
    return "\n".join(lines)


# -- validate ---------------------------------------------------------------------------------


def _validate(mesh: Mesh, as_json: bool) -> int:
    failed = False
    for problem in mesh.problems:
        failed = True
        if as_json:
            print(json.dumps({"problem": str(problem)}))
        else:
            print(f"error    {problem}")
    for status in sorted(mesh.statuses(), key=lambda s: (s.kind, s.namespace, s.name,
                                                         s.parent or "")):
        failed = failed or status.rejected
        if as_json:
            print(json.dumps(status.to_json()))
            continue
        mark = "REJECTED" if status.rejected else "ok      "
        where = f" (parent {status.parent})" if status.parent else ""
        print(f"{mark} {status.kind} {status.namespace + '/' if status.namespace else ''}"
              f"{status.name}{where}")
        for c in status.conditions:
            message = f": {c.message}" if c.message else ""
            print(f"           {c.type}={c.status} {c.reason}{message}")
    return 1 if failed else 0


# -- routes -----------------------------------------------------------------------------------


def _routes(mesh: Mesh) -> int:
    rows: list[tuple[str, str, str]] = []
    table = mesh.table
    for (protocol, port), claims in sorted(table.claims.items()):
        scheme = "https" if protocol == "HTTPS" else "http"
        for host in sorted({*claims.exact, *(f"*{w}" for w in claims.wildcard)}):
            gport = claims.exact.get(host) or claims.wildcard.get(host[1:])
            if gport is None:
                continue
            listener = gport.listener(host.lstrip("*.") if host.startswith("*.") else host)
            if listener is None:
                continue
            for tier in listener.table.tiers(host if not host.startswith("*") else
                                             "x" + host[1:]):
                for entry in _tier_entries(tier):
                    rows.append((f"{scheme}://{host}:{port}", _entry_text(entry), _backends(
                        entry.target.backends, entry.target)))
    for host, ports in table.services.canonical():
        for port, sp in sorted(ports.items()):
            if sp.table is None:
                rows.append((f"http://{host}:{port}", "(no routes: the Service itself)",
                             _backends(sp.plain.backends, sp.plain)))
                continue
            for tier in sp.table.any_host:
                for entry in _tier_entries(tier):
                    rows.append((f"http://{host}:{port}", _entry_text(entry),
                                 _backends(entry.target.backends, entry.target)))
    seen: set[tuple[str, str, str]] = set()
    width = max((len(r[0]) for r in rows), default=10)
    width2 = max((len(r[1]) for r in rows), default=10)
    for row in rows:
        if row in seen:
            continue
        seen.add(row)
        print(f"{row[0]:<{width}}  {row[1]:<{width2}}  {row[2]}")
    return 0


def _tier_entries(tier: Any) -> list[Any]:
    out = [e for entries in tier.exact.values() for e in entries]
    out += [e for _, entries in sorted(tier.prefix.items(), key=lambda kv: -len(kv[0]))
            for e in entries]
    out += list(tier.regex)
    return out


def _entry_text(entry: Any) -> str:
    t = entry.target
    r = t.route
    route = f"{r.namespace}/{r.name}#{r.rule}" if r is not None else "-"
    conds = []
    if entry.prefix is not None:
        conds.append(f"prefix {entry.prefix}")
    elif entry.regex is not None:
        conds.append("regex")
    else:
        conds.append("exact")
    if entry.method:
        conds.append(entry.method)
    conds.extend(f"{n}={v if v is not None else '~re'}" for n, v, _ in entry.headers)
    conds.extend(f"?{n}={v if v is not None else '~re'}" for n, v, _ in entry.queries)
    return f"{route} [{' '.join(conds)}]"


def _backends(backends: Any, target: Any) -> str:
    if target.action is Action.REJECT:
        return f"reject {target.status}"
    if target.redirect is not None:
        return f"redirect {target.redirect.status_code}"
    if target.via.value == "gateway":
        return "via gateway"
    return ", ".join(f"{b.namespace}/{b.name}:{b.port}×{b.weight}" for b in backends) or "-"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
