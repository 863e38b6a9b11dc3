"""Route attachment: parentRefs, sectionName/port, allowedRoutes (SPEC-NOTES §1.3, §1.4, §1.6)."""

from __future__ import annotations

from typing import Any

from tests.routing.helpers import (
    gateway,
    get,
    grpc_route,
    http_route,
    listener,
    listener_set,
    mesh,
    namespace,
    parent,
    reason,
    route_condition,
    service,
    statuses,
    ts,
)


def served(m: Any, url: str) -> str | None:
    d = get(m, url)
    return d.route.name if d.route is not None else None


def two_port_gateway(**kw: Any) -> dict[str, Any]:
    return gateway(listeners=[
        listener("a", 80, hostname="a.example.com", **kw),
        listener("b", 80, hostname="b.example.com", **kw),
        listener("c", 8080, hostname="c.example.com", **kw),
    ])


class TestParentRefs:
    def test_parent_ref_defaults_to_gateway_in_route_namespace(self) -> None:
        """A bare ``{name}`` parentRef is the Gateway of that name in the route's namespace
        (SPEC-NOTES §0.1, checklist 1)."""
        m = mesh(gateway(), service(), service(namespace="team"),
                 http_route("home", hostnames=["home.example.com"]),
                 http_route("team", namespace="team", hostnames=["team.example.com"]))
        assert served(m, "http://home.example.com/") == "home"
        assert served(m, "http://team.example.com/") is None
        assert route_condition(m, "team", namespace="team").status == "False"

    def test_section_name_selects_listener_by_name(self) -> None:
        """sectionName attaches to the named listener only (SPEC-NOTES §1.3, checklist 14)."""
        m = mesh(two_port_gateway(), service(),
                 http_route(parents=[parent(section="b")], hostnames=None))
        assert served(m, "http://b.example.com/") == "r"
        assert served(m, "http://a.example.com/") is None
        assert served(m, "http://c.example.com:8080/") is None

    def test_port_selects_every_listener_on_that_port(self) -> None:
        """``port`` attaches to all listeners on the port (SPEC-NOTES §1.3, checklist 15)."""
        m = mesh(two_port_gateway(), service(),
                 http_route(parents=[parent(port=80)], hostnames=None))
        assert served(m, "http://a.example.com/") == "r"
        assert served(m, "http://b.example.com/") == "r"
        assert served(m, "http://c.example.com:8080/") is None

    def test_section_name_and_port_must_both_match(self) -> None:
        """With sectionName and port the listener must match both (checklist 15)."""
        m = mesh(two_port_gateway(), service(),
                 http_route("ok", parents=[parent(section="c", port=8080)], hostnames=None),
                 http_route("bad", parents=[parent(section="a", port=8080)], hostnames=None))
        assert served(m, "http://c.example.com:8080/") == "ok"
        assert reason(m, "ok") == ("True", "Accepted")
        assert reason(m, "bad") == ("False", "NoMatchingParent")

    def test_unknown_section_name_is_no_matching_parent(self) -> None:
        """sectionName naming no listener → NoMatchingParent (SPEC-NOTES §1.3, checklist 16)."""
        m = mesh(two_port_gateway(), service(),
                 http_route(parents=[parent(section="nope")], hostnames=None))
        assert reason(m, "r") == ("False", "NoMatchingParent")

    def test_port_without_listener_is_no_matching_parent(self) -> None:
        """port naming no listener → NoMatchingParent (SPEC-NOTES §1.3, checklist 16)."""
        m = mesh(two_port_gateway(), service(),
                 http_route(parents=[parent(port=9090)], hostnames=None))
        assert reason(m, "r") == ("False", "NoMatchingParent")
        assert served(m, "http://a.example.com/") is None

    def test_attached_when_one_selected_listener_accepts(self) -> None:
        """Attachment succeeds if at least one selected listener admits the route
        (SPEC-NOTES §1.3, checklist 17)."""
        m = mesh(
            gateway(listeners=[listener("same", hostname="a.example.com"),
                               listener("all", hostname="b.example.com", from_="All")]),
            service(namespace="team"),
            http_route(namespace="team", parents=[parent("gw", "default")], hostnames=None),
        )
        assert reason(m, "r", namespace="team") == ("True", "Accepted")
        assert served(m, "http://b.example.com/") == "r"
        assert served(m, "http://a.example.com/") is None

    def test_duplicate_parent_refs_without_section_name_rejected(self) -> None:
        """Two parentRefs to one Gateway without distinct sectionNames reject the route
        (SPEC-NOTES §1.3, checklist 18)."""
        m = mesh(two_port_gateway(), service(),
                 http_route(parents=[parent(), parent()], hostnames=None))
        entries = statuses(m, "HTTPRoute", "r")
        assert entries
        assert all(e.condition("Accepted").status == "False"  # type: ignore[union-attr]
                   for e in entries)
        assert served(m, "http://a.example.com/") is None

    def test_parent_refs_with_distinct_section_names_both_attach(self) -> None:
        """Distinct sectionNames make two refs to one Gateway valid (checklist 18)."""
        m = mesh(two_port_gateway(), service(),
                 http_route(parents=[parent(section="a"), parent(section="c")],
                            hostnames=None))
        assert served(m, "http://a.example.com/") == "r"
        assert served(m, "http://c.example.com:8080/") == "r"
        assert reason(m, "r", parent="Gateway default/gw section a") == ("True", "Accepted")
        assert reason(m, "r", parent="Gateway default/gw section c") == ("True", "Accepted")

    def test_missing_gateway_route_not_served(self) -> None:
        """A parentRef to a Gateway that does not exist attaches nothing (SPEC-NOTES §1.3)."""
        m = mesh(gateway(), service(), http_route(parents=[parent("ghost")]))
        assert served(m, "http://example.com/") is None


class TestAllowedRoutes:
    def test_default_same_rejects_other_namespace(self) -> None:
        """allowedRoutes defaults to Same: routes from other namespaces are not allowed
        (SPEC-NOTES §1.4, checklist 19)."""
        m = mesh(gateway(), service(namespace="team"),
                 http_route(namespace="team", parents=[parent("gw", "default")]))
        assert reason(m, "r", namespace="team") == ("False", "NotAllowedByListeners")
        assert served(m, "http://example.com/") is None

    def test_same_admits_gateway_namespace(self) -> None:
        """``from: Same`` admits routes in the Gateway's namespace (checklist 19)."""
        m = mesh(gateway(listeners=[listener(from_="Same")]), service(), http_route())
        assert reason(m, "r") == ("True", "Accepted")

    def test_all_admits_any_namespace(self) -> None:
        """``from: All`` admits every namespace (SPEC-NOTES §1.4, checklist 19)."""
        m = mesh(gateway(listeners=[listener(from_="All")]), service(namespace="team"),
                 http_route(namespace="team", parents=[parent("gw", "default")]))
        assert reason(m, "r", namespace="team") == ("True", "Accepted")
        assert served(m, "http://example.com/") == "r"

    def test_selector_admits_labelled_namespaces_only(self) -> None:
        """``from: Selector`` admits namespaces whose labels match (checklist 19)."""
        m = mesh(
            gateway(listeners=[listener(from_="Selector",
                                        selector={"matchLabels": {"shared": "yes"}})]),
            namespace("team", {"shared": "yes"}), namespace("other", {"shared": "no"}),
            service(namespace="team"), service(namespace="other"),
            http_route("in", namespace="team", parents=[parent("gw", "default")],
                       hostnames=["in.example.com"]),
            http_route("out", namespace="other", parents=[parent("gw", "default")],
                       hostnames=["out.example.com"]),
        )
        assert reason(m, "in", namespace="team") == ("True", "Accepted")
        assert reason(m, "out", namespace="other") == ("False", "NotAllowedByListeners")

    def test_selector_match_expressions_and_name_label(self) -> None:
        """Selectors use label-selector semantics, with ``kubernetes.io/metadata.name`` set
        on every namespace (checklist 19)."""
        sel = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                     "values": ["team"]}]}
        m = mesh(
            gateway(listeners=[listener(from_="Selector", selector=sel)]),
            service(namespace="team"), service(namespace="other"),
            http_route("in", namespace="team", parents=[parent("gw", "default")],
                       hostnames=["in.example.com"]),
            http_route("out", namespace="other", parents=[parent("gw", "default")],
                       hostnames=["out.example.com"]),
        )
        assert reason(m, "in", namespace="team") == ("True", "Accepted")
        assert reason(m, "out", namespace="other") == ("False", "NotAllowedByListeners")

    def test_empty_selector_admits_every_namespace(self) -> None:
        """``selector: {}`` selects all namespaces (SPEC-NOTES §1.4 reading, checklist 19)."""
        m = mesh(gateway(listeners=[listener(from_="Selector", selector={})]),
                 service(namespace="team"),
                 http_route(namespace="team", parents=[parent("gw", "default")]))
        assert reason(m, "r", namespace="team") == ("True", "Accepted")

    def test_selector_without_selector_does_not_admit_everything(self) -> None:
        """``from: Selector`` with no selector must not widen access (checklist 19)."""
        m = mesh(gateway(listeners=[listener(from_="Selector")]), service(namespace="team"),
                 http_route(namespace="team", parents=[parent("gw", "default")]))
        assert route_condition(m, "r", namespace="team").status == "False"
        assert served(m, "http://example.com/") is None

    def test_listener_set_same_means_listener_set_namespace(self) -> None:
        """For a ListenerSet listener ``Same`` is the ListenerSet's namespace (SPEC-NOTES §1.4,
        checklist 20)."""
        m = mesh(
            gateway(namespace="infra", allowed_listeners="All",
                    listeners=[listener("base", hostname="base.example.com")]),
            listener_set("ls", "team", gateway_name="gw", gateway_namespace="infra",
                         listeners=[listener("l", hostname="team.example.com")]),
            service(namespace="team"), service(namespace="infra"),
            http_route("team-r", namespace="team", parents=[parent("ls", kind="ListenerSet")],
                       hostnames=None),
            http_route("infra-r", namespace="infra",
                       parents=[parent("ls", "team", kind="ListenerSet")], hostnames=None),
        )
        assert reason(m, "team-r", namespace="team") == ("True", "Accepted")
        assert reason(m, "infra-r", namespace="infra") == ("False", "NotAllowedByListeners")
        assert served(m, "http://team.example.com/") == "team-r"

    def test_kind_not_allowed_is_not_allowed_by_listeners(self) -> None:
        """A listener whose kinds exclude HTTPRoute → NotAllowedByListeners (SPEC-NOTES §1.4,
        checklist 21)."""
        m = mesh(gateway(listeners=[listener(kinds=["GRPCRoute"])]), service(), http_route())
        assert reason(m, "r") == ("False", "NotAllowedByListeners")
        assert served(m, "http://example.com/") is None

    def test_kind_with_wrong_group_is_not_allowed(self) -> None:
        """RouteGroupKind compares the group too (SPEC-NOTES §1.4, checklist 21)."""
        m = mesh(gateway(listeners=[listener(kinds=[("example.com", "HTTPRoute")])]),
                 service(), http_route())
        assert reason(m, "r") == ("False", "NotAllowedByListeners")

    def test_reasons_checked_in_order_parent_listeners_hostname(self) -> None:
        """NoMatchingParent, then NotAllowedByListeners, then NoMatchingListenerHostname
        (SPEC-NOTES §1.5 reading)."""
        gw = gateway(listeners=[listener("a", hostname="a.example.com")])
        m = mesh(gw, service(namespace="team"),
                 http_route("p", namespace="team", hostnames=["z.example.com"],
                            parents=[parent("gw", "default", section="zz")]),
                 http_route("n", namespace="team", hostnames=["z.example.com"],
                            parents=[parent("gw", "default", section="a")]))
        assert reason(m, "p", namespace="team") == ("False", "NoMatchingParent")
        assert reason(m, "n", namespace="team") == ("False", "NotAllowedByListeners")


class TestHTTPAndGRPC:
    def test_older_grpc_route_wins_listener_and_host(self) -> None:
        """HTTPRoute and GRPCRoute with overlapping hosts on one listener: the older is
        accepted, the other not (SPEC-NOTES §1.6, checklist 23)."""
        m = mesh(gateway(), service(),
                 grpc_route("g", created=ts(1)), http_route("h", created=ts(2)))
        assert route_condition(m, "h").status == "False"
        d = get(m, "http://example.com/")
        assert d.route is None or d.route.kind != "HTTPRoute"

    def test_older_http_route_wins_and_grpc_route_not_accepted(self) -> None:
        """When the HTTPRoute is older it is served and the GRPCRoute is not accepted
        (SPEC-NOTES §1.6, checklist 23)."""
        m = mesh(gateway(), service(),
                 grpc_route("g", created=ts(2)), http_route("h", created=ts(1)))
        assert reason(m, "h") == ("True", "Accepted")
        assert served(m, "http://example.com/") == "h"
        g = [s for s in m.statuses() if s.kind == "GRPCRoute" and s.name == "g"]
        assert len(g) == 1
        accepted = g[0].condition("Accepted")
        assert accepted is not None and accepted.status == "False"

    def test_same_age_tie_broken_by_namespace_name(self) -> None:
        """Equal timestamps: alphabetical ``namespace/name`` wins (checklist 23)."""
        m = mesh(gateway(), service(),
                 grpc_route("b", created=ts(1)), http_route("a", created=ts(1)))
        assert reason(m, "a") == ("True", "Accepted")

    def test_disjoint_hostnames_both_accepted(self) -> None:
        """Non-overlapping hostnames do not conflict (SPEC-NOTES §1.6, checklist 23)."""
        m = mesh(gateway(), service(),
                 grpc_route("g", created=ts(1), hostnames=["grpc.example.com"]),
                 http_route("h", created=ts(2), hostnames=["web.example.com"]))
        assert reason(m, "h") == ("True", "Accepted")
        assert served(m, "http://web.example.com/") == "h"
