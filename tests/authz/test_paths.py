"""Path normalisation and the bypass set: /admin must not be reachable by another spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshclient.authz import PathOptions, PathRejected, normalize_path


@pytest.mark.parametrize(("raw", "want"), [
    ("/public/../admin", "/admin"),
    ("//admin", "/admin"),
    ("/%61dmin", "/admin"),
    ("/%2E%2E/admin", "/admin"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/./admin", "/admin"),
    ("/admin/.", "/admin/"),
    ("/a/b/../../admin", "/admin"),
    ("/../../../admin", "/admin"),
    ("///admin///x", "/admin/x"),
    ("/admin?x=/public", "/admin"),
    ("/admin#frag", "/admin"),
    ("/caf%C3%A9", "/café"),
])
def test_normalize_path_bypass_spelling_canonical(raw: str, want: str) -> None:
    """Each alternative spelling reduces to the one path the policy names."""
    assert normalize_path(raw.encode()) == want


@pytest.mark.parametrize(("raw", "code"), [
    ("/admin%2f", "encoded_slash_in_path"),
    ("/admin%2F..%2Fx", "encoded_slash_in_path"),
    ("/public%2F..%2Fadmin", "encoded_slash_in_path"),
    ("/public\\..\\admin", "backslash_in_path"),
    ("/admin%5c", "backslash_in_path"),
    ("/admin%00", "invalid_path"),
    ("/admin%0a", "invalid_path"),
    ("/admin%", "invalid_path"),
    ("/admin%zz", "invalid_path"),
    ("/%ff", "invalid_path"),
    ("admin", "invalid_path"),
    ("*", "invalid_path"),
])
def test_normalize_path_ambiguous_spelling_rejected(raw: str, code: str) -> None:
    """Encoded slashes, backslashes, bad escapes and control bytes are refused by default."""
    with pytest.raises(PathRejected) as info:
        normalize_path(raw.encode())
    assert info.value.reason == code


def test_normalize_path_options_allow_encoded_slash_kept_literal() -> None:
    """With allow_encoded_slash a %2F stays encoded, never becoming a separator."""
    got = normalize_path(b"/a%2f..%2fadmin", PathOptions(allow_encoded_slash=True))
    assert got == "/a%2F..%2Fadmin"


def test_normalize_path_options_allow_backslash_as_slash() -> None:
    """With allow_backslash, \\ is a separator and dot segments still resolve."""
    assert normalize_path(b"/public\\..\\admin", PathOptions(allow_backslash=True)) == "/admin"


def test_normalize_path_double_encoding_decoded_once() -> None:
    """%252e decodes once to a literal %2e, which is not a dot segment."""
    assert normalize_path(b"/a/%252e%252e/admin") == "/a/%2e%2e/admin"


@given(st.text(alphabet="/.a%2e\\?", max_size=30))
def test_normalize_path_any_input_idempotent_or_rejected(raw: str) -> None:
    """The result is canonical (normalising it again changes nothing) or the path is refused."""
    try:
        once = normalize_path(raw.encode())
    except PathRejected:
        return
    assert once.startswith("/")
    assert "//" not in once
    assert "/../" not in once + "/" and "/./" not in once + "/"
    if "%" not in once:
        assert normalize_path(once.encode()) == once
