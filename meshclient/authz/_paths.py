"""Request path normalisation before policy matching.

A policy on ``/admin`` must not be bypassed by spelling the path differently from how the
application will route it. The raw request target is reduced to one canonical form:
query and fragment dropped, percent-escapes decoded once, ``.`` and ``..`` segments removed
(RFC 3986 §5.2.4), runs of slashes merged. What cannot be reduced safely is rejected: an
encoded slash (``%2F``) or backslash (``%5C``, ``\\``) would mean different paths to
different servers, so by default they are refused, as are malformed escapes, NUL and other
control characters, and non-UTF-8 bytes.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

__all__ = ["PathOptions", "PathRejected", "normalize_path"]

_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SLASHES: Final = re.compile(r"/{2,}")
# Nothing to decode, merge or resolve: printable ASCII without %, \\, ?, # or controls.
_PLAIN: Final = re.compile(rb"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")


class PathRejected(ValueError):
    """The path cannot be normalised safely; ``reason`` is a short code."""

    def __init__(self, reason: str, path: bytes | str) -> None:
        super().__init__(f"{reason}: {path!r}")
        self.reason = reason
        self.path = path


@attrs.frozen(kw_only=True)
class PathOptions:
    """What to do with path spellings that servers disagree on (both refused by default)."""

    allow_encoded_slash: bool = False
    """Keep ``%2F`` as a literal, undecoded ``%2F`` instead of refusing the request."""
    allow_backslash: bool = False
    """Treat ``\\`` (raw or ``%5C``) as ``/`` instead of refusing the request."""


DEFAULT_PATH_OPTIONS: Final = PathOptions()


def normalize_path(raw: bytes | str, options: PathOptions = DEFAULT_PATH_OPTIONS) -> str:
    """The canonical form of a request path, for matching.

    Args:
        raw: The request target's path as sent (ASGI ``raw_path``, the gRPC method), with or
            without a query string.

    Raises:
        PathRejected: the path is malformed or uses a spelling refused by ``options``.
    """
    data = raw.encode("latin-1") if isinstance(raw, str) else raw
    if _PLAIN.fullmatch(data) and b"//" not in data and b"/." not in data:
        return data.decode("ascii")
    for sep in (b"?", b"#"):
        cut = data.find(sep)
        if cut >= 0:
            data = data[:cut]
    if not data.startswith(b"/"):
        raise PathRejected("invalid_path", raw)
    if _BAD_ESCAPE.search(data):
        raise PathRejected("invalid_path", raw)
    if b"\\" in data:
        if not options.allow_backslash:
            raise PathRejected("backslash_in_path", raw)
        data = data.replace(b"\\", b"/")

    def unescape(m: re.Match[bytes]) -> bytes:
        byte = int(m.group(1), 16)
        if byte == 0x2F:
            if not options.allow_encoded_slash:
                raise PathRejected("encoded_slash_in_path", raw)
            return b"%2F"
        if byte == 0x5C:
            if not options.allow_backslash:
                raise PathRejected("backslash_in_path", raw)
            return b"/"
        return bytes((byte,))

    decoded = _ESCAPE.sub(unescape, data)
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise PathRejected("invalid_path", raw) from None
    if _CONTROL.search(text):
        raise PathRejected("invalid_path", raw)
    return _remove_dots(_SLASHES.sub("/", text))


def _remove_dots(path: str) -> str:
    # RFC 3986 §5.2.4 over segments; ".." above the root stays at the root.
    if "." not in path:
        return path
    segments = path.split("/")[1:]
    out: list[str] = []
    for seg in segments:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    trailing = segments[-1] in (".", "..")
    result = "/" + "/".join(out)
    if trailing and not result.endswith("/"):
        result += "/"
    return result
