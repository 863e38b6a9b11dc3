"""Matching: paths, headers, query parameters, methods, and how they combine (§2.1–2.5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from meshclient import Action, Mesh
from tests.routing.helpers import get, http_route, match, reason, rule, world


def one_rule(*matches: dict[str, Any]) -> Mesh:
    return world(http_route(rules=[rule(*matches)]))


def hits(m: Mesh, path: str, headers: Mapping[str, str | Sequence[str]] | None = None,
         method: str = "GET") -> bool:
    d = get(m, f"http://example.com{path}", headers, method)
    assert d.action in (Action.FORWARD, Action.REJECT)
    return d.action is Action.FORWARD


class TestPath:
    @pytest.mark.parametrize(("path", "expected"), [
        ("/abc", True), ("/abc/", False), ("/Abc", False), ("/abcd", False), ("/ab", False),
        ("/abc?x=1", True), ("/abc/d", False),
    ])
    def test_exact_is_exact_and_case_sensitive(self, path: str, expected: bool) -> None:
        """Exact is byte-for-byte and case-sensitive; the query is not part of the path
        (SPEC-NOTES §2.1, checklist 24)."""
        assert hits(one_rule(match("/abc", "Exact")), path) is expected

    @pytest.mark.parametrize("prefix", ["/abc", "/abc/"])
    @pytest.mark.parametrize(("path", "expected"), [
        ("/abc", True), ("/abc/", True), ("/abc/def", True), ("/abc/def/", True),
        ("/abc?q=1", True), ("/abcd", False), ("/ab", False), ("/Abc", False), ("/", False),
        ("/x/abc", False),
    ])
    def test_prefix_is_segment_wise_and_ignores_trailing_slash(
        self, prefix: str, path: str, expected: bool
    ) -> None:
        """PathPrefix matches whole segments, case-sensitively, trailing ``/`` in the value
        ignored (SPEC-NOTES §2.1, checklist 25)."""
        assert hits(one_rule(match(prefix)), path) is expected

    def test_prefix_v2_does_not_match_v2example(self) -> None:
        """``/v2example`` does not match prefix ``/v2`` (CT:httproute-matching, checklist 25)."""
        m = one_rule(match("/v2"))
        assert not hits(m, "/v2example")
        assert hits(m, "/v2/example")

    @pytest.mark.parametrize("path", ["/", "/a", "/a/b/c", "/?x=1"])
    def test_root_prefix_matches_everything(self, path: str) -> None:
        """Prefix ``/`` matches every path (SPEC-NOTES §2.1, checklist 25)."""
        assert hits(one_rule(match("/")), path)

    def test_multi_segment_prefix(self) -> None:
        """A multi-segment prefix needs each segment whole (checklist 25)."""
        m = one_rule(match("/a/b"))
        assert hits(m, "/a/b")
        assert hits(m, "/a/b/c")
        assert not hits(m, "/a/bc")
        assert not hits(m, "/a")

    @pytest.mark.parametrize(("path", "expected"), [
        ("/v1", True), ("/v22", True), ("/v1/x", False), ("/V1", False), ("/xv1", False),
        ("/v", False), ("/v1?q=1", True),
    ])
    def test_regex_is_full_match_and_case_sensitive(self, path: str, expected: bool) -> None:
        """RegularExpression must match the whole path, case-sensitively (SPEC-NOTES §2.1
        reading, checklist 27)."""
        assert hits(one_rule(match(r"/v[0-9]+", "RegularExpression")), path) is expected

    def test_invalid_regex_rule_rejected_with_reason(self) -> None:
        """A pattern RE2 cannot compile drops the rule with UnsupportedValue (issue: Routing,
        checklist 27)."""
        m = world(http_route(rules=[rule(match(r"/(?=x)", "RegularExpression"))]))
        assert reason(m, "r") == ("False", "UnsupportedValue")
        assert get(m, "http://example.com/x").route is None

    def test_unknown_path_type_route_not_accepted(self) -> None:
        """Unknown path type → Accepted=False UnsupportedValue (SPEC-NOTES §2.1, checklist 28)."""
        m = world(http_route(rules=[rule(match("/a", "Glob"))]))
        assert reason(m, "r") == ("False", "UnsupportedValue")


class TestHeaders:
    def test_header_name_case_insensitive(self) -> None:
        """Header names compare case-insensitively on both sides (SPEC-NOTES §2.2,
        checklist 29)."""
        m = one_rule(match(headers={"X-Version": "two"}))
        assert hits(m, "/", {"x-version": "two"})
        assert hits(m, "/", {"X-VERSION": "two"})

    def test_header_value_case_sensitive(self) -> None:
        """Exact header values are case-sensitive (SPEC-NOTES §2.2 reading)."""
        m = one_rule(match(headers={"x-version": "two"}))
        assert not hits(m, "/", {"x-version": "Two"})

    def test_duplicate_header_matcher_first_wins(self) -> None:
        """A name listed twice (case-insensitively) counts only the first time (SPEC-NOTES §2.2,
        checklist 29)."""
        m = one_rule(match(headers=[{"name": "X-A", "value": "1"},
                                    {"name": "x-a", "value": "2"}]))
        assert hits(m, "/", {"x-a": "1"})
        assert not hits(m, "/", {"x-a": "2"})

    def test_header_matchers_are_anded(self) -> None:
        """All header matchers of one match must hold (SPEC-NOTES §2.2, checklist 30)."""
        m = one_rule(match(headers={"a": "1", "b": "2"}))
        assert hits(m, "/", {"a": "1", "b": "2"})
        assert not hits(m, "/", {"a": "1", "b": "3"})
        assert not hits(m, "/", {"a": "1"})

    def test_missing_header_fails_match(self) -> None:
        """A missing header fails the match (SPEC-NOTES §2.2, checklist 30)."""
        assert not hits(one_rule(match(headers={"a": "1"})), "/")

    def test_repeated_request_header_combined_with_comma(self) -> None:
        """Repeated request headers are joined with ``,`` before matching (RFC 7230 §3.2.2,
        SPEC-NOTES §2.2, checklist 31)."""
        m = one_rule(match(headers={"x-a": "1,2"}))
        assert hits(m, "/", {"x-a": ["1", "2"]})
        assert not hits(m, "/", {"x-a": ["1"]})
        assert hits(m, "/", [("X-A", "1"), ("x-a", "2")])  # type: ignore[arg-type]

    def test_regex_header_value_full_match(self) -> None:
        """RegularExpression header values use full-match (SPEC-NOTES §2.2 reading)."""
        m = one_rule(match(headers=[{"type": "RegularExpression", "name": "x-v",
                                     "value": "v[0-9]"}]))
        assert hits(m, "/", {"x-v": "v1"})
        assert not hits(m, "/", {"x-v": "v12"})


class TestQuery:
    def test_query_name_case_sensitive(self) -> None:
        """Query names are case-sensitive: ``ANIMAL`` ≠ ``animal`` (SPEC-NOTES §2.3,
        checklist 32)."""
        m = one_rule(match(query={"animal": "whale"}))
        assert hits(m, "/?animal=whale")
        assert not hits(m, "/?ANIMAL=whale")

    def test_query_value_case_sensitive(self) -> None:
        """Query values compare exactly (SPEC-NOTES §2.3, checklist 32)."""
        m = one_rule(match(query={"animal": "whale"}))
        assert not hits(m, "/?animal=Whale")

    def test_duplicate_query_matcher_first_wins(self) -> None:
        """A query name listed twice counts only the first time (checklist 32)."""
        m = one_rule(match(query=[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]))
        assert hits(m, "/?a=1")
        assert not hits(m, "/?a=2")

    def test_repeated_query_param_uses_first_value(self) -> None:
        """A repeated request parameter matches on its first value (SPEC-NOTES §2.3,
        checklist 33)."""
        m = one_rule(match(query={"a": "1"}))
        assert hits(m, "/?a=1&a=2")
        assert not hits(m, "/?a=2&a=1")

    def test_query_matchers_anded_and_missing_fails(self) -> None:
        """Query matchers are ANDed; a missing parameter fails (SPEC-NOTES §2.5)."""
        m = one_rule(match(query={"a": "1", "b": "2"}))
        assert hits(m, "/?b=2&a=1")
        assert not hits(m, "/?a=1")


class TestMethod:
    def test_get_does_not_match_head(self) -> None:
        """A GET matcher does not match HEAD (CT:httproute-method-matching, checklist 34)."""
        m = world(http_route(rules=[rule(match(method="GET")), rule(match(method="POST"))]))
        assert hits(m, "/", method="GET")
        assert hits(m, "/", method="POST")
        assert not hits(m, "/", method="HEAD")

    def test_method_compare_is_exact_upper_case(self) -> None:
        """Methods are upper-case; the request method is compared exactly (checklist 34)."""
        m = one_rule(match(method="PUT"))
        assert hits(m, "/", method="PUT")
        assert not hits(m, "/", method="PATCH")

    def test_unknown_method_route_not_accepted(self) -> None:
        """Unknown method → Accepted=False UnsupportedValue (SPEC-NOTES §2.4, checklist 34)."""
        m = world(http_route(rules=[rule(match(method="BREW"))]))
        assert reason(m, "r") == ("False", "UnsupportedValue")


class TestCombination:
    def test_conditions_anded_within_match(self) -> None:
        """Path, headers, query and method in one match are ANDed (SPEC-NOTES §2.5,
        checklist 35)."""
        m = one_rule(match("/a", headers={"h": "1"}, query={"q": "1"}, method="GET"))
        assert hits(m, "/a?q=1", {"h": "1"})
        assert not hits(m, "/b?q=1", {"h": "1"})
        assert not hits(m, "/a", {"h": "1"})
        assert not hits(m, "/a?q=1")
        assert not hits(m, "/a?q=1", {"h": "1"}, method="POST")

    def test_matches_ored_within_rule(self) -> None:
        """The matches of one rule are ORed (SPEC-NOTES §2.5, checklist 35)."""
        m = one_rule(match("/a"), match(headers={"h": "1"}))
        assert hits(m, "/a")
        assert hits(m, "/b", {"h": "1"})
        assert not hits(m, "/b")

    def test_no_match_is_404(self) -> None:
        """A handled host where no rule matches → 404 (SPEC-NOTES §2.6, checklist 43)."""
        m = one_rule(match("/a"))
        d = get(m, "http://example.com/b")
        assert (d.action, d.status, d.route) == (Action.REJECT, 404, None)
        assert d.to_json()["status"] == 404
