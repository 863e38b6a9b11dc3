"""JWT validation given keys: service-account tokens and end-user tokens (sans-I/O).

The signature is checked with PyJWT (ECOSYSTEM §5.2) against a key chosen by ``kid`` from the
token's issuer's key set; the claims are then checked here against an injected ``now`` so that
tests use a manual clock. Every algorithm is pinned per issuer: ``none`` and the HMAC family
can never be configured, so a public key can never be used as an HMAC secret.

Outcomes are values: ``validate`` returns ``Validated`` or ``Rejected`` (with a reason code and,
for an unknown key id, the (issuer, kid) whose key set should be refreshed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol

import attrs
import jwt

from meshclient.authz._identity import (
    Identity,
    RequestPrincipal,
    identity_from_service_account,
    service_account_username,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_CLOCK_SKEW",
    "Issuer",
    "KeyStore",
    "Rejected",
    "StaticKeys",
    "TokenValidator",
    "Validated",
]

DEFAULT_ALGORITHMS: Final = ("RS256", "ES256")
DEFAULT_CLOCK_SKEW: Final = 30.0
DEFAULT_CACHE_SIZE: Final = 4096
DEFAULT_CACHE_TTL: Final = 300.0
_ALLOWED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KEY_TYPE: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

TokenKind = Literal["service-account", "user"]


def _audiences(value: Iterable[str] | str) -> frozenset[str]:
    return frozenset((value,) if isinstance(value, str) else value)


def _algorithms(value: Iterable[str]) -> tuple[str, ...]:
    algs = tuple(value)
    for alg in algs:
        # "none" and HS*: a verifier holding a public key must never accept them
        # (RFC 8725 §2.1, §3.1): the key would become the HMAC secret.
        if alg not in _ALLOWED_ALGORITHMS:
            raise ValueError(
                f"algorithms: {alg!r} is not allowed (use one of {sorted(_ALLOWED_ALGORITHMS)})"
            )
    if not algs:
        raise ValueError("algorithms: at least one algorithm is required")
    return algs


@attrs.frozen(kw_only=True)
class Issuer:
    """A trusted token issuer: who it is, which audiences we accept, which algorithms."""

    issuer: str
    audiences: frozenset[str] = attrs.field(converter=_audiences)
    """The token's ``aud`` must contain one of these (never the API server's own)."""
    kind: TokenKind = "user"
    """``service-account``: a Kubernetes projected token naming a workload identity."""
    algorithms: tuple[str, ...] = attrs.field(default=DEFAULT_ALGORITHMS, converter=_algorithms)
    clock_skew: float = DEFAULT_CLOCK_SKEW
    jwks_uri: str | None = None
    """Where the keys are; None: OIDC discovery (``{issuer}/.well-known/openid-configuration``)."""
    trust_domain: str = "cluster.local"
    """The SPIFFE trust domain of service-account identities from this issuer."""

    def __attrs_post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("issuer: must not be empty")
        if not self.audiences:
            raise ValueError(f"audiences: issuer {self.issuer!r} needs at least one audience")


class KeyStore(Protocol):
    """Keys by issuer and key id; never does I/O when asked."""

    def key(self, issuer: str, kid: str | None) -> jwt.PyJWK | None: ...


@attrs.define(eq=False)
class StaticKeys:
    """Fixed key sets by issuer (tests, or keys distributed with the configuration)."""

    _sets: dict[str, dict[str | None, jwt.PyJWK]] = attrs.field(factory=dict)

    @classmethod
    def from_jwks(cls, jwks_by_issuer: Mapping[str, Mapping[str, object]]) -> StaticKeys:
        return cls({iss: keys_by_kid(jwks) for iss, jwks in jwks_by_issuer.items()})

    def key(self, issuer: str, kid: str | None) -> jwt.PyJWK | None:
        return _pick(self._sets.get(issuer), kid)


def keys_by_kid(jwks: Mapping[str, object]) -> dict[str | None, jwt.PyJWK]:
    """The usable keys of a JWK set by ``kid`` (keys we cannot use are skipped)."""
    out: dict[str | None, jwt.PyJWK] = {}
    raw_keys = jwks.get("keys")
    for raw in raw_keys if isinstance(raw_keys, list) else ():
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(raw)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
        kid = raw.get("kid")
        out[kid if isinstance(kid, str) else None] = key
    return out


def remember(cache: dict[Any, Any], key: object, value: object, size: int) -> None:
    """Store in a bounded insertion-ordered cache, dropping the oldest entry when full."""
    if len(cache) >= size:
        try:
            cache.pop(next(iter(cache)), None)
        except (RuntimeError, StopIteration):  # another thread changed it meanwhile
            cache.clear()
    cache[key] = value


def _pick(keys: Mapping[str | None, jwt.PyJWK] | None, kid: str | None) -> jwt.PyJWK | None:
    if not keys:
        return None
    if kid is not None:
        return keys.get(kid)
    # A token without kid is only accepted when the issuer has exactly one key.
    return next(iter(keys.values())) if len(keys) == 1 else None


@attrs.frozen(kw_only=True)
class Validated:
    """A token that passed every check."""

    issuer: Issuer
    claims: Mapping[str, object]
    expires: float
    not_before: float
    identity: Identity | None = None
    """Set for service-account tokens."""
    principal: RequestPrincipal | None = None
    """Set for user tokens."""


@attrs.frozen(kw_only=True)
class Rejected:
    """A token that failed; ``reason`` is a short code safe to show the caller."""

    reason: str
    detail: str = ""
    refresh: tuple[str, str | None] | None = None
    """(issuer, kid) whose keys should be refetched before trying once more."""


@attrs.define(eq=False)
class TokenValidator:
    """Validates tokens of the configured issuers; caches successes for a while.

    A cached token is reused until it expires or for ``cache_ttl`` seconds, whichever comes
    first; then it is checked again against the key store, so a key withdrawn from the
    issuer's JWKS stops validating tokens within ``cache_ttl`` plus the key refresh interval.
    The cache is bounded (oldest entries go first) and is safe to share between threads.
    """

    issuers: Mapping[str, Issuer]
    keys: KeyStore
    cache_size: int = DEFAULT_CACHE_SIZE
    cache_ttl: float = DEFAULT_CACHE_TTL
    _cache: dict[str, tuple[Validated, float]] = attrs.field(factory=dict, init=False)

    @classmethod
    def of(
        cls, issuers: Iterable[Issuer], keys: KeyStore, *,
        cache_size: int = DEFAULT_CACHE_SIZE, cache_ttl: float = DEFAULT_CACHE_TTL,
    ) -> TokenValidator:
        by_iss: dict[str, Issuer] = {}
        for iss in issuers:
            if iss.issuer in by_iss:
                raise ValueError(f"issuers: {iss.issuer!r} is configured twice")
            by_iss[iss.issuer] = iss
        return cls(MappingProxyType(by_iss), keys, cache_size, cache_ttl)

    def validate(self, token: str, *, now: float) -> Validated | Rejected:
        """Check signature, algorithm, issuer, audience, expiry and not-before."""
        entry = self._cache.get(token)
        if entry is not None:
            hit, until = entry
            if hit.not_before - hit.issuer.clock_skew <= now <= until:
                return hit
            self._cache.pop(token, None)
        result = self._validate(token, now)
        if isinstance(result, Validated):
            until = min(result.expires + result.issuer.clock_skew, now + self.cache_ttl)
            remember(self._cache, token, (result, until), self.cache_size)
        return result

    def _validate(self, token: str, now: float) -> Validated | Rejected:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.DecodeError, json.JSONDecodeError, ValueError, TypeError):
            return Rejected(reason="malformed_token")
        alg = header.get("alg")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self.issuers:
            return Rejected(reason="untrusted_issuer", detail=f"iss {iss!r}")
        cfg = self.issuers[iss]
        if not isinstance(alg, str) or alg not in cfg.algorithms:
            return Rejected(reason="algorithm_not_allowed", detail=f"alg {alg!r}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            return Rejected(reason="malformed_token", detail="kid is not a string")
        key = self.keys.key(iss, kid)
        if key is None:
            return Rejected(reason="unknown_key", detail=f"kid {kid!r}", refresh=(iss, kid))
        if _KEY_TYPE.get(alg[:2]) != key.key_type or (
            key.algorithm_name not in (alg, "") and "alg" in key._jwk_data
        ):
            return Rejected(reason="key_algorithm_mismatch", detail=f"alg {alg!r}")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[alg],
                # Claims are checked below against the injected clock.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": False, "verify_iss": False, "verify_sub": False,
                         "verify_jti": False},
            )
        except jwt.InvalidSignatureError:
            return Rejected(reason="bad_signature")
        except jwt.PyJWTError:
            return Rejected(reason="malformed_token")
        return self._check_claims(cfg, claims, now)

    def _check_claims(
        self, cfg: Issuer, claims: dict[str, object], now: float
    ) -> Validated | Rejected:
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return Rejected(reason="missing_claim", detail="exp")
        if now > exp + cfg.clock_skew:
            return Rejected(reason="token_expired")
        nbf = claims.get("nbf", claims.get("iat"))
        if nbf is not None:
            if isinstance(nbf, bool) or not isinstance(nbf, int | float):
                return Rejected(reason="malformed_token", detail="nbf")
            if now + cfg.clock_skew < nbf:
                return Rejected(reason="token_not_yet_valid")
        else:
            nbf = float("-inf")
        if claims.get("iss") != cfg.issuer:
            return Rejected(reason="untrusted_issuer")
        aud = claims.get("aud")
        auds = (aud,) if isinstance(aud, str) else aud
        if not isinstance(auds, list | tuple) or not all(isinstance(a, str) for a in auds):
            return Rejected(reason="wrong_audience")
        if not cfg.audiences.intersection(auds):
            return Rejected(reason="wrong_audience")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            return Rejected(reason="missing_claim", detail="sub")
        frozen = MappingProxyType(claims)
        if cfg.kind == "service-account":
            k8s = claims.get("kubernetes.io")
            ns = k8s.get("namespace") if isinstance(k8s, dict) else None
            sa = k8s.get("serviceaccount") if isinstance(k8s, dict) else None
            name = sa.get("name") if isinstance(sa, dict) else None
            if not isinstance(ns, str) or not isinstance(name, str) or not ns or not name:
                return Rejected(reason="missing_claim", detail="kubernetes.io")
            # ECOSYSTEM §5.1: identity = (namespace, serviceaccount.name); cross-check sub.
            if sub != service_account_username(ns, name):
                return Rejected(reason="bad_subject")
            return Validated(
                issuer=cfg, claims=frozen, expires=float(exp), not_before=float(nbf),
                identity=identity_from_service_account(ns, name, cfg.trust_domain),
            )
        azp = claims.get("azp")
        return Validated(
            issuer=cfg, claims=frozen, expires=float(exp), not_before=float(nbf),
            principal=RequestPrincipal(
                issuer=cfg.issuer, subject=sub, audiences=tuple(auds),
                presenter=azp if isinstance(azp, str) else None, claims=frozen,
            ),
        )
