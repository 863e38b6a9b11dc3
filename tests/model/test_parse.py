"""``parse_object``: the API server's defaults, CRD validation, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient.errors import ConfigError
from meshclient.model import (
    CORS,
    GATEWAY_GROUP,
    BackendTLSPolicy,
    Gateway,
    HTTPRoute,
    ReferenceGrant,
    RequestMirror,
    RequestRedirect,
    parse_object,
)
from tests.routing.helpers import (
    backend,
    cors,
    gateway,
    grant,
    header_filter,
    http_route,
    listener,
    match,
    mirror,
    parent,
    path_modifier,
    redirect,
    rewrite,
    rule,
    tls_policy,
)


def parse_route(obj: dict[str, Any]) -> tuple[HTTPRoute, list[ConfigError]]:
    got, errors = parse_object(obj)
    assert isinstance(got, HTTPRoute)
    return got, errors


def one_rule_errors(*rules: dict[str, Any]) -> list[list[ConfigError]]:
    route, _ = parse_route(http_route(rules=list(rules)))
    return [list(r.errors) for r in route.rules]


class TestDefaults:
    def test_parent_ref_defaults_group_kind_namespace(self) -> None:
        """parentRef group/kind/namespace default to the gateway group, Gateway and the route's
        namespace (SPEC-NOTES §0.1, checklist 1)."""
        route, errors = parse_route(http_route(namespace="team", parents=[{"name": "gw"}]))
        assert errors == []
        (ref,) = route.parent_refs
        assert (ref.group, ref.kind, ref.namespace, ref.name) == (GATEWAY_GROUP, "Gateway",
                                                                  "team", "gw")
        assert ref.is_service is False

    def test_parent_ref_service_with_empty_group_is_service(self) -> None:
        """A Service parent needs ``group: ""`` spelled out (SPEC-NOTES §0.1, checklist 1)."""
        route, _ = parse_route(http_route(parents=[{"group": "", "kind": "Service",
                                                    "name": "svc"}]))
        assert route.parent_refs[0].is_service
        route, _ = parse_route(http_route(parents=[{"kind": "Service", "name": "svc"}]))
        assert not route.parent_refs[0].is_service

    def test_route_missing_rules_defaults_one_prefix_root_rule_without_backends(self) -> None:
        """Omitted ``rules`` → one rule matching PathPrefix ``/`` with no backendRefs
        (SPEC-NOTES §0.1, checklist 2)."""
        obj = http_route()
        del obj["spec"]["rules"]
        route, errors = parse_route(obj)
        assert errors == []
        (r,) = route.rules
        (m,) = r.matches
        assert (m.path.type, m.path.value) == ("PathPrefix", "/")
        assert r.backend_refs == ()

    @pytest.mark.parametrize("matches", [None, [], [{}], [{"path": {}}]])
    def test_rule_missing_matches_or_path_defaults_prefix_root(self, matches: Any) -> None:
        """Missing matches, or a match/path without fields → PathPrefix ``/`` (checklist 3)."""
        r: dict[str, Any] = {"backendRefs": [backend()]}
        if matches is not None:
            r["matches"] = matches
        route, errors = parse_route(http_route(rules=[r]))
        assert errors == []
        (m,) = route.rules[0].matches
        assert (m.path.type, m.path.value) == ("PathPrefix", "/")

    def test_path_type_only_value_defaults_root(self) -> None:
        """A path with only ``value`` gets type PathPrefix (SPEC-NOTES §0.1, checklist 3)."""
        route, _ = parse_route(http_route(rules=[rule({"path": {"value": "/a"}})]))
        assert route.rules[0].matches[0].path.type == "PathPrefix"

    def test_header_and_query_match_type_defaults_exact(self) -> None:
        """Header and query-param match ``type`` defaults to Exact (checklist 3)."""
        route, errors = parse_route(http_route(rules=[rule(match(headers={"x-a": "1"},
                                                                  query={"q": "2"}))]))
        assert errors == []
        m = route.rules[0].matches[0]
        assert m.headers[0].type == "Exact"
        assert m.query_params[0].type == "Exact"

    def test_backend_ref_defaults_kind_service_group_empty_weight_one(self) -> None:
        """backendRef kind Service, group "", namespace = route's, weight 1 (checklist 4)."""
        route, _ = parse_route(http_route(namespace="team", rules=[rule()]))
        ref = route.rules[0].backend_refs[0].ref
        assert (ref.group, ref.kind, ref.namespace, ref.weight) == ("", "Service", "team", 1)

    def test_redirect_status_code_defaults_302(self) -> None:
        """RequestRedirect statusCode defaults to 302 (SPEC-NOTES §0.1, checklist 4)."""
        route, _ = parse_route(http_route(rules=[rule(backends=[], filters=[redirect()])]))
        (f,) = route.rules[0].filters
        assert isinstance(f, RequestRedirect)
        assert f.status_code == 302

    def test_cors_max_age_defaults_5(self) -> None:
        """CORS maxAge defaults to 5 seconds (SPEC-NOTES §0.1, checklist 4)."""
        route, _ = parse_route(http_route(rules=[rule(filters=[cors(allowOrigins=["*"])])]))
        (f,) = route.rules[0].filters
        assert isinstance(f, CORS)
        assert f.max_age == 5

    def test_mirror_without_percent_or_fraction_defaults_100(self) -> None:
        """RequestMirror with neither percent nor fraction mirrors 100 % (§0.1, checklist 64)."""
        route, _ = parse_route(http_route(rules=[rule(filters=[mirror()])]))
        (f,) = route.rules[0].filters
        assert isinstance(f, RequestMirror)
        assert f.percent == 100.0

    def test_mirror_fraction_denominator_defaults_100(self) -> None:
        """``fraction.denominator`` defaults to 100 (SPEC-NOTES §0.1, checklist 64)."""
        route, _ = parse_route(http_route(rules=[rule(filters=[mirror(fraction={"numerator":
                                                                                  7})])]))
        (f,) = route.rules[0].filters
        assert isinstance(f, RequestMirror)
        assert f.percent == pytest.approx(7.0)

    def test_listener_allowed_routes_defaults_same_namespace(self) -> None:
        """Listener allowedRoutes defaults to ``from: Same``; Gateway allowedListeners to None
        (SPEC-NOTES §0.1, checklist 19)."""
        gw, errors = parse_object(gateway(listeners=[listener()]))
        assert errors == []
        assert isinstance(gw, Gateway)
        assert gw.listeners[0].allowed_routes.namespaces_from == "Same"
        assert gw.allowed_listeners_from == "None"

    def test_https_listener_tls_mode_defaults_terminate(self) -> None:
        """Listener ``tls.mode`` defaults to Terminate (SPEC-NOTES §0.1)."""
        obj = gateway(listeners=[listener("https", 443, "HTTPS", "example.com")])
        obj["spec"]["listeners"][0]["tls"] = {}
        gw, _ = parse_object(obj)
        assert isinstance(gw, Gateway)
        assert gw.listeners[0].tls_mode == "Terminate"


class TestVersions:
    @pytest.mark.parametrize("version", ["v1", "v1beta1"])
    def test_http_route_served_versions_parse(self, version: str) -> None:
        """HTTPRoute v1 and v1beta1 are both read (issue: versions clusters serve today)."""
        got, errors = parse_object(http_route(api_version=f"{GATEWAY_GROUP}/{version}"))
        assert isinstance(got, HTTPRoute)
        assert errors == []

    def test_http_route_unserved_version_reports_api_version(self) -> None:
        """An unknown version is reported on the ``apiVersion`` field and not kept."""
        got, errors = parse_object(http_route(api_version=f"{GATEWAY_GROUP}/v9"))
        assert got is None
        assert errors[0].field == "apiVersion"

    @pytest.mark.parametrize("version", ["v1", "v1beta1"])
    def test_reference_grant_served_versions_parse(self, version: str) -> None:
        """ReferenceGrant v1 and v1beta1 are read (SPEC-NOTES §0, checklist 89)."""
        got, errors = parse_object(grant("prod", api_version=f"{GATEWAY_GROUP}/{version}"))
        assert isinstance(got, ReferenceGrant)
        assert errors == []

    @pytest.mark.parametrize("version", ["v1", "v1alpha3"])
    def test_backend_tls_policy_served_versions_parse(self, version: str) -> None:
        """BackendTLSPolicy v1 and v1alpha3 are read (SPEC-NOTES §0)."""
        got, errors = parse_object(tls_policy(well_known="System",
                                              api_version=f"{GATEWAY_GROUP}/{version}"))
        assert isinstance(got, BackendTLSPolicy)
        assert errors == []

    def test_unknown_kind_is_ignored_without_error(self) -> None:
        """Kinds meshclient does not read are skipped quietly (TCPRoute, Deployments, ...)."""
        assert parse_object({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "x"}}) == (None, [])

    def test_unknown_fields_are_tolerated(self) -> None:
        """Unknown fields do not make an object invalid (issue: unknown fields tolerated)."""
        obj = http_route()
        obj["spec"]["futureField"] = {"x": 1}
        obj["spec"]["rules"][0]["somethingNew"] = True
        _, errors = parse_route(obj)
        assert errors == []


class TestErrors:
    def test_error_names_kind_namespace_name_field_and_value(self) -> None:
        """A diagnostic names kind, namespace/name, field path and value (issue: Model)."""
        _, errors = parse_route(http_route(name="shop", namespace="team",
                                           rules=[rule(match("/a", "Bogus"))]))
        (e,) = errors
        assert (e.kind, e.namespace, e.name) == ("HTTPRoute", "team", "shop")
        assert e.field == "spec.rules[0].matches[0].path.type"
        assert e.value == "Bogus"
        text = str(e)
        assert "HTTPRoute team/shop" in text
        assert "spec.rules[0].matches[0].path.type" in text
        assert "'Bogus'" in text

    @pytest.mark.parametrize(
        "host",
        ["Example.com", "example.com.", "10.0.0.1", "foo.*.com", "*foo.com", "*", "a..b",
         "-a.com", "a_b.com"],
    )
    def test_route_hostname_invalid_rejects_route(self, host: str) -> None:
        """Hostnames are lower-case RFC 1123 names, no IPs, no trailing dot, wildcard only as
        the whole first label (SPEC-NOTES §1.1)."""
        route, errors = parse_route(http_route(hostnames=[host]))
        assert route.errors
        assert errors[0].field == "spec.hostnames[0]"

    @pytest.mark.parametrize("host", ["example.com", "*.example.com", "a-b.c1.example.com",
                                      "localhost"])
    def test_route_hostname_valid_is_kept(self, host: str) -> None:
        """Valid hostnames and leading-label wildcards are kept (SPEC-NOTES §1.1)."""
        route, errors = parse_route(http_route(hostnames=[host]))
        assert errors == []
        assert route.hostnames == (host,)

    def test_route_more_than_16_hostnames_is_an_error(self) -> None:
        """At most 16 hostnames (SPEC-NOTES §0.2)."""
        _, errors = parse_route(http_route(hostnames=[f"h{i}.example.com" for i in range(17)]))
        assert any(e.field == "spec.hostnames" for e in errors)

    def test_route_more_than_16_rules_is_an_error(self) -> None:
        """At most 16 rules (SPEC-NOTES §0.2)."""
        _, errors = parse_route(http_route(rules=[rule(match(f"/r{i}")) for i in range(17)]))
        assert any(e.field == "spec.rules" for e in errors)

    def test_rule_more_than_64_matches_is_an_error(self) -> None:
        """At most 64 matches per rule (SPEC-NOTES §0.2)."""
        (errs,) = one_rule_errors(rule(*(match(f"/m{i}") for i in range(65))))
        assert errs

    def test_route_more_than_128_matches_rejects_route(self) -> None:
        """At most 128 matches per route in all (SPEC-NOTES §0.2)."""
        route, _ = parse_route(http_route(rules=[rule(*(match(f"/r{r}/{i}") for i in range(50)))
                                                 for r in range(3)]))
        assert route.errors

    @pytest.mark.parametrize("build", [
        lambda: rule(filters=[mirror(f"m{i}") for i in range(17)]),
        lambda: rule(backends=[backend(f"b{i}") for i in range(17)]),
        lambda: rule(match(headers={f"h{i}": "v" for i in range(17)})),
        lambda: rule(match(query={f"q{i}": "v" for i in range(17)})),
        lambda: rule(filters=[header_filter(set={f"h{i}": "v" for i in range(17)})]),
        lambda: rule(filters=[header_filter(remove=[f"h{i}" for i in range(17)])]),
    ], ids=["filters", "backendRefs", "headers", "queryParams", "set", "remove"])
    def test_list_over_16_entries_is_an_error(self, build: Any) -> None:
        """≤16 filters, backendRefs, header/query matchers and set/add/remove entries
        (SPEC-NOTES §0.2)."""
        (errs,) = one_rule_errors(build())
        assert errs

    def test_more_than_32_parent_refs_is_an_error(self) -> None:
        """At most 32 parentRefs (SPEC-NOTES §0.2)."""
        route, _ = parse_route(http_route(parents=[parent(section=f"s{i}") for i in range(33)]))
        assert route.errors

    def test_path_value_1024_chars_is_valid(self) -> None:
        """Path values may be up to 1024 characters (SPEC-NOTES §0.2)."""
        (errs,) = one_rule_errors(rule(match("/" + "x" * 1023)))
        assert errs == []

    def test_rule_names_not_unique_drops_later_rule(self) -> None:
        """Rule ``name`` must be unique within a route (SPEC-NOTES §0.2)."""
        errs = one_rule_errors(rule(name="a"), rule(match("/b"), name="a"))
        assert errs[0] == []
        assert errs[1][0].field == "spec.rules[1].name"

    def test_weight_out_of_range_is_an_error(self) -> None:
        """Weight is 0..1,000,000 (SPEC-NOTES §0.2, §4.2)."""
        errs = one_rule_errors(rule(backends=[backend(weight=1_000_001)]))
        assert errs[0]

    def test_group_core_is_an_error(self) -> None:
        """``group: core`` is not a group; core is written "" (SPEC-NOTES §4.4 reading)."""
        errs = one_rule_errors(rule(backends=[backend(group="core")]))
        assert errs[0][0].field.endswith("group")

    def test_duplicate_parent_ref_without_section_name_rejects_route(self) -> None:
        """Two parentRefs to one Gateway need distinct sectionNames (SPEC-NOTES §1.3,
        checklist 18)."""
        route, errors = parse_route(http_route(parents=[parent(), parent()]))
        assert route.errors
        assert errors[0].field == "spec.parentRefs[1]"

    def test_duplicate_parent_ref_one_without_section_name_rejects_route(self) -> None:
        """A bare parentRef plus a sectioned one to the same Gateway is not distinct
        (SPEC-NOTES §1.3, checklist 18)."""
        route, _ = parse_route(http_route(parents=[parent(), parent(section="http")]))
        assert route.errors

    def test_parent_refs_with_distinct_section_names_are_valid(self) -> None:
        """Two parentRefs to one Gateway with different sectionNames are fine (checklist 18)."""
        route, errors = parse_route(http_route(parents=[parent(section="a"),
                                                        parent(section="b")]))
        assert errors == []
        assert len(route.parent_refs) == 2


class TestPathValues:
    @pytest.mark.parametrize(
        "value",
        ["a", "/a//b", "/a/./b", "/a/../b", "/a%2fb", "/a%2Fb", "/a#b", "/a/.", "/a/..",
         "/a b", "/a?b", "/" + "x" * 1024],
    )
    @pytest.mark.parametrize("kind", ["Exact", "PathPrefix"])
    def test_exact_or_prefix_invalid_value_drops_rule(self, kind: str, value: str) -> None:
        """Exact/PathPrefix values must start with '/', avoid ``//``, ``/./``, ``/../``,
        ``%2f``, ``#``, a trailing ``/.`` or ``/..``, and use only path characters
        (SPEC-NOTES §2.1, checklist 26)."""
        (errs,) = one_rule_errors(rule(match(value, kind)))
        assert errs
        assert errs[0].field == "spec.rules[0].matches[0].path.value"

    @pytest.mark.parametrize("value", ["/", "/a/b", "/a/b/", "/a%20b", "/~user/x-y_z.html",
                                       "/a:b@c!$&'()*+,;="])
    def test_exact_or_prefix_valid_value_is_kept(self, value: str) -> None:
        """RFC 3986 path characters and %XX escapes are valid (checklist 26)."""
        assert one_rule_errors(rule(match(value, "Exact")), rule(match(value))) == [[], []]

    def test_unknown_path_type_is_unsupported_value(self) -> None:
        """An unknown path type → UnsupportedValue and no crash (SPEC-NOTES §2.1,
        checklist 28)."""
        (errs,) = one_rule_errors(rule(match("/a", "Glob")))
        assert errs[0].reason == "UnsupportedValue"

    def test_regex_path_re2_rejects_backreference(self) -> None:
        """A pattern RE2 cannot compile rejects the rule with a reason (issue: Routing)."""
        (errs,) = one_rule_errors(rule(match(r"/(a)\1", "RegularExpression")))
        assert errs[0].reason == "UnsupportedValue"
        assert "RE2" in errs[0].detail


class TestMatchers:
    def test_unknown_method_is_unsupported_value(self) -> None:
        """Method is an upper-case enum; others → UnsupportedValue (SPEC-NOTES §2.4,
        checklist 34)."""
        (errs,) = one_rule_errors(rule(match(method="get")))
        assert errs[0].reason == "UnsupportedValue"
        (errs,) = one_rule_errors(rule(match(method="FETCH")))
        assert errs[0].reason == "UnsupportedValue"

    @pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                        "OPTIONS", "TRACE", "PATCH"])
    def test_known_method_is_valid(self, method: str) -> None:
        """The nine methods of the enum are valid (SPEC-NOTES §2.4, checklist 34)."""
        (errs,) = one_rule_errors(rule(match(method=method)))
        assert errs == []

    def test_header_match_pseudo_header_name_is_invalid(self) -> None:
        """Header name validation forbids pseudo-headers such as ``:method`` (§2.2)."""
        (errs,) = one_rule_errors(rule(match(headers=[{"name": ":method", "value": "GET"}])))
        assert errs

    def test_header_match_unknown_type_is_unsupported_value(self) -> None:
        """Unknown header match type → UnsupportedValue (SPEC-NOTES §10.1)."""
        (errs,) = one_rule_errors(rule(match(headers=[{"type": "Prefix", "name": "a",
                                                       "value": "b"}])))
        assert errs[0].reason == "UnsupportedValue"

    def test_header_match_names_lower_cased_first_duplicate_kept(self) -> None:
        """Header names compare case-insensitively; a repeated name keeps only the first
        entry (SPEC-NOTES §2.2, checklist 29)."""
        route, _ = parse_route(http_route(rules=[rule(match(headers=[
            {"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]))]))
        (h,) = route.rules[0].matches[0].headers
        assert (h.name, h.value) == ("x-a", "1")

    def test_query_match_names_case_kept_first_duplicate_kept(self) -> None:
        """Query names are case-sensitive; a repeated name keeps the first (§2.3,
        checklist 32)."""
        route, _ = parse_route(http_route(rules=[rule(match(query=[
            {"name": "Animal", "value": "1"}, {"name": "animal", "value": "2"},
            {"name": "Animal", "value": "3"}]))]))
        got = [(q.name, q.value) for q in route.rules[0].matches[0].query_params]
        assert got == [("Animal", "1"), ("animal", "2")]


class TestFilters:
    def test_redirect_and_rewrite_together_drop_rule(self) -> None:
        """RequestRedirect and URLRewrite must not share a filter list (SPEC-NOTES §3.1,
        checklist 44)."""
        (errs,) = one_rule_errors(rule(backends=[], filters=[redirect(), rewrite(
            hostname="a.example.com")]))
        assert errs

    def test_rule_redirect_with_backends_drops_rule(self) -> None:
        """A rule-level RequestRedirect is invalid when the rule has backendRefs
        (SPEC-NOTES §3.1, checklist 45)."""
        (errs,) = one_rule_errors(rule(filters=[redirect()]))
        assert errs

    @pytest.mark.parametrize("where", ["rule-redirect", "rule-rewrite", "backend-rewrite"])
    def test_replace_prefix_match_with_two_matches_drops_rule(self, where: str) -> None:
        """ReplacePrefixMatch needs exactly one match (SPEC-NOTES §3.1, checklist 46)."""
        pm = path_modifier("ReplacePrefixMatch", "/x")
        matches = (match("/a"), match("/b"))
        if where == "rule-redirect":
            r = rule(*matches, backends=[], filters=[redirect(path=pm)])
        elif where == "rule-rewrite":
            r = rule(*matches, filters=[rewrite(path=pm)])
        else:
            r = rule(*matches, backends=[backend(filters=[rewrite(path=pm)])])
        (errs,) = one_rule_errors(r)
        assert errs

    @pytest.mark.parametrize("kind", ["Exact", "RegularExpression"])
    def test_replace_prefix_match_on_non_prefix_match_drops_rule(self, kind: str) -> None:
        """ReplacePrefixMatch needs its one match to be PathPrefix (checklist 46)."""
        (errs,) = one_rule_errors(rule(match("/a", kind), filters=[rewrite(
            path=path_modifier("ReplacePrefixMatch", "/x"))]))
        assert errs

    def test_replace_prefix_match_on_default_match_is_valid(self) -> None:
        """The defaulted match (PathPrefix ``/``) satisfies ReplacePrefixMatch (checklist 46)."""
        (errs,) = one_rule_errors(rule(filters=[rewrite(
            path=path_modifier("ReplacePrefixMatch", "/x"))]))
        assert errs == []

    @pytest.mark.parametrize("kind", ["RequestHeaderModifier", "ResponseHeaderModifier"])
    def test_non_repeatable_filter_repeated_drops_rule(self, kind: str) -> None:
        """Only RequestMirror and ExtensionRef may repeat in one list (SPEC-NOTES §3.1,
        checklist 47)."""
        f = header_filter(kind, set={"a": "1"})
        (errs,) = one_rule_errors(rule(filters=[f, f]))
        assert errs

    def test_repeated_cors_or_rewrite_drops_rule(self) -> None:
        """CORS and URLRewrite are not repeatable either (checklist 47)."""
        (errs,) = one_rule_errors(rule(filters=[cors(allowOrigins=["*"]),
                                                cors(allowOrigins=["*"])]))
        assert errs
        (errs,) = one_rule_errors(rule(filters=[rewrite(hostname="a.b"),
                                                rewrite(hostname="c.d")]))
        assert errs

    def test_mirror_and_extension_ref_repeatable(self) -> None:
        """RequestMirror and ExtensionRef may repeat (SPEC-NOTES §3.1, checklist 47)."""
        from tests.routing.helpers import extension_ref

        (errs,) = one_rule_errors(rule(filters=[mirror("a"), mirror("b"), extension_ref("x"),
                                                extension_ref("y")]))
        assert errs == []

    def test_unknown_filter_type_is_unsupported_value(self) -> None:
        """Unknown filter type → UnsupportedValue, never a crash (SPEC-NOTES §3.1,
        checklist 48)."""
        (errs,) = one_rule_errors(rule(filters=[{"type": "Compress", "compress": {}}]))
        assert errs[0].reason == "UnsupportedValue"

    def test_filter_missing_its_field_drops_rule(self) -> None:
        """Each filter must carry the sub-field its type names (SPEC-NOTES §3.1)."""
        (errs,) = one_rule_errors(rule(filters=[{"type": "RequestHeaderModifier"}]))
        assert errs[0].field.endswith("requestHeaderModifier")

    def test_header_modifier_two_actions_on_one_name_drops_rule(self) -> None:
        """One action per header name per filter, case-insensitively (SPEC-NOTES §3.2,
        checklist 53)."""
        (errs,) = one_rule_errors(rule(filters=[header_filter(set={"X-A": "1"},
                                                              add={"x-a": "2"})]))
        assert errs
        (errs,) = one_rule_errors(rule(filters=[header_filter(set={"x-a": "1"},
                                                              remove=["X-A"])]))
        assert errs

    @pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
    def test_redirect_known_status_code_is_valid(self, code: int) -> None:
        """301/302 core and 303/307/308 extended are valid (SPEC-NOTES §3.3, checklist 58)."""
        (errs,) = one_rule_errors(rule(backends=[], filters=[redirect(status=code)]))
        assert errs == []

    @pytest.mark.parametrize("code", [300, 304, 200, 404])
    def test_redirect_other_status_code_is_unsupported_value(self, code: int) -> None:
        """Other codes → UnsupportedValue (SPEC-NOTES §10.1, checklist 58)."""
        (errs,) = one_rule_errors(rule(backends=[], filters=[redirect(status=code)]))
        assert errs[0].reason == "UnsupportedValue"

    def test_redirect_unknown_scheme_is_unsupported_value(self) -> None:
        """Redirect scheme is http or https (SPEC-NOTES §10.1)."""
        (errs,) = one_rule_errors(rule(backends=[], filters=[redirect(scheme="ftp")]))
        assert errs[0].reason == "UnsupportedValue"

    def test_redirect_wildcard_hostname_is_invalid(self) -> None:
        """Redirect hostname is a PreciseHostname: no wildcard (SPEC-NOTES §1.1)."""
        (errs,) = one_rule_errors(rule(backends=[], filters=[redirect(hostname="*.a.com")]))
        assert errs

    def test_mirror_percent_and_fraction_together_drop_rule(self) -> None:
        """percent and fraction are never both set (SPEC-NOTES §3.5, checklist 65)."""
        (errs,) = one_rule_errors(rule(filters=[mirror(percent=10, fraction={"numerator": 1})]))
        assert errs

    def test_mirror_numerator_over_denominator_drops_rule(self) -> None:
        """fraction numerator ≤ denominator (SPEC-NOTES §3.5, checklist 65)."""
        (errs,) = one_rule_errors(rule(filters=[mirror(fraction={"numerator": 3,
                                                                 "denominator": 2})]))
        assert errs

    def test_mirror_percent_over_100_drops_rule(self) -> None:
        """percent is 0..100 (SPEC-NOTES §3.5, checklist 65)."""
        (errs,) = one_rule_errors(rule(filters=[mirror(percent=101)]))
        assert errs

    def test_mirror_service_without_port_drops_rule(self) -> None:
        """A mirror's Service reference needs a port (SPEC-NOTES §3.5)."""
        (errs,) = one_rule_errors(rule(filters=[mirror(port=None)]))
        assert errs

    @pytest.mark.parametrize("field", ["allowOrigins", "allowMethods", "allowHeaders",
                                       "exposeHeaders"])
    def test_cors_wildcard_with_other_values_drops_rule(self, field: str) -> None:
        """A lone ``*`` cannot be combined with other values (SPEC-NOTES §3.6, checklist 72)."""
        values = {"allowOrigins": ["*", "https://a.com"], "allowMethods": ["*", "GET"],
                  "allowHeaders": ["*", "x-a"], "exposeHeaders": ["*", "x-b"]}[field]
        (errs,) = one_rule_errors(rule(filters=[cors(**{field: values})]))
        assert errs

    @pytest.mark.parametrize("origin", ["example.com", "ftp://a.com", "https://a.com/path",
                                        "https://a.*.com"])
    def test_cors_malformed_origin_drops_rule(self, origin: str) -> None:
        """allowOrigins entries are ``scheme://host[:port]`` with http/https (§3.6)."""
        (errs,) = one_rule_errors(rule(filters=[cors(allowOrigins=[origin])]))
        assert errs


class TestBackendRefs:
    def test_service_backend_without_port_drops_rule(self) -> None:
        """A core Service backendRef must set ``port`` (SPEC-NOTES §4.1, checklist 77)."""
        (errs,) = one_rule_errors(rule(backends=[backend(port=None)]))
        assert errs
        assert errs[0].field.endswith("backendRefs[0].port")

    def test_non_service_backend_without_port_is_parsed(self) -> None:
        """The port requirement is for core Services only (SPEC-NOTES §4.1, checklist 77)."""
        (errs,) = one_rule_errors(rule(backends=[backend(port=None, kind="XBackend",
                                                         group="gateway.networking.x-k8s.io")]))
        assert errs == []


class TestTimeoutsAndRetry:
    def test_timeouts_parse_to_seconds(self) -> None:
        """request/backendRequest are GEP-2257 durations in seconds (checklist 96, 97)."""
        route, errors = parse_route(http_route(rules=[rule(timeouts={
            "request": "10s", "backendRequest": "1500ms"})]))
        assert errors == []
        t = route.rules[0].timeouts
        assert t is not None
        assert (t.request, t.backend_request) == (10.0, 1.5)

    def test_timeout_zero_is_kept_as_disabled(self) -> None:
        """``0s`` is a value (disabled), distinct from unset (SPEC-NOTES §5.2, checklist 98)."""
        route, _ = parse_route(http_route(rules=[rule(timeouts={"request": "0s"})]))
        t = route.rules[0].timeouts
        assert t is not None
        assert t.request == 0.0
        assert t.backend_request is None

    def test_backend_request_over_request_drops_rule(self) -> None:
        """backendRequest must not exceed request (SPEC-NOTES §5.2, checklist 99)."""
        (errs,) = one_rule_errors(rule(timeouts={"request": "1s", "backendRequest": "2s"}))
        assert errs[0].field.endswith("timeouts.backendRequest")

    def test_backend_request_over_disabled_request_is_valid(self) -> None:
        """With ``request: 0s`` any backendRequest is allowed (checklist 99)."""
        (errs,) = one_rule_errors(rule(timeouts={"request": "0s", "backendRequest": "2s"}))
        assert errs == []

    def test_invalid_timeout_duration_drops_rule(self) -> None:
        """A timeout that is not a GEP-2257 duration is invalid (checklist 95)."""
        (errs,) = one_rule_errors(rule(timeouts={"request": "1.5s"}))
        assert errs[0].field.endswith("timeouts.request")

    def test_retry_fields_parse(self) -> None:
        """retry attempts, codes and backoff are read (SPEC-NOTES §5.3)."""
        route, errors = parse_route(http_route(rules=[rule(retry={
            "attempts": 3, "codes": [500, 503], "backoff": "100ms"})]))
        assert errors == []
        r = route.rules[0].retry
        assert r is not None
        assert (r.attempts, r.codes, r.backoff) == (3, frozenset({500, 503}), 0.1)

    @pytest.mark.parametrize("code", [399, 600, 200, 100, 999])
    def test_retry_code_outside_400_599_drops_rule(self, code: int) -> None:
        """Retry codes must be 400..599 (the CRD range) (SPEC-NOTES §5.3, checklist 101)."""
        (errs,) = one_rule_errors(rule(retry={"codes": [code]}))
        assert errs
