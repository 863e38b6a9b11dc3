"""JWKS source: OIDC discovery over HTTPS, caching, refresh on unknown kid with a floor."""

from __future__ import annotations

import os

import pytest

from meshclient.authz import Authorizer, Issuer, TokenValidator, Validated
from meshclient.errors import SourceError
from meshclient.sources import JwksKeys
from meshclient.store import Store
from tests.authz import pki
from tests.authz.oidc import oidc_server
from tests.authz.policies import WORKLOAD


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def issuer(iss: str) -> Issuer:
    return Issuer(issuer=iss, audiences=[pki.AUDIENCE], kind="service-account")


def test_jwks_discovery_fetch_validates_token() -> None:
    """Keys found by OIDC discovery over HTTPS validate a real RS256 token."""
    with oidc_server(pki.jwks(pki.rsa_key())) as srv:
        keys = JwksKeys([issuer(srv.issuer)], ssl_context=srv.client_context())
        keys.load()
        v = TokenValidator.of([issuer(srv.issuer)], keys)
        tok = pki.token(pki.rsa_key(), pki.sa_claims(iss=srv.issuer))
        assert isinstance(v.validate(tok, now=pki.NOW), Validated)
        assert [p for p, _ in srv.requests] == ["/.well-known/openid-configuration", "/jwks"]


def test_jwks_unknown_kid_refresh_then_floor_limits_fetches() -> None:
    """An unknown kid triggers one refetch; more within the floor do not fetch again."""
    clock = Clock()
    with oidc_server(pki.jwks(pki.rsa_key())) as srv:
        keys = JwksKeys({srv.issuer: f"{srv.issuer}/jwks"}, ssl_context=srv.client_context(),
                        clock=clock, min_refresh_interval=10)
        keys.load()
        rotated = pki.rsa_key("rsa-2")
        srv.jwks = pki.jwks(pki.rsa_key(), rotated)
        clock.t += 11
        assert keys.refresh(srv.issuer, "rsa-2") is True
        assert keys.key(srv.issuer, "rsa-2") is not None
        for _ in range(5):
            assert keys.refresh(srv.issuer, "forged") is False
        assert srv.jwks_fetches() == 2
        clock.t += 11
        keys.refresh(srv.issuer, "forged")
        assert srv.jwks_fetches() == 3


def test_jwks_authorizer_refresh_hint_fetches_rotated_key() -> None:
    """The Authorizer's refresh hint fetches a rotated key; checking again then passes."""
    clock = Clock()
    with oidc_server(pki.jwks(pki.rsa_key())) as srv:
        iss = issuer(srv.issuer)
        keys = JwksKeys([iss], ssl_context=srv.client_context(), clock=clock,
                        min_refresh_interval=0)
        keys.load()
        a = Authorizer(Store(), WORKLOAD, issuers=[iss], keys=keys)
        rotated = pki.rsa_key("rsa-3")
        srv.jwks = pki.jwks(rotated)
        tok = pki.token(rotated, pki.sa_claims(iss=srv.issuer))
        hdr = [(b"authorization", f"Bearer {tok}".encode())]
        first = a.check(method="GET", path=b"/", headers=hdr, now=pki.NOW)
        assert first.verdict.reason == "unknown_key" and first.refresh is not None
        first.refresh()
        again = a.check(method="GET", path=b"/", headers=hdr, now=pki.NOW)
        assert again.allowed and again.caller.peer is not None
        assert again.caller.peer.service_account == "productpage"


def test_jwks_redirect_refused() -> None:
    """A redirecting JWKS endpoint is an error, never followed."""
    with oidc_server(pki.jwks(pki.rsa_key())) as srv:
        srv.redirect_jwks = True
        keys = JwksKeys([issuer(srv.issuer)], ssl_context=srv.client_context())
        with pytest.raises(SourceError, match="jwks"):
            keys.load()


def test_jwks_untrusted_server_certificate_refused() -> None:
    """Without the issuer's CA the fetch fails (TLS verified); refresh reports False."""
    with oidc_server(pki.jwks(pki.rsa_key())) as srv:
        keys = JwksKeys([issuer(srv.issuer)])
        with pytest.raises(SourceError):
            keys.load()
        assert keys.refresh(srv.issuer, "rsa-1") is False


def test_jwks_token_file_sent_fresh_each_fetch(tmp_path: os.PathLike[str]) -> None:
    """The bearer token file is re-read for every fetch (projected tokens rotate)."""
    path = os.path.join(os.fspath(tmp_path), "token")
    with open(path, "w") as f:
        f.write("first")
    clock = Clock()
    with oidc_server(pki.jwks(pki.rsa_key())) as srv:
        keys = JwksKeys({srv.issuer: f"{srv.issuer}/jwks"}, ssl_context=srv.client_context(),
                        token_file=path, clock=clock)
        keys.load()
        with open(path, "w") as f:
            f.write("second")
        clock.t += 60
        keys.refresh(srv.issuer)
        assert [a for _, a in srv.requests] == ["Bearer first", "Bearer second"]


def test_jwks_refresh_stale_after_max_age() -> None:
    """Key sets older than max_age are refetched by refresh_stale, fresher ones are not."""
    clock = Clock()
    fetched: list[str] = []

    def fetch(url: str) -> dict[str, object]:
        fetched.append(url)
        return pki.jwks(pki.rsa_key())

    keys = JwksKeys({"https://iss": "https://iss/jwks"}, clock=clock, fetch=fetch, max_age=100)
    keys.load()
    clock.t += 50
    keys.refresh_stale()
    clock.t += 60
    keys.refresh_stale()
    assert len(fetched) == 2


def test_jwks_plain_http_refused_by_default() -> None:
    """A plaintext jwks_uri is refused unless allow_http is set (keys could be swapped)."""
    keys = JwksKeys({"https://iss": "http://127.0.0.1:9/jwks"})
    with pytest.raises(SourceError, match="https"):
        keys.load()


def test_jwks_discovery_issuer_mismatch_refused() -> None:
    """A discovery document naming another issuer is refused (OIDC Discovery §4.3)."""
    def fetch(url: str) -> dict[str, object]:
        return {"issuer": "https://other", "jwks_uri": "https://other/jwks"}

    with pytest.raises(SourceError, match="names issuer"):
        JwksKeys({"https://iss": None}, fetch=fetch).load()
