"""Listeners: choice by scheme/port/Host, specificity, isolation, conflicts (SPEC-NOTES §1.2)."""

from __future__ import annotations

from meshclient import Action, Mesh
from tests.routing.helpers import (
    backend,
    gateway,
    get,
    http_route,
    listener,
    listener_set,
    listener_status,
    match,
    mesh,
    parent,
    reason,
    rule,
    service,
    status,
    world,
)


def served_by(m: Mesh, url: str, host: str | None = None) -> str | None:
    d = get(m, url, {"Host": host} if host else None)
    return d.route.name if d.route is not None else None


class TestListenerChoice:
    def test_most_specific_listener_wins(self) -> None:
        """Exact > longer wildcard > shorter wildcard > no hostname (SPEC-NOTES §1.2,
        checklist 11)."""
        m = mesh(
            gateway(addresses=["10.1.2.3"], listeners=[
                listener("any"),
                listener("short", hostname="*.example.com"),
                listener("long", hostname="*.b.example.com"),
                listener("exact", hostname="a.b.example.com"),
            ]),
            service(),
            *(http_route(f"r-{n}", parents=[parent(section=n)], hostnames=None)
              for n in ("any", "short", "long", "exact")),
        )
        gw = "http://10.1.2.3/"
        assert served_by(m, gw, "a.b.example.com") == "r-exact"
        assert served_by(m, gw, "x.b.example.com") == "r-long"
        assert served_by(m, gw, "x.y.b.example.com") == "r-long"
        assert served_by(m, gw, "x.example.com") == "r-short"
        assert served_by(m, gw, "other.org") == "r-any"
        assert served_by(m, "http://a.b.example.com/") == "r-exact"
        assert served_by(m, "http://x.example.com/") == "r-short"

    def test_listener_isolation_unmatched_path_is_404_without_fall_through(self) -> None:
        """Once a listener is chosen only its routes serve; no match → 404 (SPEC-NOTES §1.2,
        checklist 12; CT:gateway-http-listener-isolation)."""
        names = {"empty": None, "wild": "*.example.com", "wild-foo": "*.foo.example.com",
                 "abc": "abc.foo.example.com"}
        m = mesh(
            gateway(addresses=["10.1.2.3"],
                    listeners=[listener(n, hostname=h) for n, h in names.items()]),
            service(),
            *(http_route(f"r-{n}", parents=[parent(section=n)], hostnames=None,
                         rules=[rule(match(f"/{n}"))]) for n in names),
        )
        for host, own in [("abc.foo.example.com", "abc"), ("bar.foo.example.com", "wild-foo"),
                          ("bar.example.com", "wild"), ("bar.com", "empty")]:
            d = get(m, f"http://10.1.2.3/{own}", {"Host": host})
            assert d.route is not None and d.route.name == f"r-{own}", host
            for other in names:
                if other == own:
                    continue
                d = get(m, f"http://10.1.2.3/{other}", {"Host": host})
                assert (d.action, d.status, d.route) == (Action.REJECT, 404, None), (host, other)

    def test_isolation_applies_to_hosts_named_in_url(self) -> None:
        """Isolation holds for requests addressed by hostname too (checklist 12)."""
        m = mesh(
            gateway(listeners=[listener("wild", hostname="*.example.com"),
                               listener("abc", hostname="abc.example.com")]),
            service(),
            http_route("wild", parents=[parent(section="wild")], hostnames=None,
                       rules=[rule(match("/wild"))]),
            http_route("abc", parents=[parent(section="abc")], hostnames=None,
                       rules=[rule(match("/abc"))]),
        )
        d = get(m, "http://abc.example.com/wild")
        assert (d.action, d.status) == (Action.REJECT, 404)
        assert served_by(m, "http://x.example.com/wild") == "wild"

    def test_scheme_selects_http_or_https_listener(self) -> None:
        """http ↔ HTTP listener, https ↔ HTTPS, port from the URL (SPEC-NOTES §1.2 reading)."""
        m = mesh(
            gateway(listeners=[listener("http", 80, "HTTP"),
                               listener("https", 443, "HTTPS"),
                               listener("alt", 8080, "HTTP")]),
            service(),
            http_route("plain", parents=[parent(section="http")]),
            http_route("tls", parents=[parent(section="https")]),
            http_route("alt", parents=[parent(section="alt")]),
        )
        assert served_by(m, "http://example.com/") == "plain"
        assert served_by(m, "https://example.com/") == "tls"
        assert served_by(m, "http://example.com:8080/") == "alt"
        assert get(m, "http://example.com:9999/").action is Action.PASSTHROUGH
        assert get(m, "https://example.com:80/").action is Action.PASSTHROUGH

    def test_decision_parent_names_the_chosen_listener(self) -> None:
        """The decision's parent is the Gateway and listener section (DESIGN.md resolve)."""
        m = world(http_route())
        d = get(m, "http://example.com/")
        assert d.parent is not None
        assert (d.parent.kind, d.parent.namespace, d.parent.name, d.parent.section) == (
            "Gateway", "default", "gw", "http")

    def test_gateway_address_requests_are_handled(self) -> None:
        """A Gateway's own address is a host meshclient handles (DESIGN.md)."""
        m = mesh(gateway(addresses=["10.1.2.3"]), service(), http_route(hostnames=None))
        assert get(m, "http://10.1.2.3/x").action is Action.FORWARD

    def test_unknown_host_passes_through(self) -> None:
        """Hosts that name nothing in the config pass through untouched (DESIGN.md)."""
        m = world(http_route())
        d = get(m, "http://elsewhere.org/")
        assert d.action is Action.PASSTHROUGH
        assert d.to_json()["action"] == "passthrough"


class TestGatewaySelection:
    def objects(self) -> list[dict[str, object]]:
        return [
            gateway("a", class_name="internal"), gateway("b", class_name="public"),
            service(),
            http_route("ra", parents=[parent("a")], hostnames=["a.example.com"]),
            http_route("rb", parents=[parent("b")], hostnames=["b.example.com"]),
        ]

    def test_no_selection_acts_for_every_gateway(self) -> None:
        """With neither gateways nor classes, the client acts for all (DESIGN.md)."""
        m = mesh(*self.objects())
        assert served_by(m, "http://a.example.com/") == "ra"
        assert served_by(m, "http://b.example.com/") == "rb"

    def test_selection_by_name_ignores_other_gateways(self) -> None:
        """``gateways=['ns/name']`` acts only for that Gateway (issue: Gateway selection)."""
        m = mesh(*self.objects(), gateways=["default/a"])
        assert served_by(m, "http://a.example.com/") == "ra"
        assert get(m, "http://b.example.com/").action is Action.PASSTHROUGH

    def test_selection_by_class_ignores_other_classes(self) -> None:
        """``gateway_classes=[...]`` acts for that class's Gateways (issue: Gateway selection)."""
        m = mesh(*self.objects(), gateway_classes=["public"])
        assert get(m, "http://a.example.com/").action is Action.PASSTHROUGH
        assert served_by(m, "http://b.example.com/") == "rb"


class TestConflicts:
    def test_indistinct_listeners_in_one_gateway_all_conflicted(self) -> None:
        """Non-distinct listeners inside one Gateway are all Conflicted; none wins
        (SPEC-NOTES §1.2, checklist 13)."""
        m = mesh(
            gateway(listeners=[listener("one", hostname="a.example.com"),
                               listener("two", hostname="a.example.com"),
                               listener("other", hostname="b.example.com")]),
            service(), http_route(hostnames=["a.example.com", "b.example.com"]),
        )
        for name in ("one", "two"):
            st = listener_status(m, "gw", name)
            conflicted = st.condition("Conflicted")
            assert conflicted is not None
            assert (conflicted.status, conflicted.reason) == ("True", "HostnameConflict")
            accepted = st.condition("Accepted")
            assert accepted is not None and accepted.status == "False"
        other = listener_status(m, "gw", "other").condition("Accepted")
        assert other is not None and other.status == "True"
        assert get(m, "http://a.example.com/").route is None
        assert get(m, "http://b.example.com/").action is Action.FORWARD

    def test_gateway_listener_beats_listener_set_listener(self) -> None:
        """Gateway vs ListenerSet clash: the Gateway's listener stays, the ListenerSet's gets
        Conflicted=True, Accepted=False; a set left empty is ListenersNotValid (checklist 13)."""
        m = mesh(
            gateway(allowed_listeners="Same",
                    listeners=[listener("gw-http", hostname="a.example.com")]),
            listener_set("ls", listeners=[listener("ls-http", hostname="a.example.com")]),
            service(),
            http_route("via-gw", parents=[parent()]),
        )
        st = listener_status(m, "ls", "ls-http", kind="ListenerSet")
        conflicted = st.condition("Conflicted")
        assert conflicted is not None
        assert (conflicted.status, conflicted.reason) == ("True", "HostnameConflict")
        assert st.condition("Accepted") is not None
        assert st.condition("Accepted").status == "False"  # type: ignore[union-attr]
        whole = status(m, "ListenerSet", "ls", parent=None).condition("Accepted")
        assert whole is not None
        assert (whole.status, whole.reason) == ("False", "ListenersNotValid")
        gw_listener = listener_status(m, "gw", "gw-http").condition("Accepted")
        assert gw_listener is not None and gw_listener.status == "True"

    def test_older_listener_set_keeps_clashing_listener(self) -> None:
        """Between ListenerSets the oldest keeps the listener (SPEC-NOTES §1.2, checklist 13)."""
        m = mesh(
            gateway(allowed_listeners="Same", listeners=[listener("base", hostname="x.org")]),
            listener_set("young", created="2026-01-01T00:05:00Z",
                         listeners=[listener("l", hostname="a.example.com")]),
            listener_set("old", created="2026-01-01T00:01:00Z",
                         listeners=[listener("l", hostname="a.example.com")]),
            service(),
            http_route("on-young", parents=[parent("young", kind="ListenerSet")],
                       hostnames=None, rules=[rule(backends=[backend()])]),
            http_route("on-old", parents=[parent("old", kind="ListenerSet")], hostnames=None),
        )
        young = listener_status(m, "young", "l", kind="ListenerSet").condition("Conflicted")
        assert young is not None and young.status == "True"
        old = listener_status(m, "old", "l", kind="ListenerSet").condition("Accepted")
        assert old is not None and old.status == "True"
        assert served_by(m, "http://a.example.com/") == "on-old"

    def test_listener_set_not_allowed_by_gateway(self) -> None:
        """allowedListeners defaults to None: ListenerSets are not admitted (SPEC-NOTES §0.1)."""
        m = mesh(gateway(), listener_set("ls", listeners=[listener("l", hostname="a.b")]))
        whole = status(m, "ListenerSet", "ls", parent=None).condition("Accepted")
        assert whole is not None
        assert (whole.status, whole.reason) == ("False", "NotAllowed")

    def test_listener_set_listener_serves_its_routes(self) -> None:
        """An admitted ListenerSet's listener is a route parent (SPEC-NOTES §0, LS)."""
        m = mesh(
            gateway(allowed_listeners="Same", listeners=[listener("base", hostname="x.org")]),
            listener_set("ls", listeners=[listener("l", hostname="a.example.com")]),
            service(),
            http_route(parents=[parent("ls", kind="ListenerSet")], hostnames=None),
        )
        assert reason(m, "r") == ("True", "Accepted")
        d = get(m, "http://a.example.com/")
        assert d.parent is not None
        assert (d.parent.kind, d.parent.name, d.parent.section) == ("ListenerSet", "ls", "l")


class TestRouteKinds:
    def test_unsupported_listed_kind_sets_invalid_route_kinds_and_keeps_supported(self) -> None:
        """A listed kind the listener cannot serve → ResolvedRefs=False InvalidRouteKinds;
        listed supported kinds still work (SPEC-NOTES §1.4, checklist 22)."""
        m = mesh(gateway(listeners=[listener(kinds=["HTTPRoute", "TCPRoute"])]), service(),
                 http_route())
        rk = listener_status(m, "gw", "http").condition("ResolvedRefs")
        assert rk is not None
        assert (rk.status, rk.reason) == ("False", "InvalidRouteKinds")
        assert reason(m, "r") == ("True", "Accepted")
        assert get(m, "http://example.com/").action is Action.FORWARD

    def test_only_unsupported_kinds_listed_admits_no_http_route(self) -> None:
        """A listener listing only other kinds admits no HTTPRoute (checklist 21, 22)."""
        m = mesh(gateway(listeners=[listener(kinds=["TLSRoute"])]), service(), http_route())
        rk = listener_status(m, "gw", "http").condition("ResolvedRefs")
        assert rk is not None and rk.reason == "InvalidRouteKinds"
        assert reason(m, "r") == ("False", "NotAllowedByListeners")

    def test_unknown_protocol_listener_not_accepted(self) -> None:
        """A protocol meshclient does not know → listener UnsupportedProtocol (§10.2)."""
        m = mesh(gateway(listeners=[listener(protocol="SCTP")]))
        acc = listener_status(m, "gw", "http").condition("Accepted")
        assert acc is not None
        assert (acc.status, acc.reason) == ("False", "UnsupportedProtocol")
