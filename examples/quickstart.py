"""Quickstart, for real: an httpx client whose mesh calls go straight to local "pods".

Starts five small HTTP servers on 127.0.0.1 (the pods), writes a manifests directory (an
internal Gateway, HTTPRoutes with path and header matches, a weighted split, a retry policy
and a failing backend, and Services whose EndpointSlices list the local servers), then sends
requests through ``MeshTransport`` and prints what happened to each one, and a summary.

No cluster, no DNS: ``reviews.internal.example.com`` is never resolved; the transport
connects to the endpoint the mesh picked. Everything it starts is stopped before it exits.

Run it from a checkout: ``python examples/quickstart.py``.
"""

from __future__ import annotations

import collections
import http.server
import pathlib
import sys
import tempfile
import threading
from typing import Any

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1] / p) for p in ("", "adapters")]

import httpx  # noqa: E402

import meshclient  # noqa: E402
from meshclient_httpx import MeshTransport, RequestRecord  # noqa: E402


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing a kept-alive connection at exit is not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Pod:
    """A local HTTP server standing in for one pod; ``fail_first`` requests answer 503."""

    def __init__(self, name: str, *, fail_first: int = 0, status: int = 200) -> None:
        self.name = name
        self.remaining_failures = fail_first
        self.status = status
        self.lock = threading.Lock()
        pod = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with pod.lock:
                    failing = pod.remaining_failures > 0
                    pod.remaining_failures -= failing
                status = 503 if failing else pod.status
                body = f"{pod.name} saw {self.path} (Host: {self.headers['host']})\n".encode()
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


GATEWAY_AND_ROUTES = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: internal, namespace: infra}
spec:
  gatewayClassName: internal
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: "*.internal.example.com",
     allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{name: internal, namespace: infra}]
  hostnames: [reviews.internal.example.com]
  rules:
  - name: testers-get-v2
    matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-tester, value: "yes"}]}]
    backendRefs: [{name: reviews-v2, port: 8080}]
  - name: api-split
    matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs:
    - {name: reviews-v1, port: 8080, weight: 80}
    - {name: reviews-v2, port: 8080, weight: 20}
    retry: {attempts: 2, codes: [503], backoff: 10ms}
    timeouts: {request: 2s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings, namespace: shop}
spec:
  parentRefs: [{name: internal, namespace: infra}]
  hostnames: [ratings.internal.example.com]
  rules:
  - name: stable
    matches: [{path: {type: PathPrefix, value: /v1}}]
    backendRefs: [{name: ratings, port: 8080}]
    retry: {attempts: 2, codes: [503], backoff: 10ms}
  - name: broken-beta
    matches: [{path: {type: PathPrefix, value: /beta}}]
    backendRefs: [{name: ratings-beta, port: 8080}]
"""


def service_yaml(name: str, pods: list[Pod]) -> str:
    """A selector-less Service and one EndpointSlice per local pod."""
    docs = [f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec:
  ports: [{{name: http, port: 8080, targetPort: 8080}}]
"""]
    for i, pod in enumerate(pods):
        docs.append(f"""\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{i}
  namespace: shop
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
endpoints:
- addresses: [127.0.0.1]
  conditions: {{ready: true}}
  targetRef: {{kind: Pod, namespace: shop, name: {pod.name}}}
ports: [{{name: http, port: {pod.port}}}]
""")
    return "---\n".join(docs)


REQUESTS: list[tuple[str, dict[str, str]]] = [
    *[("http://reviews.internal.example.com/api/reviews/1", {})] * 10,
    ("http://reviews.internal.example.com/api/reviews/1", {"x-tester": "yes"}),
    ("http://reviews.internal.example.com/nothing-here", {}),
    ("http://ratings.internal.example.com/v1/ratings/7", {}),
    ("http://ratings.internal.example.com/v1/ratings/8", {}),
    ("http://ratings.internal.example.com/beta/ratings", {}),
]


def main() -> int:
    pods = {
        "reviews-v1": [Pod("reviews-v1-a"), Pod("reviews-v1-b")],
        "reviews-v2": [Pod("reviews-v2-a")],
        "ratings": [Pod("ratings-a", fail_first=2)],  # flaky: the route's retries hide it
        "ratings-beta": [Pod("ratings-beta-a", status=500)],  # broken: no retry helps
    }
    records: list[RequestRecord] = []
    try:
        with tempfile.TemporaryDirectory(prefix="meshclient-quickstart-") as tmp:
            root = pathlib.Path(tmp)
            (root / "gateway.yaml").write_text(GATEWAY_AND_ROUTES)
            for name, group in pods.items():
                (root / f"{name}.yaml").write_text(service_yaml(name, group))
            with meshclient.Mesh.from_files(root, watch=False) as mesh, httpx.Client(
                transport=MeshTransport(mesh, on_request=records.append), timeout=5.0
            ) as client:
                for url, headers in REQUESTS:
                    response = client.get(url, headers=headers)
                    rec = records[-1]
                    where = f"{rec.backend} @ {rec.endpoint}" if rec.endpoint else rec.outcome
                    why = f" — {rec.reason}" if rec.reason else ""
                    print(f"GET {url} {headers or ''}".rstrip())
                    print(f"    → {response.status_code} from {where}, {rec.attempts} "
                          f"attempt(s), {rec.latency * 1000:.1f} ms{why}")
    finally:
        for group in pods.values():
            for pod in group:
                pod.stop()
    by_backend = collections.Counter(r.backend or r.outcome for r in records)
    statuses = collections.Counter(r.status for r in records)
    retried = sum(1 for r in records if r.attempts > 1)
    print()
    print("summary:")
    print("  by backend: " + ", ".join(f"{k} {n}" for k, n in sorted(by_backend.items())))
    print("  by status:  " + ", ".join(f"{k} ×{n}" for k, n in sorted(statuses.items())))
    print(f"  {retried} request(s) needed retries; {len(records)} requests in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
