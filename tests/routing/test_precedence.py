"""Precedence: one match wins per request, by the key of SPEC-NOTES §2.6."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshclient import Mesh
from tests.routing.helpers import backend, get, http_route, match, rule, service, ts, world


def winner(m: Mesh, url: str, headers: Mapping[str, str] | None = None,
           method: str = "GET") -> tuple[str, int | None] | None:
    d = get(m, url, headers, method)
    if d.route is None:
        return None
    return (d.route.name, d.route.rule)


def to(name: str) -> list[dict[str, Any]]:
    return [backend(name)]


class TestHostname:
    def test_exact_hostname_route_beats_wildcard_route(self) -> None:
        """The longest non-wildcard hostname wins before paths are compared (SPEC-NOTES §2.6
        step 1, checklist 36)."""
        m = world(
            http_route("exact", hostnames=["a.example.com"], rules=[rule(match("/"))]),
            http_route("wild", hostnames=["*.example.com"], rules=[rule(match("/long/path"))]),
        )
        assert winner(m, "http://a.example.com/long/path") == ("exact", 0)
        assert winner(m, "http://b.example.com/long/path") == ("wild", 0)

    def test_longer_wildcard_beats_shorter_wildcard(self) -> None:
        """Among wildcards the longer hostname wins (SPEC-NOTES §2.6 step 1, checklist 36)."""
        m = world(
            http_route("short", hostnames=["*.example.com"]),
            http_route("long", hostnames=["*.b.example.com"]),
        )
        assert winner(m, "http://a.b.example.com/") == ("long", 0)
        assert winner(m, "http://a.c.example.com/") == ("short", 0)

    def test_specific_host_falls_to_wildcard_when_nothing_matches(self) -> None:
        """Hostname precedence is an ordering: a request the exact route does not match may
        be served by a wildcard route (SPEC-NOTES §11.13 reading, checklist 36)."""
        m = world(
            http_route("exact", hostnames=["a.example.com"], rules=[rule(match("/only"))]),
            http_route("wild", hostnames=["*.example.com"], rules=[rule(match("/"))]),
        )
        assert winner(m, "http://a.example.com/only") == ("exact", 0)
        assert winner(m, "http://a.example.com/other") == ("wild", 0)

    def test_intersected_hostname_is_the_routes_hostname(self) -> None:
        """A wildcard route on an exact listener ranks as that exact host, so the path
        decides (SPEC-NOTES §2.6 step 1 reading, checklist 36)."""
        from tests.routing.helpers import gateway, listener, mesh

        m = mesh(
            gateway(listeners=[listener(hostname="a.example.com")]), service(),
            http_route("exact", hostnames=["a.example.com"], rules=[rule(match("/"))]),
            http_route("wild", hostnames=["*.example.com"], rules=[rule(match("/long"))]),
            http_route("bare", hostnames=None, rules=[rule(match("/long/er"))]),
        )
        assert winner(m, "http://a.example.com/long") == ("wild", 0)
        assert winner(m, "http://a.example.com/long/er") == ("bare", 0)
        assert winner(m, "http://a.example.com/x") == ("exact", 0)


class TestPath:
    def test_exact_path_beats_any_prefix(self) -> None:
        """Exact before PathPrefix, whatever the other keys say (SPEC-NOTES §2.6 step 2,
        checklist 37)."""
        m = world(
            http_route("prefix", created=ts(1), rules=[
                rule(match("/foo", method="GET", headers={"a": "1"}, query={"q": "1"}))]),
            http_route("exact", created=ts(2), rules=[rule(match("/foo", "Exact"))]),
        )
        assert winner(m, "http://example.com/foo?q=1", {"a": "1"}) == ("exact", 0)
        assert winner(m, "http://example.com/foo/bar?q=1", {"a": "1"}) == ("prefix", 0)

    def test_longer_prefix_beats_shorter(self) -> None:
        """More prefix characters win, even against method and header matchers (SPEC-NOTES
        §2.6 step 2, checklist 38)."""
        m = world(http_route(rules=[
            rule(match("/a", method="GET", headers={"h": "1"})),
            rule(match("/a/b")),
            rule(match("/a/b/c")),
        ]))
        assert winner(m, "http://example.com/a/b/c/d", {"h": "1"}) == ("r", 2)
        assert winner(m, "http://example.com/a/b/x", {"h": "1"}) == ("r", 1)
        assert winner(m, "http://example.com/a/x", {"h": "1"}) == ("r", 0)

    def test_longer_prefix_across_routes(self) -> None:
        """Prefix length compares across routes on one hostname (checklist 38, 42)."""
        m = world(
            http_route("old", created=ts(1), rules=[rule(match("/"))]),
            http_route("new", created=ts(2), rules=[rule(match("/api"))]),
        )
        assert winner(m, "http://example.com/api/x") == ("new", 0)
        assert winner(m, "http://example.com/other") == ("old", 0)

    def test_equivalent_prefixes_tie_then_rule_order(self) -> None:
        """``/abc`` and ``/abc/`` are the same prefix; the tie goes to rule order
        (SPEC-NOTES §2.6 reading)."""
        m = world(http_route(rules=[rule(match("/abc/")), rule(match("/abc"))]))
        assert winner(m, "http://example.com/abc/x") == ("r", 0)

    def test_regex_after_exact_and_prefix(self) -> None:
        """RegularExpression ranks after every Exact and PathPrefix (SPEC-NOTES §2.6 reading)."""
        m = world(http_route(rules=[rule(match("/api/.*", "RegularExpression")),
                                    rule(match("/"))]))
        assert winner(m, "http://example.com/api/x") == ("r", 1)

    def test_regex_used_when_nothing_else_matches(self) -> None:
        """A regex still serves what no Exact/PathPrefix matches (SPEC-NOTES §2.6 reading)."""
        m = world(http_route(rules=[rule(match("/api/.*", "RegularExpression")),
                                    rule(match("/other"))]))
        assert winner(m, "http://example.com/api/x") == ("r", 0)


class TestMatchers:
    def test_method_beats_headers(self) -> None:
        """A method matcher wins over more header matchers (SPEC-NOTES §2.6 step 3,
        checklist 39)."""
        m = world(http_route(rules=[
            rule(match(headers={"a": "1", "b": "2"})),
            rule(match(method="GET")),
        ]))
        assert winner(m, "http://example.com/", {"a": "1", "b": "2"}) == ("r", 1)

    def test_more_headers_beat_fewer_and_queries(self) -> None:
        """More header matchers win, before query matchers count (SPEC-NOTES §2.6 step 4,
        checklist 39)."""
        m = world(http_route(rules=[
            rule(match(headers={"a": "1"}, query={"x": "1", "y": "2", "z": "3"})),
            rule(match(headers={"a": "1", "b": "2"})),
        ]))
        assert winner(m, "http://example.com/?x=1&y=2&z=3", {"a": "1", "b": "2"}) == ("r", 1)

    def test_more_queries_beat_fewer(self) -> None:
        """More query matchers win (SPEC-NOTES §2.6 step 5, checklist 39)."""
        m = world(http_route(rules=[rule(match("/")), rule(match(query={"q": "1"}))]))
        assert winner(m, "http://example.com/?q=1") == ("r", 1)
        assert winner(m, "http://example.com/?q=2") == ("r", 0)

    def test_per_match_ranking_header_match_beats_bare_root(self) -> None:
        """Precedence is per match: ``{headers: version=two}`` beats an earlier ``{path: /}``
        (SPEC-NOTES §2.6, checklist 41)."""
        m = world(http_route(rules=[rule(match("/")),
                                    rule(match(headers={"version": "two"}))]))
        assert winner(m, "http://example.com/", {"version": "two"}) == ("r", 1)
        assert winner(m, "http://example.com/") == ("r", 0)

    def test_per_match_tie_goes_to_earlier_rule(self) -> None:
        """Two one-header matches in rules 2 and 4 tie; rule 2 wins (SPEC-NOTES §2.6,
        checklist 41)."""
        m = world(http_route(rules=[
            rule(match("/x")), rule(match("/y")),
            rule(match(headers={"version": "two"})), rule(match("/z")),
            rule(match(headers={"color": "blue"})),
        ]))
        assert winner(m, "http://example.com/", {"version": "two", "color": "blue"}) == ("r", 2)

    def test_rule_with_several_matches_ranked_by_its_best_match(self) -> None:
        """Each match of a rule competes on its own (SPEC-NOTES §2.6, checklist 41)."""
        m = world(http_route(rules=[
            rule(match("/a")),
            rule(match("/zzz"), match("/a", "Exact")),
        ]))
        assert winner(m, "http://example.com/a") == ("r", 1)


class TestTieBreakers:
    def test_older_route_wins_tie(self) -> None:
        """Same key → older creationTimestamp (SPEC-NOTES §2.6 step 6, checklist 40)."""
        m = world(
            http_route("a-new", created=ts(5), rules=[rule(match("/"), backends=to("svc"))]),
            http_route("z-old", created=ts(1), rules=[rule(match("/"), backends=to("svc2"))]),
        )
        assert winner(m, "http://example.com/") == ("z-old", 0)

    def test_route_without_timestamp_counts_as_newest(self) -> None:
        """A route without creationTimestamp (a file) loses to a dated one (checklist 40)."""
        m = world(http_route("a-undated"), http_route("z-dated", created=ts(59)))
        assert winner(m, "http://example.com/") == ("z-dated", 0)

    def test_same_age_namespace_name_alphabetical(self) -> None:
        """Same age → alphabetical ``namespace/name`` (SPEC-NOTES §2.6 step 7, checklist 40)."""
        m = world(http_route("b", created=ts(1)), http_route("a", created=ts(1)))
        assert winner(m, "http://example.com/") == ("a", 0)

    def test_namespace_compares_before_name(self) -> None:
        """``alpha/z`` sorts before ``beta/a`` (checklist 40)."""
        from tests.routing.helpers import gateway, listener, mesh, parent

        m = mesh(gateway(listeners=[listener(from_="All")]),
                 service(namespace="alpha"), service(namespace="beta"),
                 http_route("a", "beta", parents=[parent("gw", "default")], created=ts(1)),
                 http_route("z", "alpha", parents=[parent("gw", "default")], created=ts(1)))
        d = get(m, "http://example.com/")
        assert d.route is not None
        assert (d.route.namespace, d.route.name) == ("alpha", "z")

    def test_same_route_earlier_rule_wins(self) -> None:
        """Within one route the earlier rule wins a full tie (SPEC-NOTES §2.6 step 8,
        checklist 40)."""
        m = world(http_route(rules=[rule(match("/p"), backends=to("svc")),
                                    rule(match("/p"), backends=to("svc2"))]))
        d = get(m, "http://example.com/p")
        assert d.route is not None and d.route.rule == 0
        assert [b.name for b in d.backends] == ["svc"]


class TestMerging:
    def test_routes_merged_per_hostname(self) -> None:
        """Routes on one listener and hostname merge; a route with two hostnames contributes
        to both (CT:httproute-matching-across-routes, checklist 42)."""
        m = world(
            http_route("both", hostnames=["example.com", "example.net"], created=ts(1),
                       rules=[rule(match("/"))]),
            http_route("net-only", hostnames=["example.net"], created=ts(2),
                       rules=[rule(match("/v2"))]),
        )
        assert winner(m, "http://example.com/v2") == ("both", 0)
        assert winner(m, "http://example.net/v2") == ("net-only", 0)
        assert winner(m, "http://example.net/v1") == ("both", 0)

    def test_invalid_rule_does_not_block_others(self) -> None:
        """Only accepted rules count; a dropped rule leaves the rest serving (SPEC-NOTES §2.6,
        §10.3)."""
        m = world(http_route(rules=[rule(match("/a", "Glob")), rule(match("/"))]))
        assert winner(m, "http://example.com/a") == ("r", 1)
