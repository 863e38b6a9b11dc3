"""Filters: validity rules, partial invalidity, header modifiers, backend-level filters
(SPEC-NOTES §3.1, §3.2)."""

from __future__ import annotations

from typing import Any

from meshclient import Action, Mesh
from tests.routing.helpers import (
    backend,
    get,
    header_filter,
    header_value,
    http_route,
    match,
    mirror,
    path_modifier,
    reason,
    redirect,
    rewrite,
    route_condition,
    rule,
    world,
)


def with_rules(*rules: dict[str, Any]) -> Mesh:
    return world(http_route(rules=list(rules)))


def valid_rule() -> dict[str, Any]:
    return rule(match("/ok"))


class TestValidity:
    def test_redirect_with_rewrite_rule_dropped(self) -> None:
        """RequestRedirect + URLRewrite in one list drops the rule (SPEC-NOTES §3.1,
        checklist 44)."""
        m = with_rules(valid_rule(), rule(match("/bad"), backends=[],
                                          filters=[redirect(), rewrite(hostname="x.org")]))
        assert reason(m, "r", "PartiallyInvalid")[0] == "True"
        assert get(m, "http://example.com/bad").action is Action.REJECT
        assert get(m, "http://example.com/ok").action is Action.FORWARD

    def test_redirect_with_rewrite_on_backend_ref_dropped(self) -> None:
        """The same holds for a backendRef's filter list (SPEC-NOTES §3.1, checklist 44)."""
        m = with_rules(rule(backends=[backend(filters=[redirect(), rewrite(
            hostname="x.org")])]))
        assert reason(m, "r") == ("False", "UnsupportedValue")

    def test_rule_redirect_with_backend_refs_dropped(self) -> None:
        """Rule-level RequestRedirect with backendRefs drops the rule (SPEC-NOTES §3.1,
        checklist 45)."""
        m = with_rules(rule(filters=[redirect(hostname="x.org")]))
        assert route_condition(m, "r").status == "False"
        assert get(m, "http://example.com/").route is None

    def test_replace_prefix_match_with_exact_match_dropped(self) -> None:
        """ReplacePrefixMatch needs one PathPrefix match (SPEC-NOTES §3.1, checklist 46)."""
        m = with_rules(valid_rule(), rule(match("/bad", "Exact"), filters=[rewrite(
            path=path_modifier("ReplacePrefixMatch", "/x"))]))
        assert reason(m, "r", "PartiallyInvalid")[0] == "True"
        assert get(m, "http://example.com/bad").route is None

    def test_replace_prefix_match_single_prefix_accepted(self) -> None:
        """One PathPrefix match satisfies ReplacePrefixMatch (checklist 46)."""
        m = with_rules(rule(match("/a"), filters=[rewrite(
            path=path_modifier("ReplacePrefixMatch", "/b"))]))
        assert reason(m, "r") == ("True", "Accepted")
        assert get(m, "http://example.com/a/x").request.path == "/b/x"

    def test_repeated_header_modifier_rule_dropped(self) -> None:
        """A non-repeatable filter repeated drops the rule (SPEC-NOTES §3.1, checklist 47)."""
        f = header_filter(set={"a": "1"})
        m = with_rules(valid_rule(), rule(match("/bad"), filters=[f, f]))
        assert reason(m, "r", "PartiallyInvalid")[0] == "True"
        assert get(m, "http://example.com/bad").route is None

    def test_repeated_mirrors_accepted_and_all_carried(self) -> None:
        """RequestMirror may repeat; every mirror is carried (SPEC-NOTES §3.1, checklist 47)."""
        m = world(http_route(rules=[rule(filters=[mirror("shadow"), mirror("svc2")])]))
        assert reason(m, "r") == ("True", "Accepted")
        d = get(m, "http://example.com/")
        assert [mi.backend.name for mi in d.mirrors] == ["shadow", "svc2"]

    def test_unknown_filter_type_unsupported_value(self) -> None:
        """An unknown filter type → UnsupportedValue, no crash (SPEC-NOTES §3.1,
        checklist 48)."""
        m = with_rules(rule(filters=[{"type": "Gzip", "gzip": {}}]))
        assert reason(m, "r") == ("False", "UnsupportedValue")
        assert get(m, "http://example.com/").route is None

    def test_unknown_filter_type_on_backend_ref_unsupported_value(self) -> None:
        """The same on a backendRef (checklist 48)."""
        m = with_rules(rule(backends=[backend(filters=[{"type": "Gzip", "gzip": {}}])]))
        assert reason(m, "r") == ("False", "UnsupportedValue")

    def test_partially_invalid_route_keeps_valid_rules(self) -> None:
        """A route with one bad rule keeps the others, Accepted=True plus PartiallyInvalid
        (SPEC-NOTES §10.1, §10.3, checklist 50)."""
        m = with_rules(valid_rule(), rule(match("/bad"), filters=[{"type": "Nope"}]))
        assert reason(m, "r") == ("True", "Accepted")
        pi = route_condition(m, "r", "PartiallyInvalid")
        assert (pi.status, pi.reason) == ("True", "UnsupportedValue")
        assert pi.message.startswith("Dropped Rule")
        assert get(m, "http://example.com/ok").action is Action.FORWARD
        d = get(m, "http://example.com/bad")
        assert (d.action, d.status) == (Action.REJECT, 404)

    def test_every_rule_invalid_route_not_accepted(self) -> None:
        """All rules invalid → the route is not accepted, no PartiallyInvalid (SPEC-NOTES
        §10.3, checklist 50)."""
        m = with_rules(rule(filters=[{"type": "Nope"}]))
        st = route_condition(m, "r")
        assert st.status == "False"
        from tests.routing.helpers import status

        assert status(m, "HTTPRoute", "r").condition("PartiallyInvalid") is None


class TestHeaderModifier:
    def test_set_add_remove_case_insensitive(self) -> None:
        """set replaces, add appends as ``old,new``, remove deletes; names case-insensitive
        (SPEC-NOTES §3.2, checklist 52)."""
        m = with_rules(rule(filters=[header_filter(
            set={"X-Set": "new"}, add={"X-ADD": "b", "x-fresh": "f"}, remove=["x-REMOVE"])]))
        d = get(m, "http://example.com/", {"x-set": "old", "X-Add": "a", "X-Remove": "r",
                                            "x-keep": "k"})
        h = d.request.headers
        assert header_value(h, "x-set") == ["new"]
        assert header_value(h, "x-add") == ["a,b"]
        assert header_value(h, "x-fresh") == ["f"]
        assert header_value(h, "x-remove") == []
        assert header_value(h, "x-keep") == ["k"]

    def test_set_replaces_every_value(self) -> None:
        """set replaces all values of a repeated header (SPEC-NOTES §3.2, checklist 52)."""
        m = with_rules(rule(filters=[header_filter(set={"x-a": "new"})]))
        d = get(m, "http://example.com/", {"x-a": ["1", "2"]})
        assert header_value(d.request.headers, "x-a") == ["new"]

    def test_add_to_repeated_header_appends_after_every_value(self) -> None:
        """add appends: a repeated header reads ``1,2,3`` afterwards, in order (SPEC-NOTES
        §3.2, RFC 7230 §3.2.2, checklist 52)."""
        from meshclient.routing import RequestHead

        m = with_rules(rule(filters=[header_filter(add={"x-a": "3"})]))
        d = get(m, "http://example.com/", {"x-a": ["1", "2"]})
        combined = RequestHead("GET", "http", "example.com", 80, "/", d.request.headers)
        assert combined.header("x-a") == "1,2,3"

    def test_request_headers_in_json(self) -> None:
        """``request.headers`` in the resolve JSON is what the backend sees (DESIGN.md,
        checklist 52)."""
        m = with_rules(rule(filters=[header_filter(set={"x-a": "1"}, remove=["x-b"])]))
        out = get(m, "http://example.com/", {"x-b": "2"}).to_json()
        assert out["request"]["headers"] == [["x-a", "1"]]

    def test_two_actions_on_one_name_rule_dropped(self) -> None:
        """Two actions on one header name make the filter invalid (SPEC-NOTES §3.2,
        checklist 53)."""
        m = with_rules(valid_rule(), rule(match("/bad"), filters=[header_filter(
            set={"x-a": "1"}, add={"X-A": "2"})]))
        assert reason(m, "r", "PartiallyInvalid")[0] == "True"
        assert get(m, "http://example.com/bad").route is None

    def test_response_modifier_edits_carried_for_client_response(self) -> None:
        """ResponseHeaderModifier edits apply to the response (SPEC-NOTES §3.2, checklist 54)."""
        m = with_rules(rule(filters=[header_filter("ResponseHeaderModifier",
                                                   set={"X-S": "1"}, add={"x-a": "2"},
                                                   remove=["Server"])]))
        d = get(m, "http://example.com/")
        assert d.response_headers.set == (("x-s", "1"),)
        assert d.response_headers.add == (("x-a", "2"),)
        assert d.response_headers.remove == ("server",)
        assert d.to_json()["response_headers"] == {"set": [["x-s", "1"]], "add": [["x-a", "2"]],
                                                   "remove": ["server"]}
        assert d.request.headers == ()

    def test_response_modifier_apply_to_response_headers(self) -> None:
        """The response edits behave like the request ones when applied (checklist 54)."""
        m = with_rules(rule(filters=[header_filter("ResponseHeaderModifier",
                                                   set={"x-s": "1"}, add={"x-a": "2"},
                                                   remove=["server"])]))
        edits = get(m, "http://example.com/").response_headers
        out = edits.apply((("server", "nginx"), ("x-a", "1"), ("x-s", "0")))
        assert sorted(out) == [("x-a", "1,2"), ("x-s", "1")]


class TestBackendFilters:
    def test_backend_filters_apply_only_to_that_backend(self) -> None:
        """backendRef-level filters run only when that backend is chosen (SPEC-NOTES §3.1,
        checklist 51)."""
        m = with_rules(rule(backends=[
            backend("svc", filters=[header_filter(set={"x-b": "svc"})]),
            backend("svc2"),
        ]))
        d = get(m, "http://example.com/")
        assert header_value(d.request.headers, "x-b") == []
        out = d.to_json()
        first, second = out["backends"]
        assert ["x-b", "svc"] in first["request"]["headers"]
        assert "request" not in second

    def test_backend_and_rule_filters_compose(self) -> None:
        """Rule filters apply to every backend; backend filters on top (checklist 51)."""
        m = with_rules(rule(filters=[header_filter(set={"x-rule": "1"})], backends=[
            backend("svc", filters=[header_filter(add={"x-rule": "2"})]),
            backend("svc2"),
        ]))
        d = get(m, "http://example.com/")
        assert header_value(d.request.headers, "x-rule") == ["1"]
        (first_req, second_req) = d.backend_requests
        assert first_req is not None and first_req.request is not None
        assert header_value(first_req.request.headers, "x-rule") == ["1,2"]
        assert second_req is None

    def test_backend_level_rewrite_only_for_that_backend(self) -> None:
        """A backend-level URLRewrite changes only that backend's request (checklist 51)."""
        m = with_rules(rule(match("/a"), backends=[
            backend("svc", filters=[rewrite(path=path_modifier("ReplacePrefixMatch", "/b"))]),
            backend("svc2"),
        ]))
        d = get(m, "http://example.com/a/x")
        assert d.request.path == "/a/x"
        br = d.backend_requests[0]
        assert br is not None and br.request is not None
        assert br.request.path == "/b/x"

    def test_backend_level_redirect_answers_when_picked(self) -> None:
        """A backendRef-level RequestRedirect redirects when that backend is picked
        (SPEC-NOTES §3.1, CT:httproute-backend-request-redirect, checklist 51)."""
        m = with_rules(rule(backends=[
            backend("svc", filters=[redirect(hostname="moved.example.com", status=301)]),
            backend("svc2"),
        ]))
        d = get(m, "http://example.com/p?q=1")
        assert d.action is Action.FORWARD
        first = d.to_json()["backends"][0]
        assert first["redirect"] == {"status": 301,
                                     "location": "http://moved.example.com/p?q=1"}
        assert "redirect" not in d.to_json()["backends"][1]

    def test_backend_level_response_modifier_carried_per_backend(self) -> None:
        """A backend-level ResponseHeaderModifier is carried on that backend (checklist 51)."""
        m = with_rules(rule(backends=[
            backend("svc", filters=[header_filter("ResponseHeaderModifier", set={"x": "1"})]),
            backend("svc2"),
        ]))
        out = get(m, "http://example.com/").to_json()
        assert out["backends"][0]["response_headers"]["set"] == [["x", "1"]]
        assert "response_headers" not in out["backends"][1]
        assert "response_headers" not in out
