"""RequestHead: URL parsing (first sight and remembered origins alike) and header views."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshclient.routing import RequestHead
from meshclient.routing._request import _ORIGINS

SCHEMES = st.sampled_from(["http", "HTTP", "https", "Https", "grpc", "grpcs"])
HOSTS = st.sampled_from(["a.example.com", "B.Example.COM", "10.0.0.7", "[::1]", "svc"])
PORTS = st.sampled_from(["", ":8080", ":1", ":65535", ":"])
PATHS = st.sampled_from(["", "/", "/a/b", "/a%20b/", "/x;y"])
QUERIES = st.sampled_from(["", "?", "?q=1", "?a=1&b=%2F"])
FRAGMENTS = st.sampled_from(["", "#top", "#a?b"])


def _fields(head: RequestHead) -> tuple[object, ...]:
    return (head.method, head.scheme, head.authority, head.port, head.path, head.headers,
            head.host)


@given(scheme=SCHEMES, host=HOSTS, port=PORTS, path=PATHS, query=QUERIES,
       fragment=FRAGMENTS, method=st.sampled_from(["get", "POST"]))
def test_remembered_origins_parse_like_the_first_time(
    scheme: str, host: str, port: str, path: str, query: str, fragment: str, method: str,
) -> None:
    url = f"{scheme}://{host}{port}{path}{query}{fragment}"
    _ORIGINS.clear()
    first = RequestHead.from_url(method, url, {"X-A": "1"})
    again = RequestHead.from_url(method, url, {"X-A": "1"})
    assert _fields(again) == _fields(first)
    parts = urlsplit(url)
    defaults = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}
    assert first.scheme == scheme.lower()
    assert first.authority == parts.hostname
    assert first.port == (parts.port or defaults[first.scheme])
    raw = f"{path}{query}"  # path and query as sent; the fragment never is
    assert first.path == (raw if raw.startswith("/") else "/" + raw)
    assert first.method == ("POST" if first.scheme.startswith("grpc") else method.upper())
    assert first.headers == (("x-a", "1"),)


@pytest.mark.parametrize("url", ["a.example.com/x", "ftp://a.example.com/", "http:///x",
                                 "http://a.example.com:99999/", "http://a.example.com:x/"])
def test_bad_urls_are_refused_every_time(url: str) -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match=r"is not an absolute|invalid port") as info:
            RequestHead.from_url("GET", url)
        assert repr(url) in str(info.value)


def test_an_origin_seen_with_a_query_is_not_remembered_with_it() -> None:
    _ORIGINS.clear()
    assert RequestHead.from_url("GET", "http://a.example.com?x=1").path == "/?x=1"
    assert RequestHead.from_url("GET", "http://a.example.com").path == "/"
    assert RequestHead.from_url("GET", "http://a.example.com?y=2").path == "/?y=2"


@pytest.mark.parametrize("extra", [0, 10])  # the scan for few headers, the dict for many
def test_header_joins_repeats_and_ignores_case(extra: int) -> None:
    headers = [("X-Tag", "a"), ("x-tag", "b"), ("Accept", "*/*")]
    headers += [(f"x-filler-{i}", str(i)) for i in range(extra)]
    head = RequestHead.from_url("GET", "http://a.example.com/", headers)
    assert head.header("x-tag") == "a,b"
    assert head.header("accept") == "*/*"
    assert head.header("missing") is None
    assert head.header("x-tag") == "a,b"  # asked twice, same answer
