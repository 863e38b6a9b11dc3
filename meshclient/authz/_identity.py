"""Who is calling: workload identities (SPIFFE, service accounts) and request principals.

A workload's identity comes from its mTLS certificate (the one ``spiffe://`` URI SAN of an
X.509-SVID, ECOSYSTEM §5.3) or from a projected service-account token; both are reduced to
the same ``Identity``, so policies written against ``cluster.local/ns/NS/sa/SA`` match either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

import attrs

__all__ = [
    "ANONYMOUS",
    "Caller",
    "Identity",
    "RequestPrincipal",
    "identity_from_service_account",
    "identity_from_spiffe_id",
    "parse_spiffe_id",
    "service_account_username",
    "spiffe_id_from_certificate",
]

_EMPTY: Final[Mapping[str, object]] = MappingProxyType({})
# RFC-ish SPIFFE ID grammar (SPIFFE-ID §2): lower-case trust domain, non-empty path
# segments of [A-Za-z0-9._-], no "." or ".." segments, no query or fragment.
_TRUST_DOMAIN: Final = re.compile(r"[a-z0-9._-]+")
_SEGMENT: Final = re.compile(r"[A-Za-z0-9._-]+")
_K8S_PATH: Final = re.compile(r"/ns/([^/]+)/sa/([^/]+)")

AuthenticatedBy = Literal["mtls", "service-account-token", "forwarded"]


def parse_spiffe_id(value: str) -> tuple[str, str] | None:
    """Split a SPIFFE ID into (trust domain, path); None when it is not one."""
    if not value.startswith("spiffe://"):
        return None
    domain, sep, rest = value[len("spiffe://"):].partition("/")
    if not _TRUST_DOMAIN.fullmatch(domain) or not sep or not rest:
        return None
    for segment in rest.split("/"):
        if segment in (".", "..") or not _SEGMENT.fullmatch(segment):
            return None
    return domain, "/" + rest


def service_account_username(namespace: str, name: str) -> str:
    """The Kubernetes username of a service account (``sub`` of its tokens)."""
    return f"system:serviceaccount:{namespace}:{name}"


@attrs.frozen(kw_only=True)
class Identity:
    """A calling workload, proven by a certificate or a service-account token."""

    spiffe_id: str
    """``spiffe://<trust-domain>/<path>``."""
    trust_domain: str
    namespace: str | None = None
    """From a Kubernetes-shaped SPIFFE path (``/ns/NS/sa/SA``) or the token's claims."""
    service_account: str | None = None
    authenticated_by: AuthenticatedBy = "mtls"

    @property
    def principal(self) -> str:
        """Istio's form of the identity: the SPIFFE ID without ``spiffe://``."""
        return self.spiffe_id[len("spiffe://"):]

    @property
    def username(self) -> str | None:
        """``system:serviceaccount:NS:SA`` when the identity is a service account."""
        if self.namespace is None or self.service_account is None:
            return None
        return service_account_username(self.namespace, self.service_account)


@attrs.frozen(kw_only=True)
class RequestPrincipal:
    """An end user (or client) proven by a validated JWT, as Istio's RequestAuthentication."""

    issuer: str
    subject: str
    audiences: tuple[str, ...] = ()
    presenter: str | None = None
    """The ``azp`` claim."""
    claims: Mapping[str, object] = _EMPTY

    @property
    def principal(self) -> str:
        """Istio's ``requestPrincipal``: ``<iss>/<sub>``."""
        return f"{self.issuer}/{self.subject}"


@attrs.frozen(kw_only=True)
class Caller:
    """Everything known about the caller of one request."""

    peer: Identity | None = None
    user: RequestPrincipal | None = None
    source_ip: str | None = None
    """The directly connected peer's address."""
    remote_ip: str | None = None
    """The original client address (from a trusted proxy's X-Forwarded-For), else source_ip."""

    @property
    def authenticated(self) -> bool:
        return self.peer is not None or self.user is not None


ANONYMOUS: Final = Caller()


def identity_from_spiffe_id(
    spiffe_id: str, authenticated_by: AuthenticatedBy = "mtls"
) -> Identity | None:
    """The identity named by a SPIFFE ID; None when the ID is malformed."""
    parsed = parse_spiffe_id(spiffe_id)
    if parsed is None:
        return None
    domain, path = parsed
    m = _K8S_PATH.fullmatch(path)
    return Identity(
        spiffe_id=spiffe_id,
        trust_domain=domain,
        namespace=m.group(1) if m else None,
        service_account=m.group(2) if m else None,
        authenticated_by=authenticated_by,
    )


def identity_from_service_account(
    namespace: str, name: str, trust_domain: str,
    authenticated_by: AuthenticatedBy = "service-account-token",
) -> Identity:
    """A service account's identity, with its SPIFFE form in ``trust_domain``."""
    return Identity(
        spiffe_id=f"spiffe://{trust_domain}/ns/{namespace}/sa/{name}",
        trust_domain=trust_domain,
        namespace=namespace,
        service_account=name,
        authenticated_by=authenticated_by,
    )


def spiffe_id_from_certificate(cert: bytes | str) -> str | None:
    """The SPIFFE ID of an X.509-SVID (PEM text or DER bytes).

    Returns None unless the certificate has exactly one URI SAN and it is a valid SPIFFE ID
    (X.509-SVID §2: a second URI SAN makes the certificate no SVID at all).
    """
    from cryptography import x509

    if isinstance(cert, str):
        parsed = x509.load_pem_x509_certificate(cert.encode("ascii"))
    elif cert.lstrip().startswith(b"-----BEGIN"):
        parsed = x509.load_pem_x509_certificate(cert)
    else:
        parsed = x509.load_der_x509_certificate(cert)
    try:
        ext = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = ext.value.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1 or parse_spiffe_id(uris[0]) is None:
        return None
    return uris[0]
