"""Pure helpers of the gRPC channel: targets, status mapping, annotations, TLS names."""

from __future__ import annotations

import grpc
import pytest

from meshclient.routing import BackendTLS, Decision, RequestHead
from meshclient_grpc._endpoints import channel_options, endpoint_target, parse_target
from meshclient_grpc._policy import (
    GRPC_NAMES,
    HTTP_OF,
    TLSProblem,
    answer_code,
    parse_linkerd_duration,
    settings_from_annotations,
    tls_name,
)
from tests.adapters.grpc_client.conftest import grpc_route, mesh_of, rule, service


class TestTargets:
    @pytest.mark.parametrize(("target", "scheme", "host", "port", "authority"), [
        ("grpc://Pay.Shop:9000", "grpc", "pay.shop", 9000, "pay.shop:9000"),
        ("grpcs://payments.internal.example.com", "grpcs", "payments.internal.example.com",
         443, "payments.internal.example.com"),
        ("grpc://pay.shop", "grpc", "pay.shop", 80, "pay.shop"),
        ("payments.shop:9000", "grpc", "payments.shop", 9000, "payments.shop:9000"),
        ("dns:///pay.shop:9000", "grpc", "pay.shop", 9000, "pay.shop:9000"),
        ("[::1]:50051", "grpc", "::1", 50051, "[::1]:50051"),
    ])
    def test_parse_target_forms_give_scheme_host_port(self, target: str, scheme: str,
                                                      host: str, port: int,
                                                      authority: str) -> None:
        """Every documented target form parses to scheme, host, port and authority."""
        t = parse_target(target)
        assert (t.scheme, t.host, t.port, t.authority) == (scheme, host, port, authority)

    @pytest.mark.parametrize("bad", ["http://x:1", "grpc://:80", "x:99999", "x:port"])
    def test_parse_target_bad_input_raises_value_error(self, bad: str) -> None:
        """Unknown schemes, empty hosts and bad ports raise ValueError naming the target."""
        with pytest.raises(ValueError, match="target"):
            parse_target(bad)

    def test_endpoint_target_skips_the_resolver(self) -> None:
        """Endpoint targets use the ipv4:/ipv6: schemes (ECOSYSTEM.md §2.1)."""
        assert endpoint_target("10.0.0.7", 80) == "ipv4:10.0.0.7:80"
        assert endpoint_target("fd00::7", 80) == "ipv6:[fd00::7]:80"

    def test_channel_options_cover_proxy_pool_authority_and_name(self) -> None:
        """Mesh hops disable proxies, use a local subchannel pool and set the authority and
        the TLS target name; passthrough channels get only the caller's options."""
        from meshclient_grpc._endpoints import ChannelKey

        key = ChannelKey("endpoint", "ipv4:10.0.0.7:80", "10.0.0.7", 80, "pay.internal",
                         None, "pay.shop:80")
        opts = dict(channel_options(key, (("grpc.max_receive_message_length", 1),)))
        assert opts["grpc.enable_http_proxy"] == 0
        assert opts["grpc.use_local_subchannel_pool"] == 1
        assert opts["grpc.default_authority"] == "pay.shop:80"
        assert opts["grpc.ssl_target_name_override"] == "pay.internal"
        assert opts["grpc.max_receive_message_length"] == 1
        plain = key._replace(kind="passthrough")
        assert channel_options(plain, ()) == []


class TestStatuses:
    def test_retryable_statuses_map_one_to_one(self) -> None:
        """The five statuses a retry policy may name map to distinct HTTP statuses that no
        other gRPC status shares (so a code set means exactly those statuses)."""
        mine = {HTTP_OF[c] for c in GRPC_NAMES.values()}
        assert len(mine) == 5
        others = [HTTP_OF[c] for c in grpc.StatusCode if c not in GRPC_NAMES.values()]
        assert not mine & set(others)

    @pytest.mark.parametrize(("status", "code"), [
        (404, grpc.StatusCode.UNIMPLEMENTED), (500, grpc.StatusCode.UNAVAILABLE),
        (503, grpc.StatusCode.UNAVAILABLE), (418, grpc.StatusCode.UNKNOWN),
    ])
    def test_answer_code_follows_grpcroute_failures(self, status: int,
                                                    code: grpc.StatusCode) -> None:
        """Unmatched → UNIMPLEMENTED, invalid backend → UNAVAILABLE, others UNKNOWN (GR)."""
        assert answer_code(status) is code


class TestAnnotations:
    def decision(self, *objects: object) -> Decision:
        m = mesh_of(*objects)  # type: ignore[arg-type]
        return m.decide(RequestHead("POST", "grpc", "pay.shop", 9000, "/test.Echo/Unary"))

    def test_service_annotations_give_policy_and_timeouts(self) -> None:
        """Service annotations give codes, limit, per-try and request timeouts, and name the
        Service as the source (SPEC-NOTES §6 reading)."""
        anns = {"retry.linkerd.io/grpc": "unavailable, internal",
                "retry.linkerd.io/limit": "3", "retry.linkerd.io/timeout": "1.5s",
                "timeout.linkerd.io/request": "1m30s"}
        d = self.decision(service("pay", [], annotations=anns))
        s = settings_from_annotations(d, None, anns)
        assert s.policy is not None
        assert (s.policy.attempts, s.policy.codes) == (3, frozenset({503, 500}))
        assert s.policy.source == "Service shop/pay annotations"
        assert s.timeouts is not None
        assert (s.timeouts.request, s.timeouts.backend_request) == (90.0, 1.5)
        assert s.idempotent is True

    def test_route_retry_annotations_replace_the_services(self) -> None:
        """Any retry annotation on the route replaces every retry annotation of the Service,
        while the Service's timeout annotations still apply."""
        d = self.decision(service("pay", []), service("pay-v1", []),
                          grpc_route(rule(("pay-v1", 9000))))
        svc = {"retry.linkerd.io/grpc": "internal", "retry.linkerd.io/limit": "5",
               "timeout.linkerd.io/request": "2s"}
        route = {"retry.linkerd.io/grpc": "cancelled"}
        s = settings_from_annotations(d, route, svc)
        assert s.policy is not None
        assert (s.policy.attempts, s.policy.codes) == (1, frozenset({499}))
        assert s.policy.source == "GRPCRoute shop/pay annotations"
        assert s.timeouts is not None and s.timeouts.request == 2.0

    def test_bad_annotation_values_are_named_and_ignored(self) -> None:
        """Unknown status names and bad numbers are reported and skipped."""
        anns = {"retry.linkerd.io/grpc": "unavailable,teapot", "retry.linkerd.io/limit": "x",
                "timeout.linkerd.io/request": "soon"}
        d = self.decision(service("pay", []))
        s = settings_from_annotations(d, None, anns)
        assert s.policy is not None and s.policy.codes == frozenset({503})
        assert len(s.problems) == 3
        assert any("teapot" in p for p in s.problems)

    def test_no_annotations_give_no_policy(self) -> None:
        """Without annotations there is no policy (only the connect-failure default)."""
        d = self.decision(service("pay", []))
        s = settings_from_annotations(d, None, None)
        assert (s.policy, s.timeouts, s.idempotent) == (None, None, None)

    @pytest.mark.parametrize(("text", "seconds"), [
        ("300ms", 0.3), ("1.5s", 1.5), ("1m30s", 90.0), ("2h", 7200.0), ("10", None),
        ("", None), ("-1s", None),
    ])
    def test_linkerd_durations_parse_go_style(self, text: str, seconds: float | None) -> None:
        """Durations are Go-style with units; anything else is None."""
        assert parse_linkerd_duration(text) == seconds


class TestTLSNames:
    def test_hostname_without_sans_is_the_name(self) -> None:
        """Without subjectAltNames the hostname is SNI and verified name (BTP)."""
        assert tls_name(BackendTLS(hostname="a.example"), spiffe_via_dns_san=False) == (
            "a.example")

    def test_covering_dns_san_keeps_the_hostname(self) -> None:
        """A DNS SAN (exact or wildcard) that covers the hostname keeps it as the name."""
        tls = BackendTLS(hostname="a.example", subject_alt_names=(("Hostname", "*.example"),))
        assert tls_name(tls, spiffe_via_dns_san=False) == "a.example"

    def test_other_dns_san_becomes_the_name(self) -> None:
        """A DNS SAN that does not cover the hostname is verified in its place."""
        tls = BackendTLS(hostname="a.example", subject_alt_names=(("Hostname", "b.other"),))
        assert tls_name(tls, spiffe_via_dns_san=False) == "b.other"

    def test_uri_only_sans_are_a_problem_unless_opted_in(self) -> None:
        """URI-only SANs cannot be verified by grpcio: a problem naming the opt-in, or the
        hostname when the operator opts into ``spiffe_via_dns_san``."""
        tls = BackendTLS(hostname="a.example", policy="shop/tls",
                         subject_alt_names=(("URI", "spiffe://c/ns/shop/sa/pay"),))
        got = tls_name(tls, spiffe_via_dns_san=False)
        assert isinstance(got, TLSProblem)
        assert "spiffe_via_dns_san" in got and "shop/tls" in got
        assert tls_name(tls, spiffe_via_dns_san=True) == "a.example"

    def test_uncovering_wildcards_only_are_a_problem(self) -> None:
        """Only wildcard DNS SANs that miss the hostname cannot be checked exactly."""
        tls = BackendTLS(hostname="a.example", subject_alt_names=(("Hostname", "*.other"),))
        assert isinstance(tls_name(tls, spiffe_via_dns_san=False), TLSProblem)
