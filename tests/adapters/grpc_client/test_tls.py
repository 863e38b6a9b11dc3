"""Mesh channel TLS: BackendTLSPolicy names and trust, SPIFFE SANs, client identity."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

from tests.adapters.grpc_client.conftest import (
    Client,
    leaf,
    mesh_of,
    service,
)
from tests.certs import spiffe_cert
from tests.routing import helpers as h

Make = Callable[..., Client]
NAME = "pay.internal.example.com"
SPIFFE = "spiffe://cluster.local/ns/shop/sa/pay"


def policy(ca: trustme.CA, *, hostname: str = NAME, sans: list[dict[str, str]] | None = None,
           ) -> list[dict[str, Any]]:
    return [h.config_map("ca", "shop", {"ca.crt": ca.cert_pem.bytes().decode()}),
            h.tls_policy("tls", "shop", targets=(("pay", None),), hostname=hostname,
                         ca_refs=[h.ca_ref("ca")], sans=sans)]


def code_of(c: Client) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        c.unary()
    return info.value.code()


class TestBackendTLS:
    def test_policy_hostname_and_ca_verify_the_pod(self, client: Make, servers: Any,
                                                   ca: trustme.CA) -> None:
        """A pod serving a certificate for the policy's hostname, signed by its CA, is
        reached over TLS (BTP: hostname is SNI and verified name)."""
        pod = servers("pod", tls=leaf(ca, NAME))
        c = client(mesh_of(service("pay", [pod]), policy(ca)))
        assert c.unary() == b"pod:hi"
        assert c.server_stream() == [b"pod:0", b"pod:1", b"pod:2"]

    def test_wrong_certificate_name_is_refused(self, client: Make, servers: Any,
                                               ca: trustme.CA) -> None:
        """A certificate for another name fails the call with UNAVAILABLE (BTP: MUST
        verify; grpcio reports it as a connect failure)."""
        pod = servers("pod", tls=leaf(ca, "other.example.com"))
        c = client(mesh_of(service("pay", [pod]), policy(ca)))
        assert code_of(c) is grpc.StatusCode.UNAVAILABLE
        assert pod.hits == 0

    def test_wrong_ca_is_refused(self, client: Make, servers: Any, ca: trustme.CA) -> None:
        """A certificate not signed by the policy's CA fails the call with UNAVAILABLE."""
        pod = servers("pod", tls=leaf(trustme.CA(), NAME))
        c = client(mesh_of(service("pay", [pod]), policy(ca)))
        assert code_of(c) is grpc.StatusCode.UNAVAILABLE
        assert pod.hits == 0

    def test_dns_subject_alt_name_is_verified_in_place_of_hostname(
            self, client: Make, servers: Any, ca: trustme.CA) -> None:
        """With a DNS SAN that does not cover the hostname, that SAN is the name verified
        (BTP: subjectAltNames replace hostname for verification)."""
        pod = servers("pod", tls=leaf(ca, "api.pay.shop"))
        c = client(mesh_of(service("pay", [pod]), policy(
            ca, sans=[{"type": "Hostname", "hostname": "api.pay.shop"}])))
        assert c.unary() == b"pod:hi"

    def test_uri_only_subject_alt_names_fail_without_opt_in(
            self, client: Make, servers: Any, ca: trustme.CA) -> None:
        """A policy naming only a SPIFFE URI SAN cannot be checked by a Python gRPC client:
        the call fails FAILED_PRECONDITION saying so, never silently unchecked
        (ECOSYSTEM.md §2.1)."""
        pod = servers("pod", tls=spiffe_cert(ca, SPIFFE, dns=[NAME]))
        c = client(mesh_of(service("pay", [pod]),
                           policy(ca, sans=[{"type": "URI", "uri": SPIFFE}])))
        with pytest.raises(grpc.RpcError) as info:
            c.unary()
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "spiffe_via_dns_san" in (info.value.details() or "")

    def test_spiffe_via_dns_san_verifies_the_hostname(self, client: Make, servers: Any,
                                                       ca: trustme.CA) -> None:
        """With ``spiffe_via_dns_san`` the hostname is verified as the certificate's DNS SAN
        standing for the SPIFFE identity; a certificate without it is refused."""
        pod = servers("pod", tls=spiffe_cert(ca, SPIFFE, dns=[NAME]))
        other = servers("other", tls=spiffe_cert(ca, SPIFFE, dns=["x.example.com"]))
        sans = [{"type": "URI", "uri": SPIFFE}]
        c = client(mesh_of(service("pay", [pod]), policy(ca, sans=sans)),
                   spiffe_via_dns_san=True)
        assert c.unary() == b"pod:hi"
        c2 = client(mesh_of(service("pay", [other]), policy(ca, sans=sans)),
                    spiffe_via_dns_san=True)
        assert code_of(c2) is grpc.StatusCode.UNAVAILABLE


class TestClientIdentity:
    def test_client_certificate_is_presented_for_mtls(self, client: Make, servers: Any,
                                                      ca: trustme.CA) -> None:
        """A pod that requires a client certificate accepts the channel's and refuses a
        channel without one (mTLS, ECOSYSTEM.md §2.1)."""
        pod = servers("pod", tls=leaf(ca, NAME), client_ca=ca.cert_pem.bytes())
        m = mesh_of(service("pay", [pod]), policy(ca))
        mine = ca.issue_cert("client.shop")
        c = client(m, client_cert=(mine.cert_chain_pems[0].bytes(),
                                   mine.private_key_pem.bytes()))
        assert c.unary() == b"pod:hi"
        assert code_of(client(m)) is grpc.StatusCode.UNAVAILABLE

    def test_token_file_is_sent_and_reread_on_rotation(self, client: Make, servers: Any,
                                                        tmp_path: Path) -> None:
        """The service-account token goes in ``authorization`` metadata and is re-read when
        the file changes (projected token rotation)."""
        pod = servers("pod")
        token = tmp_path / "token"
        token.write_text("first\n")
        c = client(mesh_of(service("pay", [pod])), token_file=token)
        c.unary()
        assert pod.calls[-1].metadata["authorization"] == "Bearer first"
        token.write_text("second-token\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c.unary()
            if pod.calls[-1].metadata["authorization"] == "Bearer second-token":
                break
            time.sleep(0.1)
        assert pod.calls[-1].metadata["authorization"] == "Bearer second-token"

    def test_token_is_not_sent_outside_the_mesh(self, client: Make, servers: Any,
                                                 tmp_path: Path) -> None:
        """A passthrough call to a non-mesh target carries no service-account token (the
        token is for mesh workloads only)."""
        plain = servers("plain")
        token = tmp_path / "token"
        token.write_text("secret\n")
        c = client(mesh_of(service("pay", [])), f"{plain.host}:{plain.port}",
                   token_file=token)
        assert c.unary() == b"plain:hi"
        assert "authorization" not in plain.calls[-1].metadata

    def test_grpcs_passthrough_uses_given_roots(self, client: Make, servers: Any,
                                                ca: trustme.CA) -> None:
        """A ``grpcs://`` target outside the mesh gets a plain TLS channel trusting
        ``root_certificates``; another CA is refused (passthrough keeps TLS)."""
        pod = servers("pod", tls=lambda host: leaf(ca, host))
        m = mesh_of(service("pay", []))
        target = f"grpcs://{pod.host}:{pod.port}"
        assert client(m, target, root_certificates=ca.cert_pem.bytes()).unary() == b"pod:hi"
        other = trustme.CA().cert_pem.bytes()
        assert code_of(client(m, target, root_certificates=other)) is (
            grpc.StatusCode.UNAVAILABLE)
