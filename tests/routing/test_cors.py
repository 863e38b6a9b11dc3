"""CORS: local preflight answers, origin matching, credentials and wildcards (SPEC-NOTES §3.6)."""

from __future__ import annotations

from typing import Any

from meshclient import Action, Decision, Mesh
from tests.routing.helpers import cors, get, http_route, reason, rule, world


def with_cors(**fields: Any) -> Mesh:
    return world(http_route(rules=[rule(filters=[cors(**fields)])]))


def preflight(m: Mesh, origin: str, method: str = "PUT", headers: str | None = None,
              **extra: str) -> Decision:
    h = {"Origin": origin, "Access-Control-Request-Method": method, **extra}
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return get(m, "http://example.com/p", h, method="OPTIONS")


def answer(d: Decision) -> dict[str, str]:
    return dict(d.response_headers.set)


ORIGINS = {"allowOrigins": ["https://app.example.com", "https://*.bar.com",
                            "http://plain.example.com:8080"]}


class TestPreflight:
    def test_preflight_answered_locally_never_forwarded(self) -> None:
        """A preflight on a CORS rule is answered by meshclient and not forwarded
        (SPEC-NOTES §3.6, checklist 67)."""
        m = with_cors(**ORIGINS, allowMethods=["GET", "PUT"])
        d = preflight(m, "https://app.example.com")
        assert d.action is Action.RESPOND
        assert d.status in (200, 204)
        assert d.backends == ()
        out = d.to_json()
        assert out["action"] == "respond"
        assert "backends" not in out
        assert ["access-control-allow-origin", "https://app.example.com"] in (
            out["response_headers"]["set"])

    def test_options_without_request_method_is_not_a_preflight(self) -> None:
        """OPTIONS without Access-Control-Request-Method is forwarded (SPEC-NOTES §3.6,
        checklist 67)."""
        m = with_cors(**ORIGINS)
        d = get(m, "http://example.com/p", {"Origin": "https://app.example.com"},
                method="OPTIONS")
        assert d.action is Action.FORWARD

    def test_matching_origin_echoed(self) -> None:
        """An allowed origin is echoed in Access-Control-Allow-Origin (SPEC-NOTES §3.6,
        checklist 68)."""
        m = with_cors(**ORIGINS, allowMethods=["PUT"])
        assert answer(preflight(m, "https://app.example.com"))[
            "access-control-allow-origin"] == "https://app.example.com"

    def test_wildcard_host_spans_labels(self) -> None:
        """``https://*.bar.com`` matches any number of labels, not ``bar.com`` itself
        (SPEC-NOTES §3.6, checklist 68)."""
        m = with_cors(**ORIGINS)
        for origin in ("https://xpto.bar.com", "https://xpto.www.bar.com"):
            assert answer(preflight(m, origin))["access-control-allow-origin"] == origin
        assert answer(preflight(m, "https://bar.com")) == {}
        assert answer(preflight(m, "http://xpto.bar.com")) == {}

    def test_default_port_counts_when_comparing(self) -> None:
        """Default ports 80/443 count for comparison; other ports must match (checklist 68)."""
        m = with_cors(**ORIGINS)
        assert "access-control-allow-origin" in answer(preflight(m, "https://app.example.com:443"))
        assert answer(preflight(m, "https://app.example.com:8443")) == {}
        assert "access-control-allow-origin" in answer(
            preflight(m, "http://plain.example.com:8080"))
        assert answer(preflight(m, "http://plain.example.com")) == {}

    def test_non_matching_origin_gets_no_cors_headers(self) -> None:
        """A disallowed origin gets 200/204 without CORS headers, or 403 (SPEC-NOTES §3.6,
        checklist 69)."""
        m = with_cors(**ORIGINS, allowMethods=["PUT"])
        d = preflight(m, "https://evil.example.org")
        assert d.action is Action.RESPOND
        assert d.status in (200, 204, 403)
        assert not any(n.startswith("access-control-") for n, _ in d.response_headers.set)

    def test_configured_methods_and_headers_returned(self) -> None:
        """allowMethods/allowHeaders/exposeHeaders are returned comma-joined (checklist 68)."""
        m = with_cors(**ORIGINS, allowMethods=["GET", "PUT"], allowHeaders=["x-a", "x-b"],
                      exposeHeaders=["x-c"])
        h = answer(preflight(m, "https://app.example.com", headers="x-a"))
        assert h["access-control-allow-methods"].replace(" ", "") == "GET,PUT"
        assert h["access-control-allow-headers"].replace(" ", "") == "x-a,x-b"
        assert h["access-control-expose-headers"] == "x-c"

    def test_allow_credentials_true_header(self) -> None:
        """allowCredentials true → ``Access-Control-Allow-Credentials: true`` (SPEC-NOTES §3.6,
        checklist 71)."""
        m = with_cors(**ORIGINS, allowCredentials=True)
        assert answer(preflight(m, "https://app.example.com"))[
            "access-control-allow-credentials"] == "true"

    def test_allow_credentials_absent_header_omitted(self) -> None:
        """allowCredentials false/absent → the header is omitted (checklist 71)."""
        m = with_cors(**ORIGINS)
        assert "access-control-allow-credentials" not in answer(
            preflight(m, "https://app.example.com"))

    def test_max_age_default_5(self) -> None:
        """maxAge defaults to 5 → ``Access-Control-Max-Age: 5`` (SPEC-NOTES §3.6,
        checklist 71)."""
        assert answer(preflight(with_cors(**ORIGINS), "https://app.example.com"))[
            "access-control-max-age"] == "5"

    def test_max_age_configured(self) -> None:
        """A configured maxAge is returned (checklist 71)."""
        assert answer(preflight(with_cors(**ORIGINS, maxAge=600), "https://app.example.com"))[
            "access-control-max-age"] == "600"


class TestWildcardsAndCredentials:
    def test_wildcard_origin_without_credentials_may_be_star_or_echo(self) -> None:
        """Without credentials a ``*`` origin may answer ``*`` or the echo (SPEC-NOTES §3.6)."""
        m = with_cors(allowOrigins=["*"])
        got = answer(preflight(m, "https://any.org"))["access-control-allow-origin"]
        assert got in ("*", "https://any.org")

    def test_credentials_never_return_star_origin_echo_instead(self) -> None:
        """With allowCredentials a configured ``*`` is never returned; the Origin is echoed,
        preflights included (SPEC-NOTES §3.6, checklist 70)."""
        m = with_cors(allowOrigins=["*"], allowMethods=["*"], allowHeaders=["*"],
                      allowCredentials=True)
        h = answer(preflight(m, "https://any.org", method="PATCH", headers="x-one, x-two"))
        assert h["access-control-allow-origin"] == "https://any.org"
        assert h["access-control-allow-methods"] == "PATCH"
        assert h["access-control-allow-headers"] == "x-one, x-two"
        assert "*" not in h.values()

    def test_credentials_wildcard_headers_without_request_headers_omitted(self) -> None:
        """Echoing a ``*`` when the request lacks Access-Control-Request-Headers omits the
        allow-headers header (SPEC-NOTES §3.6, checklist 70)."""
        m = with_cors(allowOrigins=["*"], allowHeaders=["*"], allowCredentials=True)
        assert "access-control-allow-headers" not in answer(preflight(m, "https://any.org"))

    def test_credentialed_actual_request_without_allow_credentials_no_cors(self) -> None:
        """A credentialed request to a rule without allowCredentials gets no CORS headers
        (G1767, SPEC-NOTES §3.6, checklist 70)."""
        m = with_cors(allowOrigins=["*"])
        for cred in ({"Cookie": "a=1"}, {"Authorization": "Bearer x"}):
            d = get(m, "http://example.com/p", {"Origin": "https://any.org", **cred})
            assert d.action is Action.FORWARD
            assert not any(n.startswith("access-control-") for n, _ in d.response_headers.set)

    def test_credentialed_actual_request_with_allow_credentials_echoed(self) -> None:
        """With allowCredentials the credentialed request gets the echo and ``true``
        (checklist 70, 71)."""
        m = with_cors(allowOrigins=["*"], allowCredentials=True)
        d = get(m, "http://example.com/p", {"Origin": "https://any.org", "Cookie": "a=1"})
        h = answer(d)
        assert h["access-control-allow-origin"] == "https://any.org"
        assert h["access-control-allow-credentials"] == "true"

    def test_wildcard_mixed_with_values_rejected(self) -> None:
        """``*`` combined with other values is invalid (SPEC-NOTES §3.6, checklist 72)."""
        m = with_cors(allowOrigins=["*", "https://a.com"])
        assert reason(m, "r") == ("False", "UnsupportedValue")


class TestActualRequests:
    def test_actual_request_forwarded_with_cors_headers(self) -> None:
        """Non-preflight requests are forwarded; CORS headers go on the response
        (SPEC-NOTES §3.6)."""
        m = with_cors(**ORIGINS, exposeHeaders=["x-total"])
        d = get(m, "http://example.com/p", {"Origin": "https://app.example.com"})
        assert d.action is Action.FORWARD
        assert [b.name for b in d.backends] == ["svc"]
        h = answer(d)
        assert h["access-control-allow-origin"] == "https://app.example.com"
        assert h["access-control-expose-headers"] == "x-total"

    def test_actual_request_bad_origin_forwarded_without_headers(self) -> None:
        """A disallowed origin's request is forwarded with no CORS headers (SPEC-NOTES §3.6)."""
        m = with_cors(**ORIGINS)
        d = get(m, "http://example.com/p", {"Origin": "https://evil.org"})
        assert d.action is Action.FORWARD
        assert answer(d) == {}

    def test_request_without_origin_untouched(self) -> None:
        """A same-origin request (no Origin) gets no CORS headers (SPEC-NOTES §3.6)."""
        d = get(with_cors(**ORIGINS), "http://example.com/p")
        assert d.action is Action.FORWARD
        assert answer(d) == {}

    def test_preflight_on_rule_without_cors_forwarded(self) -> None:
        """Only rules with a CORS filter answer preflights (SPEC-NOTES §3.6, checklist 67)."""
        m = world(http_route())
        d = preflight(m, "https://app.example.com")
        assert d.action is Action.FORWARD
