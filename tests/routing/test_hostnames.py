"""Hostnames: wildcards, the Host port, listener × route intersection (SPEC-NOTES §1.1, §1.5)."""

from __future__ import annotations

import pytest

from meshclient import Action, Mesh
from meshclient.routing._hostnames import host_matches, intersect
from tests.routing.helpers import (
    gateway,
    get,
    http_route,
    listener,
    mesh,
    reason,
    rule,
    service,
    world,
)


def on_listener(host: str | None, *routes: dict[str, object]) -> Mesh:
    return mesh(gateway(listeners=[listener(hostname=host)]), service(), *routes)


class TestWildcards:
    @pytest.mark.parametrize(("pattern", "host", "expected"), [
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "aexample.com", False),
        ("*.example.com", "a.example.net", False),
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "b.example.com", False),
        (None, "anything.at.all", True),
    ])
    def test_host_matches_wildcard_covers_one_or_more_labels(
        self, pattern: str | None, host: str, expected: bool
    ) -> None:
        """``*.example.com`` covers one or more labels, never the bare suffix (SPEC-NOTES §1.1,
        checklist 5)."""
        assert host_matches(pattern, host) is expected

    def test_wildcard_listener_request_with_two_labels_is_served(self) -> None:
        """A wildcard listener serves hosts several labels deep (checklist 5)."""
        m = on_listener("*.example.com", http_route(hostnames=None))
        assert get(m, "http://a.example.com/").action is Action.FORWARD
        assert get(m, "http://a.b.example.com/").action is Action.FORWARD

    def test_wildcard_listener_bare_suffix_is_not_served(self) -> None:
        """``example.com`` is not under ``*.example.com`` (checklist 5)."""
        m = on_listener("*.example.com", http_route(hostnames=None))
        d = get(m, "http://example.com/")
        assert d.route is None
        assert d.action is not Action.FORWARD

    def test_wildcard_route_bare_suffix_is_not_served(self) -> None:
        """A route ``*.example.com`` does not serve ``example.com`` (checklist 5)."""
        m = world(http_route(hostnames=["*.example.com"]))
        assert get(m, "http://x.y.example.com/").action is Action.FORWARD
        assert get(m, "http://example.com/").route is None


class TestHostHeader:
    def test_host_header_port_is_ignored(self) -> None:
        """The port in Host is ignored when matching (SPEC-NOTES §1.1, checklist 6)."""
        m = world(http_route(hostnames=["very.specific.com"]))
        d = get(m, "http://very.specific.com/", {"Host": "very.specific.com:1234"})
        assert d.action is Action.FORWARD
        assert d.route is not None and d.route.name == "r"

    def test_host_header_forwarded_unmodified(self) -> None:
        """The Host header is forwarded as sent unless a filter changes it (checklist 6)."""
        m = world(http_route(hostnames=["example.com"]))
        d = get(m, "http://example.com/", {"Host": "example.com:1234"})
        assert ("host", "example.com:1234") in d.request.headers

    def test_url_port_is_ignored_by_route_hostnames(self) -> None:
        """An explicit default port in the URL does not change hostname matching (checklist 6)."""
        m = world(http_route(hostnames=["example.com"]))
        assert get(m, "http://example.com:80/").action is Action.FORWARD

    def test_host_header_upper_case_matches(self) -> None:
        """Host comparison is case-insensitive (SPEC-NOTES §1.1 reading)."""
        m = world(http_route(hostnames=["example.com"]))
        assert get(m, "http://EXAMPLE.com/").action is Action.FORWARD
        assert get(m, "http://example.com/", {"Host": "Example.COM"}).action is Action.FORWARD

    def test_ip_host_matches_only_hostname_less_routes(self) -> None:
        """An IP literal Host only matches listeners/routes without hostnames (§1.1 reading)."""
        m = mesh(gateway(addresses=["10.1.2.3"]), service(),
                 http_route("named", hostnames=["example.com"]),
                 http_route("any", hostnames=None, rules=[rule()]))
        d = get(m, "http://10.1.2.3/")
        assert d.route is not None and d.route.name == "any"
        d = get(m, "http://10.1.2.3/", {"Host": "example.com"})
        assert d.route is not None and d.route.name == "named"


class TestIntersection:
    @pytest.mark.parametrize(("listener_host", "route_host", "expected"), [
        (None, "a.example.com", "a.example.com"),
        (None, None, None),
        ("a.example.com", None, "a.example.com"),
        ("a.example.com", "a.example.com", "a.example.com"),
        ("*.example.com", "a.b.example.com", "a.b.example.com"),
        ("a.example.com", "*.example.com", "a.example.com"),
        ("*.example.com", "*.example.com", "*.example.com"),
        ("*.com", "*.example.com", "*.example.com"),
        ("*.example.com", "*.com", "*.example.com"),
        ("*.example.com", "example.com", False),
        ("*.example.com", "x.example.net", False),
        ("a.example.com", "b.example.com", False),
        ("*.a.example.com", "*.b.example.com", False),
    ])
    def test_intersect_table(self, listener_host: str | None, route_host: str | None,
                             expected: str | bool | None) -> None:
        """The intersection table, narrower wildcard winning (SPEC-NOTES §1.5, checklist 7)."""
        assert intersect(listener_host, route_host) == expected

    def test_wide_listener_narrow_route_serves_only_narrow_hosts(self) -> None:
        """Listener ``*.com`` × route ``*.example.com`` → ``*.example.com`` only (checklist 7)."""
        m = on_listener("*.com", http_route(hostnames=["*.example.com"]))
        assert get(m, "http://a.example.com/").action is Action.FORWARD
        d = get(m, "http://a.other.com/")
        assert d.route is None

    def test_narrow_listener_wide_route_serves_listener_hosts(self) -> None:
        """Listener ``*.example.com`` × route ``*.com`` → ``*.example.com`` (checklist 7)."""
        m = on_listener("*.example.com", http_route(hostnames=["*.com"]))
        assert get(m, "http://a.example.com/").action is Action.FORWARD
        assert get(m, "http://a.other.com/").route is None

    def test_non_intersecting_route_hostname_ignored_on_that_listener(self) -> None:
        """Route hostnames that miss the listener are ignored for it (SPEC-NOTES §1.5,
        checklist 8)."""
        m = on_listener("*.example.com",
                        http_route(hostnames=["a.example.com", "x.example.net"]))
        assert reason(m, "r") == ("True", "Accepted")
        assert get(m, "http://a.example.com/").action is Action.FORWARD
        assert get(m, "http://x.example.net/").route is None

    def test_no_hostname_intersects_route_not_accepted(self) -> None:
        """Nothing intersects → Accepted=False NoMatchingListenerHostname (SPEC-NOTES §1.5,
        checklist 9)."""
        m = on_listener("*.example.com", http_route(hostnames=["example.com", "a.example.net"]))
        assert reason(m, "r") == ("False", "NoMatchingListenerHostname")
        assert get(m, "http://example.com/").route is None

    def test_route_wildcard_on_exact_listener_serves_only_listener_host(self) -> None:
        """Route ``*.specific.com`` on listener ``very.specific.com`` serves only that host
        (SPEC-NOTES §1.5, checklist 10)."""
        m = on_listener("very.specific.com", http_route(hostnames=["*.specific.com"]))
        assert reason(m, "r") == ("True", "Accepted")
        assert get(m, "http://very.specific.com/").action is Action.FORWARD
        assert get(m, "http://foo.specific.com/").route is None

    def test_route_wildcard_on_exact_listener_other_host_gets_404_at_gateway(self) -> None:
        """Another host sent to the Gateway's address gets 404, not the route (checklist 10)."""
        m = mesh(gateway(addresses=["10.1.2.3"],
                         listeners=[listener(hostname="very.specific.com")]),
                 service(), http_route(hostnames=["*.specific.com"]))
        d = get(m, "http://10.1.2.3/", {"Host": "foo.specific.com"})
        assert d.route is None
        assert d.action is Action.REJECT and d.status == 404
