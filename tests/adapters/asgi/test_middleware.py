"""AuthzMiddleware behind a real uvicorn with the TLS shim: mTLS SVIDs, tokens, WebSockets."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client

from meshclient.authz import AuditRecord, Authorizer, Issuer, StaticKeys
from meshclient.sources import JwksKeys
from meshclient.store import Store
from meshclient_asgi import AuthzMiddleware
from meshclient_asgi.uvicorn_tls import config as tls_config
from tests.adapters.asgi.conftest import LIFESPAN, app
from tests.authz import pki
from tests.authz.oidc import oidc_server
from tests.authz.policies import WORKLOAD, istio, snapshot

WEB = "spiffe://cluster.local/ns/app/sa/web"
DB = "spiffe://cluster.local/ns/app/sa/db"
POLICIES = (
    istio("only-web", {"rules": [{"from": [{"source": {
        "principals": ["cluster.local/ns/app/sa/web"]}}]}]}),
    istio("deny-admin", {"action": "DENY", "rules": [{"to": [{"operation": {
        "paths": ["/admin", "/admin/*"]}}]}]}),
)
SA = Issuer(issuer=pki.K8S_ISSUER, audiences=[pki.AUDIENCE], kind="service-account")


def store(*manifests: dict[str, Any]) -> Store:
    s = Store()
    s.replace(snapshot(*manifests).all())
    return s


def protected(**kw: Any) -> AuthzMiddleware:
    kw.setdefault("keys", StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(pki.rsa_key())}))
    kw.setdefault("issuers", [SA])
    return AuthzMiddleware(app, mesh=kw.pop("mesh", store(*POLICIES)), workload=WORKLOAD,
                           clock=lambda: pki.NOW, **kw)


def get(served: Any, path: str, spiffe_id: str | None = None, **kw: Any) -> httpx.Response:
    with httpx.Client(verify=served.client_context(spiffe_id)) as client:
        return client.get(served.url + path, **kw)


def test_http_spiffe_client_cert_allowed_identity_in_scope(served_factory: Any) -> None:
    """A client SVID allowed by policy reaches the app, which sees the caller's identity."""
    served = served_factory(protected())
    r = get(served, "/hello", WEB)
    assert r.status_code == 200
    assert r.json() == {"peer": WEB, "via": "mtls", "user": None, "path": "/hello"}


def test_http_other_identity_403_reason_only(served_factory: Any) -> None:
    """A client SVID no policy allows gets 403 with only a reason code in the body."""
    served = served_factory(protected())
    r = get(served, "/hello", DB)
    assert r.status_code == 403
    assert r.json() == {"error": "forbidden", "reason": "no_matching_policy"}
    assert "only-web" not in r.text


def test_http_no_credentials_401(served_factory: Any) -> None:
    """Without certificate or token, where policy names callers, the answer is 401."""
    served = served_factory(protected())
    r = get(served, "/hello")
    assert r.status_code == 401 and r.json()["reason"] == "missing_credentials"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_http_service_account_token_allowed(served_factory: Any) -> None:
    """A projected service-account token (no client cert) identifies the caller."""
    served = served_factory(protected())
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web"))
    r = get(served, "/hello", headers={"authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.json()["via"] == "service-account-token"


@pytest.mark.parametrize(("claims", "reason"), [
    (pki.sa_claims("app", "web", aud=["other"]), "wrong_audience"),
    (pki.sa_claims("app", "web", lifetime=-3600), "token_expired"),
    (pki.sa_claims("app", "web", iss="https://evil"), "untrusted_issuer"),
])
def test_http_bad_token_401_reason(served_factory: Any, claims: dict[str, Any],
                                   reason: str) -> None:
    """A bad token answers 401 naming why."""
    served = served_factory(protected())
    tok = pki.token(pki.rsa_key(), claims)
    r = get(served, "/hello", WEB, headers={"authorization": f"Bearer {tok}"})
    assert r.status_code == 401 and r.json() == {"error": "unauthorized", "reason": reason}


@pytest.mark.parametrize("target", [b"/admin", b"/public/../admin", b"//admin", b"/%61dmin",
                                    b"/public/%2e%2e/admin", b"/admin/"])
def test_http_admin_spellings_denied_on_the_wire(served_factory: Any, target: bytes) -> None:
    """Every spelling of /admin sent raw over TLS meets the DENY policy."""
    served = served_factory(protected())
    status, body = served.raw(target, WEB)
    assert status == 403 and json.loads(body)["reason"] == "denied_by_policy"


@pytest.mark.parametrize(("target", "reason"), [(b"/admin%2f", "encoded_slash_in_path"),
                                                (b"/admin%2Fx", "encoded_slash_in_path"),
                                                (b"/x%5cadmin", "backslash_in_path")])
def test_http_ambiguous_paths_refused_on_the_wire(served_factory: Any, target: bytes,
                                                  reason: str) -> None:
    """Encoded slashes and backslashes are refused before the app sees them."""
    served = served_factory(protected())
    status, body = served.raw(target, WEB)
    assert status == 403 and json.loads(body)["reason"] == reason


def test_http_duplicate_authorization_headers_401(served_factory: Any) -> None:
    """Two Authorization headers on the wire are refused as ambiguous."""
    served = served_factory(protected())
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web"))
    status, body = served.raw(b"/hello", None, (b"authorization: Bearer " + tok.encode()
                                                + b"\r\nauthorization: Bearer junk\r\n"))
    assert status == 401 and json.loads(body)["reason"] == "ambiguous_credentials"


def test_websocket_allowed_then_denied(served_factory: Any) -> None:
    """A WebSocket from an allowed SVID is accepted; others are refused with 403."""
    served = served_factory(protected())
    url = f"wss://127.0.0.1:{served.port}/ws"
    with websockets.sync.client.connect(url, ssl=served.client_context(WEB),
                                        server_hostname="localhost", open_timeout=5) as ws:
        ws.send("!")
        assert json.loads(ws.recv(timeout=5)[:-1])["peer"] == WEB
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        websockets.sync.client.connect(url, ssl=served.client_context(DB),
                                       server_hostname="localhost", open_timeout=5)
    assert info.value.response.status_code == 403
    assert json.loads(info.value.response.body)["reason"] == "no_matching_policy"


def test_lifespan_passes_through(served_factory: Any) -> None:
    """lifespan startup reaches the app through the middleware."""
    LIFESPAN.clear()
    served_factory(protected())
    assert LIFESPAN[:1] == ["lifespan.startup"]


def test_unknown_kid_refetches_jwks_then_allows(served_factory: Any) -> None:
    """A token signed with a rotated key fetches the issuer's JWKS once, then passes."""
    rotated = pki.rsa_key("rsa-rot")
    with oidc_server(pki.jwks(pki.rsa_key())) as oidc:
        iss = Issuer(issuer=oidc.issuer, audiences=[pki.AUDIENCE], kind="service-account")
        keys = JwksKeys([iss], ssl_context=oidc.client_context(), min_refresh_interval=0)
        keys.load()
        served = served_factory(protected(issuers=[iss], keys=keys))
        oidc.jwks = pki.jwks(pki.rsa_key(), rotated)
        tok = pki.token(rotated, pki.sa_claims("app", "web", iss=oidc.issuer))
        r = get(served, "/hello", headers={"authorization": f"Bearer {tok}"})
        assert r.status_code == 200 and oidc.jwks_fetches() == 2


def test_on_decision_hook_sees_every_request(served_factory: Any) -> None:
    """The audit hook receives a record for allowed and denied requests alike."""
    seen: list[AuditRecord] = []
    served = served_factory(protected(on_decision=seen.append))
    get(served, "/a", WEB)
    get(served, "/b", DB)
    assert [(r.path, r.verdict.allowed) for r in seen] == [("/a", True), ("/b", False)]


# -- pure ASGI (no server) ---------------------------------------------------------------


def run(mw: AuthzMiddleware, scope: dict[str, Any], incoming: list[dict[str, Any]]
        ) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0)

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(dict(msg))

    asyncio.run(mw(scope, receive, send))
    return sent


def test_websocket_without_http_response_extension_closes_1008() -> None:
    """Without websocket.http.response, a denied handshake is closed with 1008 before accept."""
    mw = protected(mesh=store(istio("deny", {"action": "DENY", "rules": [{}]})))
    sent = run(mw, {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "headers": []},
               [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_authorizer_failure_denied_403_error() -> None:
    """An exception inside the middleware's decision denies with reason 'error'."""
    class Broken(Authorizer):
        def check(self, **kw: Any) -> Any:
            raise RuntimeError("boom")

    mw = AuthzMiddleware(app, authorizer=Broken(Store(), WORKLOAD))
    sent = run(mw, {"type": "http", "method": "GET", "path": "/", "headers": []}, [])
    assert sent[0]["status"] == 403 and json.loads(sent[1]["body"])["reason"] == "error"


def test_middleware_options_misuse_raises() -> None:
    """Missing or conflicting constructor options raise TypeError naming them."""
    with pytest.raises(TypeError, match="workload"):
        AuthzMiddleware(app, mesh=Store())
    with pytest.raises(TypeError, match="not both"):
        AuthzMiddleware(app, mesh=Store(), workload=WORKLOAD,
                        authorizer=Authorizer(Store(), WORKLOAD))
    with pytest.raises(ValueError, match="ssl_ca_certs"):
        tls_config(app, ssl_certfile="x", ssl_keyfile="y", ssl_cert_reqs=ssl.CERT_REQUIRED)
