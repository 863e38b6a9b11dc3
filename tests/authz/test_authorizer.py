"""Authorizer: identities from certificates and tokens, header tricks, audit and the hook."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from meshclient.authz import (
    AuditRecord,
    Authorizer,
    Issuer,
    StaticKeys,
    Workload,
    spiffe_id_from_certificate,
)
from meshclient.store import Store
from tests.authz import pki
from tests.authz.policies import WORKLOAD, istio, snapshot

WEB_ID = "spiffe://cluster.local/ns/app/sa/web"
SA_ISSUER = Issuer(issuer=pki.K8S_ISSUER, audiences=[pki.AUDIENCE], kind="service-account")
USER_ISSUER = Issuer(issuer=pki.USER_ISSUER, audiences=["api.example.com"])


def authorizer(*manifests: dict[str, Any], **kw: Any) -> Authorizer:
    store = Store()
    store.replace(snapshot(*manifests).all())
    keys = StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(pki.rsa_key()),
                                 pki.USER_ISSUER: pki.jwks(pki.ec_key())})
    kw.setdefault("issuers", [SA_ISSUER, USER_ISSUER])
    return Authorizer(store, kw.pop("workload", WORKLOAD), keys=keys, **kw)


ONLY_WEB = istio("only-web", {"rules": [{"from": [{"source": {
    "principals": ["cluster.local/ns/app/sa/web"]}}]}]})
DENY_ADMIN = istio("deny-admin", {"action": "DENY", "rules": [{"to": [{"operation": {
    "paths": ["/admin", "/admin/*"], "methods": ["DELETE"]}}]}]})


def check(a: Authorizer, **kw: Any) -> Any:
    kw.setdefault("method", "GET")
    kw.setdefault("path", b"/")
    kw.setdefault("headers", [])
    kw.setdefault("now", pki.NOW)
    return a.check(**kw)


def test_check_peer_certificate_spiffe_identity_allowed() -> None:
    """The SPIFFE URI SAN of the peer's certificate is the caller's principal."""
    leaf = pki.spiffe_ca().issue([WEB_ID])
    got = check(authorizer(ONLY_WEB), peer_certificate=leaf.cert_pem)
    assert got.allowed and got.caller.peer.spiffe_id == WEB_ID


def test_certificate_two_uri_sans_no_identity() -> None:
    """A certificate with two URI SANs is no SVID: no identity (X.509-SVID §2)."""
    leaf = pki.spiffe_ca().issue([WEB_ID, "spiffe://cluster.local/ns/app/sa/db"])
    assert spiffe_id_from_certificate(leaf.cert_pem) is None
    assert spiffe_id_from_certificate(pki.spiffe_ca().issue(["https://x/y"]).cert_pem) is None
    assert spiffe_id_from_certificate(pki.spiffe_ca().issue([]).cert_pem) is None


def test_check_service_account_token_identity_allowed() -> None:
    """A projected service-account token in Authorization gives the peer identity."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web"))
    got = check(authorizer(ONLY_WEB), headers=[(b"authorization", f"Bearer {tok}".encode())])
    assert got.allowed and got.caller.peer.authenticated_by == "service-account-token"


def test_check_invalid_token_401_with_reason() -> None:
    """A presented token that fails validation answers 401 whatever the policies say."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web", lifetime=10))
    got = check(authorizer(), headers=[(b"authorization", f"Bearer {tok}".encode())],
                now=pki.NOW + 3600)
    assert got.verdict.status == 401 and got.verdict.reason == "token_expired"


def test_check_duplicate_authorization_headers_401() -> None:
    """Two Authorization headers are ambiguous credentials, never 'pick one'."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims("app", "web"))
    got = check(authorizer(ONLY_WEB), headers=[(b"authorization", f"Bearer {tok}".encode()),
                                               (b"Authorization", b"Bearer x")])
    assert got.verdict.status == 401 and got.verdict.reason == "ambiguous_credentials"


def test_check_duplicate_host_headers_400() -> None:
    """Two Host headers are refused (a host-based policy could be dodged)."""
    got = check(authorizer(), headers=[(b"host", b"a"), (b"host", b"b")])
    assert got.verdict.status == 400 and not got.allowed


def test_check_mtls_and_token_disagree_401() -> None:
    """A service-account token naming another identity than the certificate is refused."""
    leaf = pki.spiffe_ca().issue([WEB_ID])
    tok = pki.token(pki.rsa_key(), pki.sa_claims("ops", "admin"))
    got = check(authorizer(ONLY_WEB), peer_certificate=leaf.cert_pem,
                headers=[(b"authorization", f"Bearer {tok}".encode())])
    assert got.verdict.reason == "identity_mismatch"


def test_check_xfcc_untrusted_peer_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """x-forwarded-client-cert from an untrusted peer is ignored (and logged)."""
    with caplog.at_level(logging.INFO, logger="meshclient.authz"):
        got = check(authorizer(ONLY_WEB), source_ip="10.0.0.9",
                    headers=[(b"x-forwarded-client-cert", f"URI={WEB_ID}".encode())])
    assert not got.allowed and got.caller.peer is None
    assert "untrusted peer" in caplog.text


def test_check_xfcc_trusted_proxy_identity_used() -> None:
    """x-forwarded-client-cert from a trusted proxy names the caller; XFF the client IP."""
    a = authorizer(ONLY_WEB, trusted_proxies=["10.0.0.0/24"])
    xfcc = f'By=spiffe://cluster.local/ns/app/sa/gw;Hash=ab;URI="{WEB_ID}"'
    got = check(a, source_ip="10.0.0.9", headers=[
        (b"x-forwarded-client-cert", xfcc.encode()),
        (b"x-forwarded-for", b"198.51.100.1, 203.0.113.5")])
    assert got.allowed and got.caller.peer.authenticated_by == "forwarded"
    assert got.caller.remote_ip == "203.0.113.5"


@pytest.mark.parametrize("path", [b"/admin", b"/public/../admin", b"//admin", b"/%61dmin",
                                  b"/admin/", b"/%2e%2e/admin", b"/admin?x=1"])
def test_check_deny_path_bypass_spellings_denied(path: bytes) -> None:
    """Every spelling of /admin meets the DENY; encoded slashes are refused outright."""
    got = check(authorizer(DENY_ADMIN), method="DELETE", path=path)
    assert not got.allowed


@pytest.mark.parametrize(("path", "reason"), [(b"/admin%2f", "encoded_slash_in_path"),
                                              (b"/admin\\", "backslash_in_path")])
def test_check_ambiguous_paths_denied_with_reason(path: bytes, reason: str) -> None:
    """Encoded slashes and backslashes are denied with their own reason code."""
    got = check(authorizer(), path=path)
    assert not got.allowed and got.verdict.reason == reason


def test_check_lowercase_method_meets_deny() -> None:
    """A method spelled in lower case still meets a DENY on DELETE."""
    assert not check(authorizer(DENY_ADMIN), method="delete", path=b"/admin").allowed


def test_check_host_case_and_port_ignored() -> None:
    """Host matching ignores case, a trailing dot and the port."""
    p = istio("h", {"action": "DENY", "rules": [{"to": [{"operation": {
        "hosts": ["reviews.app.svc"]}}]}]})
    for host in (b"REVIEWS.app.svc", b"reviews.app.svc:8080", b"reviews.app.svc."):
        assert not check(authorizer(p), headers=[(b"host", host)]).allowed


def test_check_user_claims_when_condition() -> None:
    """An end-user token's claims feed `request.auth.claims[...]` conditions."""
    p = istio("c", {"rules": [{"when": [{"key": "request.auth.claims[role]",
                                          "values": ["admin"]}]}]})
    good = pki.token(pki.ec_key(), pki.user_claims(role="admin", aud="api.example.com"))
    bad = pki.token(pki.ec_key(), pki.user_claims(role="viewer", aud="api.example.com"))
    a = authorizer(p)
    assert check(a, headers=[(b"authorization", f"Bearer {good}".encode())]).allowed
    assert not check(a, headers=[(b"authorization", f"Bearer {bad}".encode())]).allowed


def test_check_audit_record_logged_and_hooked(caplog: pytest.LogCaptureFixture) -> None:
    """Every decision reaches on_decision; denials are logged with who, what, policy."""
    seen: list[AuditRecord] = []
    a = authorizer(DENY_ADMIN, on_decision=seen.append)
    with caplog.at_level(logging.INFO, logger="meshclient.authz"):
        check(a, method="DELETE", path=b"/admin", peer_spiffe_id=WEB_ID)
        check(a, method="GET", path=b"/ok")
    assert [r.verdict.allowed for r in seen] == [False, True]
    assert seen[0].verdict.policy == "AuthorizationPolicy app/deny-admin"
    assert WEB_ID in caplog.text and "deny" in caplog.text and "/admin" in caplog.text
    assert "/ok" not in caplog.text  # allows log at DEBUG by default


def test_check_hook_exception_decision_stands() -> None:
    """A failing on_decision hook is logged; the verdict is unchanged."""
    def boom(record: AuditRecord) -> None:
        raise RuntimeError("hook")

    assert check(authorizer(on_decision=boom)).allowed
    assert not check(authorizer(DENY_ADMIN, on_decision=boom), method="DELETE",
                     path=b"/admin").allowed


def test_policies_recompiled_on_snapshot_change() -> None:
    """A new snapshot recompiles the policies; the same snapshot reuses them."""
    store = Store()
    a = Authorizer(store, WORKLOAD)
    first = a.policies()
    assert a.policies() is first
    store.replace(snapshot(DENY_ADMIN).all())
    assert a.policies() is not first
    assert not check(a, method="DELETE", path=b"/admin").allowed


def test_authorizer_bad_options_raise_naming_them() -> None:
    """Invalid options raise, naming the option."""
    with pytest.raises(ValueError, match="trusted_proxies"):
        Authorizer(Store(), WORKLOAD, trusted_proxies=["not an address"])
    with pytest.raises(ValueError, match="log_decisions"):
        Authorizer(Store(), WORKLOAD, log_decisions="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="workload"):
        Authorizer(Store(), "app")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        Authorizer(Store(), Workload(namespace="a"), issuers=[SA_ISSUER, SA_ISSUER])


def test_authorizer_compiles_at_snapshot_swap_through_subscribe() -> None:
    """With a Mesh, policies compile when the snapshot changes, not on the next request."""
    from meshclient import Mesh

    mesh = Mesh.from_objects([])
    a = Authorizer(mesh, WORKLOAD)
    before = a._compiled[1]
    mesh.store.replace(snapshot(DENY_ADMIN).all())
    mesh.refresh()
    assert a._compiled[1] is not before and a._compiled[0] is mesh.snapshot


def test_authorizer_close_unsubscribes_from_mesh() -> None:
    """close() stops compiling at swaps; the next request still sees the new policies."""
    from meshclient import Mesh

    mesh = Mesh.from_objects([])
    a = Authorizer(mesh, WORKLOAD)
    a.close()
    before = a._compiled[1]
    mesh.store.replace(snapshot(DENY_ADMIN).all())
    mesh.refresh()
    assert a._compiled[1] is before
    assert not check(a, method="DELETE", path=b"/admin").allowed
