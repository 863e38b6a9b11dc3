"""What meshclient does not implement goes through the real gateway, never silently skipped
(DESIGN.md, SPEC-NOTES §3.1, §3.7, §3.8)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient import Action, Decision, Mesh, Via
from tests.routing.helpers import (
    backend,
    cors,
    extension_ref,
    gateway,
    get,
    http_route,
    match,
    mesh,
    reason,
    rule,
    service,
)

EXT_AUTH: dict[str, Any] = {
    "type": "ExternalAuth",
    "externalAuth": {"protocol": "HTTP", "backendRef": {"name": "auth", "port": 9000},
                     "http": {"path": "/check"}},
}


def with_filter(*filters: dict[str, Any], backend_filters: list[dict[str, Any]] | None = None,
                ) -> Mesh:
    r = rule(match("/x"), filters=list(filters),
             backends=[backend("svc", filters=backend_filters)] if backend_filters else None)
    return mesh(gateway(addresses=["10.1.2.3"]), service(), service("auth"),
                http_route(rules=[r, rule(match("/plain"))]))


def assert_via_gateway(d: Decision, word: str) -> None:
    assert d.action is Action.FORWARD
    assert d.via is Via.GATEWAY
    assert d.gateway_address == "10.1.2.3"
    assert any(word in r for r in d.reasons), d.reasons
    out = d.to_json()
    assert out["via"] == "gateway"
    assert out["gateway_address"] == "10.1.2.3"
    assert any(word in r for r in out["reasons"])


class TestUnsupportedFilters:
    def test_extension_ref_goes_via_gateway_with_reason(self) -> None:
        """An ExtensionRef is not implemented: the request goes via the gateway, with the
        reason, never with the filter dropped (SPEC-NOTES §3.8, checklist 49, 76)."""
        assert_via_gateway(get(with_filter(extension_ref()), "http://example.com/x"),
                           "ExtensionRef")

    def test_external_auth_goes_via_gateway_with_reason(self) -> None:
        """An ExternalAuth filter yields via gateway (SPEC-NOTES §3.7, checklist 49)."""
        assert_via_gateway(get(with_filter(EXT_AUTH), "http://example.com/x"), "ExternalAuth")

    def test_backend_level_extension_ref_goes_via_gateway(self) -> None:
        """A backendRef-level ExtensionRef is not skipped either (checklist 49, 76)."""
        assert_via_gateway(get(with_filter(backend_filters=[extension_ref()]),
                               "http://example.com/x"), "ExtensionRef")

    def test_backend_level_cors_goes_via_gateway(self) -> None:
        """A backend-level CORS filter meshclient does not implement goes via the gateway
        (checklist 49)."""
        assert_via_gateway(get(with_filter(backend_filters=[cors(allowOrigins=["*"])]),
                               "http://example.com/x"), "CORS")

    def test_unaffected_rules_stay_direct(self) -> None:
        """Only rules that use the unsupported filter go via the gateway (checklist 49)."""
        d = get(with_filter(extension_ref()), "http://example.com/plain")
        assert (d.action, d.via) == (Action.FORWARD, Via.DIRECT)

    def test_via_gateway_route_still_accepted(self) -> None:
        """A route with such a filter is valid; meshclient just does not do it itself
        (checklist 49)."""
        assert reason(with_filter(extension_ref()), "r") == ("True", "Accepted")

    @pytest.mark.parametrize("filters", [[extension_ref()], [EXT_AUTH]])
    def test_unsupported_filter_never_forwarded_direct(self, filters: list[dict[str, Any]],
                                                       ) -> None:
        """No request the filter would process is forwarded direct (checklist 49, 76)."""
        m = with_filter(*filters)
        for path in ("/x", "/x/y", "/x?q=1"):
            assert get(m, f"http://example.com{path}").via is Via.GATEWAY

    def test_gateway_without_address_leaves_address_to_url(self) -> None:
        """With no Gateway address known, the URL's host is used (DESIGN.md)."""
        m = mesh(gateway(), service(), http_route(rules=[rule(filters=[extension_ref()])]))
        d = get(m, "http://example.com/")
        assert d.via is Via.GATEWAY
        assert d.gateway_address is None
        assert "gateway_address" not in d.to_json()
