"""BackendTLSPolicy: what the decision carries for TLS to a backend, and the policy's status
(SPEC-NOTES §8, §8.1)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient import Action, Decision, Mesh
from tests.routing.helpers import (
    PEM,
    backend,
    ca_ref,
    condition,
    config_map,
    gateway,
    get,
    http_route,
    listener,
    mesh,
    rule,
    service,
    service_parent,
    tls_policy,
    ts,
)


def with_policy(*objects: dict[str, Any], ports: tuple[tuple[str, int] | tuple[str, int, str],
                                                    ...] = (("http", 8080), ("admin", 9090)),
                ) -> Mesh:
    return mesh(
        gateway(listeners=[listener(), listener("tls", 443, "HTTPS")]),
        service("svc", ports=ports), config_map("ca", data={"ca.crt": PEM}),
        http_route(rules=[rule(backends=[backend("svc")])]),
        http_route("admin", hostnames=["admin.example.com"],
                   rules=[rule(backends=[backend("svc", 9090)])]),
        *objects,
    )


def first(d: Decision) -> Any:
    assert d.backends, d
    return d.backends[0]


def policy_condition(m: Mesh, name: str, type: str = "Accepted") -> tuple[str, str]:
    c = condition(m, "BackendTLSPolicy", name, type)
    return (c.status, c.reason)


class TestUse:
    @pytest.mark.parametrize("url", ["http://example.com/", "https://example.com/"])
    def test_tls_used_for_target_regardless_of_inbound_protocol(self, url: str) -> None:
        """A targeted Service is reached over TLS whatever the inbound scheme (G1897,
        SPEC-NOTES §8, checklist 140)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref()]))
        b = first(get(m, url))
        assert b.tls is not None
        assert b.tls.hostname == "svc.example.com"

    def test_hostname_is_sni_and_verified_name_without_sans(self) -> None:
        """validation.hostname is the SNI and, with no SANs, the verified name (SPEC-NOTES §8,
        checklist 141)."""
        m = with_policy(tls_policy(hostname="backend.internal", ca_refs=[ca_ref()]))
        tls = first(get(m, "http://example.com/")).tls
        assert tls.hostname == "backend.internal"
        assert tls.subject_alt_names == ()
        out = get(m, "http://example.com/").to_json()["backends"][0]["tls"]
        assert out == {"hostname": "backend.internal", "subject_alt_names": [],
                       "ca": "configmap"}

    def test_sans_carried_for_verification(self) -> None:
        """With subjectAltNames the SAN list is what is verified: Hostname and URI (SPIFFE)
        entries (SPEC-NOTES §8, checklist 142, 143)."""
        sans = [{"type": "Hostname", "hostname": "*.svc.example.com"},
                {"type": "URI", "uri": "spiffe://cluster.local/ns/default/sa/svc"}]
        m = with_policy(tls_policy(hostname="sni.example.com", ca_refs=[ca_ref()], sans=sans))
        tls = first(get(m, "http://example.com/")).tls
        assert tls.hostname == "sni.example.com"
        assert tls.subject_alt_names == (("Hostname", "*.svc.example.com"),
                                         ("URI", "spiffe://cluster.local/ns/default/sa/svc"))

    def test_san_type_mismatch_is_invalid(self) -> None:
        """A SAN's field must match its type (SPEC-NOTES §8, checklist 143)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref()],
                                   sans=[{"type": "URI", "hostname": "a.example.com"}]))
        assert policy_condition(m, "tls")[0] == "False"

    def test_ca_pem_carried_from_config_map(self) -> None:
        """The CA bundle comes from the ConfigMap's ``ca.crt`` (SPEC-NOTES §8)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref()]))
        assert first(get(m, "http://example.com/")).tls.ca_pem == PEM

    def test_well_known_system_uses_system_trust(self) -> None:
        """``wellKnownCACertificates: System`` uses the system store (SPEC-NOTES §8,
        checklist 151)."""
        m = with_policy(tls_policy(well_known="System"))
        assert policy_condition(m, "tls") == ("True", "Accepted")
        tls = first(get(m, "http://example.com/")).tls
        assert tls.ca_pem is None
        assert get(m, "http://example.com/").to_json()["backends"][0]["tls"]["ca"] == "system"

    def test_wss_app_protocol_usable_with_policy(self) -> None:
        """``kubernetes.io/wss`` needs a BackendTLSPolicy; with one the backend is valid
        (SPEC-NOTES §4.5, checklist 94)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref()]),
                        ports=(("http", 8080, "kubernetes.io/wss"), ("admin", 9090)))
        b = first(get(m, "http://example.com/"))
        assert b.valid and b.tls is not None

    def test_untargeted_service_plaintext(self) -> None:
        """A Service no policy targets has no TLS (SPEC-NOTES §8)."""
        m = with_policy(tls_policy(targets=[("other", None)], ca_refs=[ca_ref()]),
                        service("other"))
        assert first(get(m, "http://example.com/")).tls is None

    def test_mesh_backend_also_gets_tls(self) -> None:
        """GAMMA backends honour the policy too (SPEC-NOTES §8: Impl, documented)."""
        m = mesh(service("svc"), service("front"), config_map("ca", data={"ca.crt": PEM}),
                 tls_policy(ca_refs=[ca_ref()]),
                 http_route(parents=[service_parent("front")], hostnames=None,
                            rules=[rule(backends=[backend("svc")])]))
        b = first(get(m, "http://front.default:8080/"))
        assert b.tls is not None and b.tls.hostname == "svc.example.com"


class TestTrustValidation:
    def test_both_ca_refs_and_well_known_invalid(self) -> None:
        """Exactly one of caCertificateRefs and wellKnownCACertificates (SPEC-NOTES §8,
        checklist 144)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref()], well_known="System"))
        assert policy_condition(m, "tls") == ("False", "Invalid")

    def test_neither_ca_refs_nor_well_known_invalid(self) -> None:
        """One of the two must be set (SPEC-NOTES §8, checklist 144)."""
        m = with_policy(tls_policy())
        assert policy_condition(m, "tls") == ("False", "Invalid")

    def test_config_map_without_ca_crt_invalid_ref_and_5xx(self) -> None:
        """A ConfigMap without ``ca.crt`` → ResolvedRefs=False InvalidCACertificateRef; the
        connections fail with 5xx (SPEC-NOTES §8, checklist 145)."""
        m = with_policy(config_map("empty", data={"other": "x"}),
                        tls_policy(ca_refs=[ca_ref("empty")]))
        assert policy_condition(m, "tls", "ResolvedRefs") == ("False", "InvalidCACertificateRef")
        d = get(m, "http://example.com/")
        assert d.action is Action.REJECT
        assert d.status is not None and 500 <= d.status < 600

    def test_missing_config_map_invalid_ref(self) -> None:
        """A missing ConfigMap is an invalid CA ref (SPEC-NOTES §8, checklist 145)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref("ghost")]))
        assert policy_condition(m, "tls", "ResolvedRefs") == ("False", "InvalidCACertificateRef")

    def test_unknown_ca_ref_kind_invalid_kind(self) -> None:
        """A CA ref of an unknown kind → ResolvedRefs=False InvalidKind (SPEC-NOTES §8,
        checklist 146)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref("ca", kind="Secret")]))
        assert policy_condition(m, "tls", "ResolvedRefs") == ("False", "InvalidKind")

    @pytest.mark.parametrize("refs", [
        [("ghost", "ConfigMap")], [("ca", "Secret")], [("ghost", "ConfigMap"), ("ca", "Secret")],
    ])
    def test_all_ca_refs_bad_no_valid_ca_certificate(self, refs: list[tuple[str, str]]) -> None:
        """Every CA ref bad → Accepted=False NoValidCACertificate (SPEC-NOTES §8,
        checklist 147)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref(n, kind=k) for n, k in refs]))
        assert policy_condition(m, "tls") == ("False", "NoValidCACertificate")
        assert get(m, "http://example.com/").action is Action.REJECT

    def test_some_ca_refs_bad_reported_good_ones_used(self) -> None:
        """One bad ref among good ones is still reported as ResolvedRefs=False; the policy
        stays Accepted (SPEC-NOTES §8, checklist 145)."""
        m = with_policy(tls_policy(ca_refs=[ca_ref(), ca_ref("ghost")]))
        assert policy_condition(m, "tls") == ("True", "Accepted")
        assert policy_condition(m, "tls", "ResolvedRefs") == ("False", "InvalidCACertificateRef")

    @pytest.mark.parametrize("policy", [
        {"ca_refs": [{"group": "", "kind": "ConfigMap", "name": "ghost"}]},
        {"well_known": "Mozilla"},
        {"ca_refs": [{"group": "", "kind": "ConfigMap", "name": "ca"}], "well_known": "System"},
    ])
    def test_invalid_policy_never_falls_back_to_plaintext(self, policy: dict[str, Any]) -> None:
        """An invalid policy must not downgrade to plaintext: requests fail with 5xx
        (G1897, SPEC-NOTES §8, checklist 148)."""
        m = with_policy(tls_policy(**policy))
        d = get(m, "http://example.com/")
        assert d.action is Action.REJECT, d
        assert d.status is not None and 500 <= d.status < 600

    def test_invalid_policy_does_not_shadow_valid_policy(self) -> None:
        """A valid policy on the same target is used over an invalid older one (checklist 148,
        149)."""
        m = with_policy(tls_policy("bad", well_known="Mozilla", created=ts(1)),
                        tls_policy("good", hostname="good.example.com", ca_refs=[ca_ref()],
                                   created=ts(5)))
        assert policy_condition(m, "good") == ("True", "Accepted")
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert first(d).tls.hostname == "good.example.com"

    def test_unsupported_well_known_not_accepted(self) -> None:
        """An unsupported wellKnownCACertificates → Accepted=False Invalid (SPEC-NOTES §8,
        checklist 151)."""
        m = with_policy(tls_policy(well_known="Mozilla"))
        assert policy_condition(m, "tls") == ("False", "Invalid")


class TestTargetsAndConflicts:
    def test_same_target_older_policy_wins_other_conflicted(self) -> None:
        """Two policies on one target: the older wins, the other Accepted=False Conflicted
        (SPEC-NOTES §8, checklist 149)."""
        m = with_policy(
            tls_policy("young", hostname="young.example.com", ca_refs=[ca_ref()],
                       created=ts(5)),
            tls_policy("old", hostname="old.example.com", ca_refs=[ca_ref()], created=ts(1)),
        )
        assert policy_condition(m, "old") == ("True", "Accepted")
        assert policy_condition(m, "young") == ("False", "Conflicted")
        assert first(get(m, "http://example.com/")).tls.hostname == "old.example.com"

    def test_same_age_conflict_namespace_name_alphabetical(self) -> None:
        """Equal age → alphabetical ``namespace/name`` wins (G713, SPEC-NOTES §8.1,
        checklist 153)."""
        m = with_policy(
            tls_policy("b", hostname="b.example.com", ca_refs=[ca_ref()], created=ts(1)),
            tls_policy("a", hostname="a.example.com", ca_refs=[ca_ref()], created=ts(1)),
        )
        assert policy_condition(m, "a") == ("True", "Accepted")
        assert policy_condition(m, "b") == ("False", "Conflicted")
        assert first(get(m, "http://example.com/")).tls.hostname == "a.example.com"

    def test_port_scoped_policy_beats_whole_service_on_its_port(self) -> None:
        """A sectionName policy governs its port; the whole-Service policy the others, both
        Accepted (CT:backendtlspolicy-conflict-resolution, checklist 150)."""
        m = with_policy(
            tls_policy("whole", hostname="whole.example.com", ca_refs=[ca_ref()],
                       created=ts(1)),
            tls_policy("port", targets=[("svc", "http")], hostname="port.example.com",
                       ca_refs=[ca_ref()], created=ts(5)),
        )
        assert policy_condition(m, "whole") == ("True", "Accepted")
        assert policy_condition(m, "port") == ("True", "Accepted")
        assert first(get(m, "http://example.com/")).tls.hostname == "port.example.com"
        assert first(get(m, "http://admin.example.com/")).tls.hostname == "whole.example.com"

    def test_section_name_naming_no_port_target_not_found(self) -> None:
        """A sectionName that names no port of the target does not attach (SPEC-NOTES §8)."""
        m = with_policy(tls_policy(targets=[("svc", "nope")], ca_refs=[ca_ref()]))
        assert policy_condition(m, "tls") == ("False", "TargetNotFound")
        assert first(get(m, "http://example.com/")).tls is None

    def test_missing_target_target_not_found(self) -> None:
        """A policy whose target does not exist → TargetNotFound (SPEC-NOTES §8.1)."""
        m = with_policy(tls_policy(targets=[("ghost", None)], ca_refs=[ca_ref()]))
        assert policy_condition(m, "tls") == ("False", "TargetNotFound")

    @pytest.mark.xfail(strict=True, reason="Gateway spec.tls.backend.clientCertificateRef "
                       "(and Secrets) are not modelled yet")
    def test_gateway_backend_client_certificate_presented(self) -> None:
        """The Gateway's backend client certificate is carried for mTLS to backends
        (SPEC-NOTES §8, checklist 152)."""
        gw = gateway()
        gw["spec"]["tls"] = {"backend": {"clientCertificateRef": {"kind": "Secret",
                                                                   "name": "client"}}}
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                  "metadata": {"name": "client", "namespace": "default"},
                  "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}}
        m = mesh(gw, secret, service("svc"), config_map("ca", data={"ca.crt": PEM}),
                 tls_policy(ca_refs=[ca_ref()]), http_route())
        tls = first(get(m, "http://example.com/")).tls
        assert getattr(tls, "client_certificate", None) is not None


def test_gateway_backend_client_certificate_routes_via_gateway() -> None:
    """A Gateway that presents its own client certificate to backends is never bypassed with
    the certificate dropped: its routes go via the gateway (SPEC-NOTES §8, checklist 152)."""
    gw = gateway(addresses=["10.0.0.9"])
    gw["spec"]["tls"] = {"backend": {"clientCertificateRef": {"kind": "Secret",
                                                               "name": "client"}}}
    m = mesh(gw, service("svc"), http_route())
    d = get(m, "http://example.com/")
    assert d.action is Action.FORWARD and d.via.value == "gateway"
    assert d.gateway_address == "10.0.0.9"
    assert any("clientCertificateRef" in r for r in d.reasons)
    plain = mesh(gateway(), service("svc"), http_route())
    assert get(plain, "http://example.com/").via.value == "direct"


def traffic_policy(name: str, *, percent: int, created: str | None = None,
                   target: str = "svc") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if created is not None:
        meta["creationTimestamp"] = created
    return {"apiVersion": "gateway.networking.x-k8s.io/v1alpha1",
            "kind": "XBackendTrafficPolicy", "metadata": meta,
            "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": target}],
                     "retryConstraint": {"budget": {"percent": percent, "interval": "5s"}}}}


class TestDirectPolicyConflicts:
    def test_older_traffic_policy_wins(self) -> None:
        """Direct policies do not merge: the oldest wins, the other is Conflicted (G713,
        SPEC-NOTES §8.1, checklist 153)."""
        m = with_policy(traffic_policy("young", percent=50, created=ts(9)),
                        traffic_policy("old", percent=30, created=ts(1)))
        assert condition(m, "XBackendTrafficPolicy", "old", "Accepted").status == "True"
        young = condition(m, "XBackendTrafficPolicy", "young", "Accepted")
        assert (young.status, young.reason) == ("False", "Conflicted")
        budget = get(m, "http://example.com/").to_json()["backends"][0]["retry_budget"]
        assert budget["percent"] == 30
        assert budget["interval"] == "5s"

    def test_same_age_traffic_policy_namespace_name_wins(self) -> None:
        """Equal age → alphabetical ``namespace/name`` (G713, checklist 153)."""
        m = with_policy(traffic_policy("b", percent=50, created=ts(1)),
                        traffic_policy("a", percent=30, created=ts(1)))
        assert condition(m, "XBackendTrafficPolicy", "a", "Accepted").status == "True"
        assert condition(m, "XBackendTrafficPolicy", "b", "Accepted").reason == "Conflicted"

    def test_traffic_policy_defaults(self) -> None:
        """Budget defaults 20 % / 10s and minRetryRate 10/1s (SPEC-NOTES §0.1, §5.4)."""
        p = traffic_policy("p", percent=20)
        p["spec"]["retryConstraint"] = {}
        budget = get(with_policy(p), "http://example.com/").to_json()["backends"][0][
            "retry_budget"]
        assert budget == {"percent": 20, "interval": "10s", "min_retry_rate": "10/1s"}
