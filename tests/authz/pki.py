"""Test credentials: a SPIFFE CA with X.509-SVID leaves, signing keys, JWKS and tokens.

trustme cannot issue URI SANs (ECOSYSTEM §5.3), so the CA is built with ``cryptography``.
Keys are generated once per process (RSA generation is the slow part).
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = 1_795_345_000.0
"""A fixed 'now' for token tests (2026-11-23)."""
K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"
USER_ISSUER = "https://login.example.com"
AUDIENCE = "reviews.default.svc"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@attrs.frozen
class Leaf:
    cert_pem: bytes
    key_pem: bytes

    def files(self, directory: str) -> tuple[str, str]:
        cert = os.path.join(directory, f"leaf-{id(self)}.crt")
        key = os.path.join(directory, f"leaf-{id(self)}.key")
        with open(cert, "wb") as f:
            f.write(self.cert_pem)
        with open(key, "wb") as f:
            f.write(self.key_pem)
        return cert, key


class SpiffeCA:
    """A self-signed CA issuing leaves with SPIFFE URI SANs and DNS/IP SANs."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("meshclient test CA"))
            .issuer_name(_name("meshclient test CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, uris: Sequence[str] = (), dns: Sequence[str] = ("localhost",),
              ips: Sequence[str] = ("127.0.0.1",)) -> Leaf:
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        sans += [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(uris[0] if uris else (dns[0] if dns else "leaf")))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Leaf(
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
        )

    def ca_file(self, directory: str) -> str:
        path = os.path.join(directory, "ca.crt")
        with open(path, "wb") as f:
            f.write(self.cert_pem)
        return path


@functools.cache
def spiffe_ca() -> SpiffeCA:
    return SpiffeCA()


@functools.cache
def tmpdir() -> str:
    return tempfile.mkdtemp(prefix="meshclient-authz-")


# -- signing keys and tokens -------------------------------------------------------------


@attrs.frozen
class SigningKey:
    kid: str
    alg: str
    private: Any
    jwk: Mapping[str, Any]

    @property
    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem


def _jwk(kid: str, alg: str, private: Any) -> dict[str, Any]:
    algo = jwt.get_algorithm_by_name(alg)
    data: dict[str, Any] = json.loads(algo.to_jwk(private.public_key()))
    data.update(kid=kid, alg=alg, use="sig")
    return data


@functools.cache
def rsa_key(kid: str = "rsa-1") -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid, "RS256", private, _jwk(kid, "RS256", private))


@functools.cache
def ec_key(kid: str = "ec-1") -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid, "ES256", private, _jwk(kid, "ES256", private))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [dict(k.jwk) for k in keys]}


def token(key: SigningKey, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None,
          alg: str | None = None) -> str:
    hdr = {"kid": key.kid, **(headers or {})}
    return jwt.encode(dict(claims), key.private, algorithm=alg or key.alg, headers=hdr)


def sa_claims(namespace: str = "default", name: str = "productpage", *, now: float = NOW,
              aud: Any = (AUDIENCE,), iss: str = K8S_ISSUER, lifetime: float = 3600,
              **extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "aud": list(aud) if not isinstance(aud, str) else aud,
        "exp": int(now + lifetime), "iat": int(now), "nbf": int(now),
        "iss": iss, "jti": "4b3c2a1e-0000-4000-8000-000000000000",
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": "sa-uid"},
            "pod": {"name": f"{name}-v1-abc", "uid": "pod-uid"},
        },
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    claims.update(extra)
    return claims


def user_claims(sub: str = "alice", *, now: float = NOW, aud: Any = "api.example.com",
                iss: str = USER_ISSUER, lifetime: float = 600, **extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": sub, "aud": aud, "iss": iss, "exp": int(now + lifetime),
                              "iat": int(now)}
    claims.update(extra)
    return claims
