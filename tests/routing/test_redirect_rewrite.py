"""RequestRedirect locations and URLRewrite results (SPEC-NOTES §3.3, §3.4)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient import Action, Mesh
from tests.routing.helpers import (
    gateway,
    get,
    header_value,
    http_route,
    listener,
    match,
    mesh,
    path_modifier,
    redirect,
    rewrite,
    rule,
    service,
    world,
)


def redirecting(*matches: dict[str, Any], listeners: list[dict[str, Any]] | None = None,
                **fields: Any) -> Mesh:
    gw = gateway(listeners=listeners) if listeners is not None else gateway()
    return mesh(gw, service(), http_route(rules=[rule(*matches, backends=[],
                                                      filters=[redirect(**fields)])]))


def location(m: Mesh, url: str, headers: dict[str, str] | None = None) -> str:
    d = get(m, url, headers)
    assert d.action is Action.REDIRECT, d
    assert d.location is not None
    return d.location


def rewriting(*matches: dict[str, Any], **fields: Any) -> Mesh:
    return world(http_route(rules=[rule(*matches, filters=[rewrite(**fields)])]))


class TestRedirect:
    def test_empty_fields_keep_request_values(self) -> None:
        """Unset scheme, hostname and path keep the request's (SPEC-NOTES §3.3, checklist 55)."""
        m = redirecting(listeners=[listener(), listener("tls", 443, "HTTPS")])
        assert location(m, "http://example.com/a/b?q=1") == "http://example.com/a/b?q=1"
        assert location(m, "https://example.com/a?q=1") == "https://example.com/a?q=1"

    def test_hostname_comes_from_host_header_without_port(self) -> None:
        """An unset hostname uses the request Host without its port (checklist 55)."""
        m = redirecting(path=path_modifier("ReplaceFullPath", "/x"))
        assert location(m, "http://example.com/", {"Host": "example.com:1234"}) == (
            "http://example.com/x")

    def test_hostname_replaced(self) -> None:
        """A set hostname replaces the request host (SPEC-NOTES §3.3, checklist 55)."""
        m = redirecting(hostname="new.example.org")
        assert location(m, "http://example.com/p") == "http://new.example.org/p"

    @pytest.mark.parametrize(("listener_port", "protocol", "scheme", "port", "expected"), [
        (80, "HTTP", None, None, "http://example.com/p"),
        (80, "HTTP", None, 8080, "http://example.com:8080/p"),
        (80, "HTTP", "https", None, "https://example.com/p"),
        (80, "HTTP", "https", 8443, "https://example.com:8443/p"),
        (8080, "HTTP", None, None, "http://example.com:8080/p"),
        (8080, "HTTP", None, 80, "http://example.com/p"),
        (443, "HTTPS", None, 8443, "https://example.com:8443/p"),
        (443, "HTTPS", "http", None, "http://example.com/p"),
        (443, "HTTPS", "http", 8080, "http://example.com:8080/p"),
        (8443, "HTTPS", None, None, "https://example.com:8443/p"),
        (8080, "HTTP", "http", None, "http://example.com/p"),
    ])
    def test_port_and_scheme_table(self, listener_port: int, protocol: str,
                                   scheme: str | None, port: int | None, expected: str) -> None:
        """Port defaults: scheme set → 80/443, else the listener port; default ports are left
        out of Location (SPEC-NOTES §3.3 table, checklist 56, 57)."""
        url_scheme = "https" if protocol == "HTTPS" else "http"
        m = redirecting(listeners=[listener("l", listener_port, protocol)], scheme=scheme,
                        port=port)
        assert location(m, f"{url_scheme}://example.com:{listener_port}/p") == expected

    @pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
    def test_status_code_used(self, code: int) -> None:
        """The configured status code is returned (SPEC-NOTES §3.3, checklist 58)."""
        d = get(redirecting(status=code), "http://example.com/")
        assert d.status == code
        assert d.to_json()["status"] == code

    def test_status_code_default_302(self) -> None:
        """statusCode defaults to 302 (SPEC-NOTES §3.3, checklist 58)."""
        out = get(redirecting(), "http://example.com/").to_json()
        assert (out["action"], out["status"]) == ("redirect", 302)
        assert "backends" not in out

    def test_unsupported_status_code_rejects_route(self) -> None:
        """A code outside 301/302/303/307/308 → UnsupportedValue (checklist 58)."""
        from tests.routing.helpers import reason

        assert reason(redirecting(status=305), "r") == ("False", "UnsupportedValue")

    def test_replace_full_path_in_location(self) -> None:
        """ReplaceFullPath sets the whole Location path; the query is kept (SPEC-NOTES §3.3,
        checklist 59)."""
        m = redirecting(match("/old"), path=path_modifier("ReplaceFullPath", "/new/place"))
        assert location(m, "http://example.com/old/deep?x=1") == (
            "http://example.com/new/place?x=1")

    def test_replace_prefix_match_in_location(self) -> None:
        """ReplacePrefixMatch swaps the matched prefix in Location (checklist 59)."""
        m = redirecting(match("/old"), path=path_modifier("ReplacePrefixMatch", "/new"))
        assert location(m, "http://example.com/old/deep") == "http://example.com/new/deep"
        assert location(m, "http://example.com/old") == "http://example.com/new"

    def test_location_is_absolute_with_everything_set(self) -> None:
        """All fields together build one absolute URL (checklist 55–59)."""
        m = redirecting(match("/a"), scheme="https", hostname="b.example.org", port=9443,
                        status=308, path=path_modifier("ReplacePrefixMatch", "/z"))
        d = get(m, "http://example.com/a/1?k=v")
        assert (d.status, d.location) == (308, "https://b.example.org:9443/z/1?k=v")

    def test_response_header_modifier_applies_to_redirect(self) -> None:
        """Response edits still apply to a locally made redirect (SPEC-NOTES §3.2)."""
        from tests.routing.helpers import header_filter

        m = world(http_route(rules=[rule(backends=[], filters=[
            redirect(), header_filter("ResponseHeaderModifier", set={"x-r": "1"})])]))
        d = get(m, "http://example.com/")
        assert d.action is Action.REDIRECT
        assert d.response_headers.set == (("x-r", "1"),)


class TestRewrite:
    def test_hostname_rewrite_changes_upstream_host(self) -> None:
        """URLRewrite hostname replaces the Host sent upstream (SPEC-NOTES §3.4,
        checklist 60)."""
        m = rewriting(hostname="internal.example.org")
        d = get(m, "http://example.com/p")
        assert d.action is Action.FORWARD
        assert d.request.host == "internal.example.org"
        assert d.to_json()["request"]["host"] == "internal.example.org"

    def test_hostname_rewrite_replaces_explicit_host_header(self) -> None:
        """An explicit Host header is replaced too (checklist 60)."""
        m = rewriting(hostname="internal.example.org")
        d = get(m, "http://example.com/p", {"Host": "example.com:1234"})
        assert header_value(d.request.headers, "host") == ["internal.example.org"]

    @pytest.mark.parametrize(("path", "prefix", "replacement", "expected"), [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
        ("/foo/bar/baz", "/foo/bar", "/x", "/x/baz"),
        ("/", "/", "/x", "/x/"),  # the §3.4 reading keeps the rest, here "/"
        ("/a/b", "/", "/x", "/x/a/b"),
    ])
    def test_replace_prefix_match_vectors(self, path: str, prefix: str, replacement: str,
                                          expected: str) -> None:
        """ReplacePrefixMatch follows every vector of the spec table (SPEC-NOTES §3.4,
        checklist 61)."""
        m = rewriting(match(prefix), path=path_modifier("ReplacePrefixMatch", replacement))
        assert get(m, f"http://example.com{path}").request.path == expected

    def test_replace_prefix_match_keeps_query(self) -> None:
        """The query string survives a prefix rewrite (SPEC-NOTES §3.3 reading, checklist 61)."""
        m = rewriting(match("/foo"), path=path_modifier("ReplacePrefixMatch", "/xyz"))
        assert get(m, "http://example.com/foo/bar?a=1&b=2").request.path == "/xyz/bar?a=1&b=2"

    def test_replace_prefix_uses_the_matched_prefix(self) -> None:
        """With several rules the winning match's prefix is replaced (checklist 61)."""
        m = world(http_route(rules=[
            rule(match("/a"), filters=[rewrite(path=path_modifier("ReplacePrefixMatch",
                                                                  "/one"))]),
            rule(match("/a/b"), filters=[rewrite(path=path_modifier("ReplacePrefixMatch",
                                                                    "/two"))]),
        ]))
        assert get(m, "http://example.com/a/b/c").request.path == "/two/c"
        assert get(m, "http://example.com/a/c").request.path == "/one/c"

    @pytest.mark.parametrize("path", ["/foo", "/foo/bar/baz", "/foo/", "/"])
    def test_replace_full_path_replaces_whole_path(self, path: str) -> None:
        """ReplaceFullPath replaces the whole path (SPEC-NOTES §3.4, checklist 62)."""
        m = rewriting(path=path_modifier("ReplaceFullPath", "/new"))
        assert get(m, f"http://example.com{path}").request.path == "/new"

    def test_replace_full_path_keeps_query(self) -> None:
        """The query string survives a full-path rewrite (checklist 62)."""
        m = rewriting(path=path_modifier("ReplaceFullPath", "/new"))
        assert get(m, "http://example.com/old?x=1").request.path == "/new?x=1"

    def test_rewrite_and_header_filter_together(self) -> None:
        """URLRewrite composes with RequestHeaderModifier (SPEC-NOTES §3.1)."""
        from tests.routing.helpers import header_filter

        m = world(http_route(rules=[rule(filters=[
            rewrite(hostname="up.example.org", path=path_modifier("ReplaceFullPath", "/x")),
            header_filter(set={"x-a": "1"})])]))
        d = get(m, "http://example.com/y")
        assert (d.request.host, d.request.path) == ("up.example.org", "/x")
        assert header_value(d.request.headers, "x-a") == ["1"]
