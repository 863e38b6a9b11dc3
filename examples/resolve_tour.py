"""A tour of routing decisions: what meshclient decides for a handful of requests.

Loads the manifests in ``examples/manifests`` (an internal Gateway, HTTPRoutes with path and
header matches, a weighted split, a retry policy, a redirect, and plain Services), asks the
mesh about a set of requests, and prints each decision and a summary.

Run it from a checkout: ``python examples/resolve_tour.py``.
"""

from __future__ import annotations

import collections
import pathlib
import sys

import meshclient

MANIFESTS = pathlib.Path(__file__).resolve().parent / "manifests"

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "http://reviews.internal.example.com/api/reviews/1", {}),
    ("GET", "http://reviews.internal.example.com/api/reviews/1", {"x-tester": "yes"}),
    ("GET", "http://reviews.internal.example.com/old?page=2", {}),
    ("GET", "http://reviews.internal.example.com/nothing-here", {}),
    ("GET", "http://ratings.internal.example.com/v1/ratings", {}),
    (
        "POST",
        "http://ratings.internal.example.com/v1/ratings",
        {"content-type": "application/json"},
    ),
    (
        "OPTIONS",
        "http://ratings.internal.example.com/v1/ratings",
        {"origin": "https://shop.example.com", "access-control-request-method": "POST"},
    ),
    ("GET", "http://legacy.internal.example.com/", {}),
    ("GET", "http://reviews-v1.shop:8080/health", {}),
    ("GET", "http://payments.shop.svc.cluster.local:8080/charge", {}),
    ("GET", "https://pypi.org/simple/", {}),
]


def main() -> int:
    with meshclient.Mesh.from_files(MANIFESTS, namespace="shop", watch=False) as mesh:
        counts: collections.Counter[str] = collections.Counter()
        for method, url, headers in REQUESTS:
            d = mesh.resolve(method, url, headers)
            counts[d.action.value] += 1
            print(f"{method:7} {url}")
            print(f"        → {_summary(d)}")
        print()
        print("summary: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
        rejected = [s for s in mesh.statuses() if s.rejected]
        print(
            f"config:  {len(mesh.statuses())} status entries, {len(rejected)} rejected, "
            f"{len(mesh.problems)} problems"
        )
    return 0


def _summary(d: meshclient.Decision) -> str:
    if d.action is meshclient.Action.PASSTHROUGH:
        return "passthrough (not a mesh host; sent unchanged)"
    where = ""
    if d.route is not None:
        where = f" by {d.route.kind} {d.route.namespace}/{d.route.name} rule {d.route.rule}"
    if d.action is meshclient.Action.REDIRECT:
        return f"redirect {d.status} to {d.location}{where}"
    if d.action in (meshclient.Action.REJECT, meshclient.Action.RESPOND):
        why = f" ({'; '.join(d.reasons)})" if d.reasons else ""
        return f"{d.action.value} {d.status}{where}{why}"
    total = sum(b.weight for b in d.backends) or 1
    split = ", ".join(f"{b.name}:{b.port} {100 * b.weight // total}%" for b in d.backends)
    extra = []
    if d.retry is not None:
        extra.append(f"retry {d.retry.attempts}× on {sorted(d.retry.codes)}")
    if d.timeouts is not None and d.timeouts.request is not None:
        extra.append(f"timeout {d.timeouts.request:g}s")
    if d.mirrors:
        extra.append("mirrored to " + ", ".join(m.backend.name for m in d.mirrors))
    if d.via is meshclient.Via.GATEWAY:
        return f"via gateway{where}: {'; '.join(d.reasons)}"
    return f"forward to {split}{where}" + (f" [{'; '.join(extra)}]" if extra else "")


if __name__ == "__main__":
    sys.exit(main())
