"""TLS straight to pods: BackendTLSPolicy SNI and verification, CAs, SPIFFE SANs, mTLS."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from meshclient.balancing import BalancerConfig, Locality
from meshclient_httpx._tls import peer_problem
from tests.adapters.httpx.conftest import (
    HOST,
    Backend,
    Client,
    gateway,
    mesh_of,
    route,
    service,
    tls_context,
)
from tests.certs import spiffe_cert
from tests.routing import helpers as h

Make = Callable[..., Backend]
MakeClient = Callable[..., Client]
POLICY_HOST = "reviews.internal.example"
SPIFFE = "spiffe://cluster.local/ns/default/sa/reviews"


def tls_world(b: Backend, ca: trustme.CA, *, sans: list[dict[str, str]] | None = None,
              hostname: str = POLICY_HOST) -> list[Any]:
    return [
        gateway(), service("b", [b]),
        h.config_map("ca", data={"ca.crt": ca.cert_pem.bytes().decode()}),
        h.tls_policy("tls", targets=[("b", None)], hostname=hostname,
                     ca_refs=[h.ca_ref("ca")], sans=sans),
        route(h.rule(backends=[h.backend("b")])),
    ]


def test_tls_policy_sni_and_name_verified_host_kept(backends: Make, client: MakeClient,
                                                    ca: trustme.CA) -> None:
    """An http:// request to a backend with a BackendTLSPolicy goes over TLS with its SNI."""
    b = backends("b", tls=tls_context(ca.issue_cert(POLICY_HOST)))
    r = client(mesh_of(*tls_world(b, ca))).get(f"http://{HOST}/x")
    assert (r.status_code, r.text) == (200, "b")
    seen = b.requests[0]
    assert seen.sni == POLICY_HOST
    assert seen.headers["host"] == HOST


def test_tls_policy_wrong_name_is_refused(backends: Make, client: MakeClient,
                                          ca: trustme.CA) -> None:
    """A certificate for another name is refused before any request byte (BTP hostname)."""
    b = backends("b", tls=tls_context(ca.issue_cert("someone-else.example")))
    with pytest.raises(httpx.ConnectError, match=r"(?i)hostname|match"):
        client(mesh_of(*tls_world(b, ca))).get(f"http://{HOST}/")
    assert b.hits == 0


def test_tls_policy_wrong_ca_is_refused(backends: Make, client: MakeClient,
                                        ca: trustme.CA) -> None:
    """A certificate from a CA the policy does not name is refused."""
    other = trustme.CA()
    b = backends("b", tls=tls_context(other.issue_cert(POLICY_HOST)))
    with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
        client(mesh_of(*tls_world(b, ca))).get(f"http://{HOST}/")
    assert b.hits == 0


def _spiffe_backend(backends: Make, ca: trustme.CA, tmp_path: Path, uri: str) -> Backend:
    cert, key = spiffe_cert(ca, uri)
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return backends("b", tls=ctx)


def test_tls_spiffe_uri_san_accepted(backends: Make, client: MakeClient, ca: trustme.CA,
                                     tmp_path: Path) -> None:
    """A policy SAN of type URI accepts the pod whose certificate carries that SPIFFE ID."""
    b = _spiffe_backend(backends, ca, tmp_path, SPIFFE)
    world = tls_world(b, ca, sans=[{"type": "URI", "uri": SPIFFE}])
    r = client(mesh_of(*world)).get(f"http://{HOST}/")
    assert r.status_code == 200


def test_tls_spiffe_uri_san_mismatch_refused_before_sending(
    backends: Make, client: MakeClient, ca: trustme.CA, tmp_path: Path
) -> None:
    """A pod with another SPIFFE ID is refused right after the handshake: 0 requests sent."""
    b = _spiffe_backend(backends, ca, tmp_path, "spiffe://cluster.local/ns/default/sa/evil")
    world = tls_world(b, ca, sans=[{"type": "URI", "uri": SPIFFE}])
    with pytest.raises(httpx.ConnectError, match="peer identity mismatch"):
        client(mesh_of(*world)).get(f"http://{HOST}/")
    assert b.hits == 0


def test_tls_https_to_service_host_verifies_request_host(backends: Make, client: MakeClient,
                                                         ca: trustme.CA) -> None:
    """https:// to a mesh Service host connects to the pod verifying the request's host."""
    name = "b.default.svc.cluster.local"
    b = backends("b", tls=tls_context(ca.issue_cert(name)))
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    mesh = mesh_of(service("b", [b]))
    r = client(mesh, verify=verify).get(f"https://{name}:8080/")
    assert r.status_code == 200
    assert b.requests[0].sni == name


def test_tls_client_certificate_presented(backends: Make, client: MakeClient,
                                          ca: trustme.CA, tmp_path: Path) -> None:
    """client_cert is presented to a backend that requires one (mTLS)."""
    server = tls_context(ca.issue_cert(POLICY_HOST))
    server.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server)
    b = backends("b", tls=server)
    me = ca.issue_cert("client.example")
    me.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "me.pem"))
    c = client(mesh_of(*tls_world(b, ca)),
               client_cert=(str(tmp_path / "me.pem"), str(tmp_path / "me.pem")))
    assert c.get(f"http://{HOST}/").status_code == 200


def test_tls_client_certificate_rotation_reloaded(backends: Make, client: MakeClient,
                                                  ca: trustme.CA, tmp_path: Path) -> None:
    """reload_client_cert presents the rotated certificate on the next handshake."""
    server = tls_context(ca.issue_cert(POLICY_HOST))
    server.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server)
    b = backends("b", tls=server)
    path = tmp_path / "me.pem"
    ca.issue_cert("gen1.example", common_name="gen1").private_key_and_cert_chain_pem \
        .write_to_path(str(path))
    c = client(mesh_of(*tls_world(b, ca)), client_cert=(str(path), str(path)))
    c.get(f"http://{HOST}/")
    ca.issue_cert("gen2.example", common_name="gen2").private_key_and_cert_chain_pem \
        .write_to_path(str(path))
    c.transport.reload_client_cert()
    b.drop_connections()
    c.get(f"http://{HOST}/")
    assert [s.peer for s in b.requests] == ["gen1", "gen2"]


def test_tls_plaintext_same_node_when_operator_allows(backends: Make, client: MakeClient,
                                                      ca: trustme.CA) -> None:
    """plaintext_same_node speaks plain HTTP to an endpoint on the client's node."""
    b = backends("b")  # plaintext server: TLS would fail against it
    world = tls_world(b, ca)
    world[1][1]["endpoints"][0]["nodeName"] = "node-1"
    mesh = mesh_of(*world)
    c = client(mesh, plaintext_same_node=True,
               balancer_config=BalancerConfig(locality=Locality(node="node-1")))
    assert c.get(f"http://{HOST}/").text == "b"


def test_peer_problem_matches_dns_wildcards_and_uris() -> None:
    """SAN entries match exactly, by one-label wildcard, or as URIs (BTP subjectAltNames)."""
    cert = {"subjectAltName": (("DNS", "*.internal.example"), ("URI", SPIFFE))}
    assert peer_problem(cert, (("Hostname", "a.internal.example"),)) is None
    assert peer_problem(cert, (("URI", SPIFFE),)) is None
    assert peer_problem(cert, (("Hostname", "a.b.internal.example"),)) is not None
    assert peer_problem(cert, (("URI", "spiffe://x/y"),)) is not None
    assert peer_problem(None, (("URI", SPIFFE),)) is not None
