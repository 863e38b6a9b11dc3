"""JWT validation: service-account and user tokens, every rejection the issue lists."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from meshclient.authz import Issuer, Rejected, StaticKeys, TokenValidator, Validated
from tests.authz import pki

SA = Issuer(issuer=pki.K8S_ISSUER, audiences=[pki.AUDIENCE], kind="service-account")
USER = Issuer(issuer=pki.USER_ISSUER, audiences="api.example.com", algorithms=["ES256"])


def validator(*keys: pki.SigningKey, issuers: tuple[Issuer, ...] = (SA, USER)) -> TokenValidator:
    ks = keys or (pki.rsa_key(), pki.ec_key())
    return TokenValidator.of(issuers, StaticKeys.from_jwks(
        {pki.K8S_ISSUER: pki.jwks(*ks), pki.USER_ISSUER: pki.jwks(*ks)}))


def reason(result: Validated | Rejected) -> str:
    assert isinstance(result, Rejected), result
    return result.reason


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_token_service_account_valid_gives_identity() -> None:
    """A projected token yields system:serviceaccount:NS:SA and its SPIFFE form (§5.1)."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims("default", "productpage"))
    got = validator().validate(tok, now=pki.NOW + 10)
    assert isinstance(got, Validated) and got.identity is not None
    assert got.identity.username == "system:serviceaccount:default:productpage"
    assert got.identity.spiffe_id == "spiffe://cluster.local/ns/default/sa/productpage"
    assert got.identity.authenticated_by == "service-account-token"


def test_token_user_es256_valid_gives_request_principal() -> None:
    """An end-user token yields the request principal iss/sub with its claims."""
    tok = pki.token(pki.ec_key(), pki.user_claims("alice", groups=["admin"], azp="web"))
    got = validator().validate(tok, now=pki.NOW)
    assert isinstance(got, Validated) and got.principal is not None
    assert got.principal.principal == f"{pki.USER_ISSUER}/alice"
    assert got.principal.presenter == "web"
    assert got.principal.claims["groups"] == ["admin"]


def test_token_alg_none_rejected() -> None:
    """`alg: none` is never accepted, even with a valid-looking payload."""
    tok = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'rsa-1'})}.{_b64(pki.sa_claims())}."
    assert reason(validator().validate(tok, now=pki.NOW)) == "algorithm_not_allowed"


def test_token_hmac_signed_with_public_key_rejected() -> None:
    """HS256 signed with the issuer's public key as secret (key confusion) is refused."""
    key = pki.rsa_key()
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    payload = _b64(pki.sa_claims())
    import hashlib
    import hmac

    sig = hmac.new(key.public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    tok = f"{header}.{payload}.{_b64(sig)}"
    assert reason(validator().validate(tok, now=pki.NOW)) == "algorithm_not_allowed"


def test_token_algorithm_not_pinned_for_issuer_rejected() -> None:
    """An RS256 token from an issuer pinned to ES256 is refused."""
    tok = pki.token(pki.rsa_key(), pki.user_claims())
    assert reason(validator().validate(tok, now=pki.NOW)) == "algorithm_not_allowed"


def test_issuer_hmac_or_none_configured_raises() -> None:
    """Configuring HS256 or none for an issuer is a ValueError naming the algorithm."""
    for alg in ("HS256", "none"):
        with pytest.raises(ValueError, match=alg):
            Issuer(issuer="https://x", audiences=["a"], algorithms=[alg])


def test_token_expired_rejected() -> None:
    """A token past exp plus the clock skew is refused."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims(lifetime=60))
    assert reason(validator().validate(tok, now=pki.NOW + 60 + 31)) == "token_expired"


def test_token_expired_within_skew_accepted() -> None:
    """A token a few seconds past exp is still accepted (small clock skew)."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims(lifetime=60))
    assert isinstance(validator().validate(tok, now=pki.NOW + 60 + 20), Validated)


def test_token_not_yet_valid_rejected() -> None:
    """A token whose nbf is beyond the skew in the future is refused."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims(now=pki.NOW + 120))
    assert reason(validator().validate(tok, now=pki.NOW)) == "token_not_yet_valid"


def test_token_wrong_audience_rejected() -> None:
    """A token for another audience (e.g. the API server's) is refused."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims(aud=["https://kubernetes.default.svc"]))
    assert reason(validator().validate(tok, now=pki.NOW)) == "wrong_audience"


def test_token_wrong_issuer_rejected() -> None:
    """A token from an issuer not configured is refused."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims(iss="https://evil.example.com"))
    assert reason(validator().validate(tok, now=pki.NOW)) == "untrusted_issuer"


def test_token_unknown_kid_rejected_with_refresh_hint() -> None:
    """An unknown key id is refused and names the (issuer, kid) to refetch."""
    other = pki.SigningKey("rotated", "RS256", pki.rsa_key().private, {})
    tok = pki.token(other, pki.sa_claims())
    got = validator().validate(tok, now=pki.NOW)
    assert isinstance(got, Rejected) and got.reason == "unknown_key"
    assert got.refresh == (pki.K8S_ISSUER, "rotated")


def test_token_forged_signature_rejected() -> None:
    """A token signed by another key under a known kid is refused."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    forged = pki.SigningKey("rsa-1", "RS256",
                            rsa.generate_private_key(public_exponent=65537, key_size=2048), {})
    tok = pki.token(forged, pki.sa_claims())
    assert reason(validator().validate(tok, now=pki.NOW)) == "bad_signature"


def test_token_key_type_mismatch_rejected() -> None:
    """A header claiming ES256 under an RSA key's kid is refused."""
    v = TokenValidator.of([Issuer(issuer=pki.K8S_ISSUER, audiences=[pki.AUDIENCE],
                                  kind="service-account", algorithms=["RS256", "ES256"])],
                          StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(pki.rsa_key())}))
    ec = pki.ec_key()
    tok = pki.token(pki.SigningKey("rsa-1", "ES256", ec.private, {}), pki.sa_claims())
    assert reason(v.validate(tok, now=pki.NOW)) == "key_algorithm_mismatch"


def test_token_subject_mismatch_rejected() -> None:
    """A service-account token whose sub disagrees with its kubernetes.io claims is refused."""
    tok = pki.token(pki.rsa_key(), pki.sa_claims(sub="system:serviceaccount:kube-system:admin"))
    assert reason(validator().validate(tok, now=pki.NOW)) == "bad_subject"


def test_token_missing_exp_rejected() -> None:
    """A token without exp is refused."""
    claims = pki.sa_claims()
    del claims["exp"]
    assert reason(validator().validate(pki.token(pki.rsa_key(), claims),
                                       now=pki.NOW)) == "missing_claim"


def test_token_garbage_rejected() -> None:
    """Something that is not a JWT is refused as malformed."""
    for junk in ("", "abc", "a.b.c", "..."):
        assert reason(validator().validate(junk, now=pki.NOW)) == "malformed_token"


def test_token_without_kid_single_key_accepted() -> None:
    """Without kid the token is checked against the issuer's only key."""
    key = pki.rsa_key()
    tok = jwt.encode(pki.sa_claims(), key.private, algorithm="RS256")
    v = TokenValidator.of([SA], StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(key)}))
    assert isinstance(v.validate(tok, now=pki.NOW), Validated)


def test_token_cache_hit_then_expiry_rejected() -> None:
    """A cached token is returned as is until it expires, then refused."""
    v = validator()
    tok = pki.token(pki.rsa_key(), pki.sa_claims(lifetime=100))
    first = v.validate(tok, now=pki.NOW)
    assert v.validate(tok, now=pki.NOW + 1) is first
    assert reason(v.validate(tok, now=pki.NOW + 200)) == "token_expired"


def test_token_cache_bounded_evicts_oldest() -> None:
    """The success cache never grows past its size."""
    v = TokenValidator.of([SA], StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(pki.rsa_key())}),
                          cache_size=3)
    for i in range(6):
        v.validate(pki.token(pki.rsa_key(), pki.sa_claims(name=f"sa{i}")), now=pki.NOW)
    assert len(v._cache) == 3


def test_token_cache_ttl_revalidates_against_current_keys() -> None:
    """After cache_ttl a cached token is checked again: a withdrawn key stops validating it."""
    keys = StaticKeys.from_jwks({pki.K8S_ISSUER: pki.jwks(pki.rsa_key())})
    v = TokenValidator.of([SA], keys, cache_ttl=60)
    tok = pki.token(pki.rsa_key(), pki.sa_claims(lifetime=3600))
    assert isinstance(v.validate(tok, now=pki.NOW), Validated)
    keys._sets[pki.K8S_ISSUER] = {}
    assert isinstance(v.validate(tok, now=pki.NOW + 30), Validated)
    assert reason(v.validate(tok, now=pki.NOW + 61)) == "unknown_key"
