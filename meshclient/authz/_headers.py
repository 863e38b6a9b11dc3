"""Reading identity-bearing headers: bearer tokens, the authority, XFF and Envoy's XFCC."""

from __future__ import annotations

__all__ = ["bearer_token", "host_only", "xfcc_uri", "xff_client"]


def bearer_token(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def host_only(authority: str) -> str:
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        return authority[: end + 1] if end >= 0 else authority
    host, _, _ = authority.partition(":")
    return host.rstrip(".")


def xff_client(value: str) -> str | None:
    # The rightmost entry was appended by the trusted proxy: it is the one it saw.
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts[-1] if parts else None


def xfcc_uri(value: str) -> str | None:
    """The ``URI`` of the last element of an Envoy x-forwarded-client-cert header."""
    elements: list[dict[str, str]] = [{}]
    key, buf, quoted = "", "", False
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\" and i + 1 < len(value):
                buf += value[i + 1]
                i += 1
            elif ch == '"':
                quoted = False
            else:
                buf += ch
        elif ch == '"':
            quoted = True
        elif ch == "=" and not key:
            key, buf = buf.strip(), ""
        elif ch in ";,":
            if key:
                elements[-1][key.lower()] = buf.strip()
            key, buf = "", ""
            if ch == ",":
                elements.append({})
        else:
            buf += ch
        i += 1
    if key:
        elements[-1][key.lower()] = buf.strip()
    return elements[-1].get("uri") or None
