"""Client identity for server-side authorization: a projected service-account token header.

The file is followed by ``meshclient.sources.TokenFile``; the header value is formatted once
per token, not per request.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from meshclient.sources import TokenFile as _Source

__all__ = ["TokenFile"]


class TokenFile:
    """A bearer token from a file, as the header to send it in.

    Args:
        path: The token file (e.g. ``/var/run/secrets/tokens/mesh-token``).
        header: Header to send it in; ``authorization`` sends ``Bearer <token>``, any other
            header sends the bare token.
        clock: Monotonic seconds.
        recheck: Seconds between looks at the file.

    Raises:
        OSError: The file cannot be read the first time (a later failure keeps the last
            token and logs).
    """

    def __init__(self, path: str | os.PathLike[str], *, header: str = "authorization",
                 clock: Callable[[], float], recheck: float = 1.0) -> None:
        self._file = _Source(path, clock=clock, recheck=recheck)
        self.path = self._file.path
        self.header = header.lower()
        self._raw_header = self.header.encode("latin-1")
        self._token: str | None = None
        self._value = b""

    def header_pair(self) -> tuple[bytes, bytes]:
        """``(name, value)`` to add to a request, re-reading the file when it changed."""
        token = self._file.token()
        if token is not self._token:
            raw = token.encode("utf-8")
            self._value = b"Bearer " + raw if self.header == "authorization" else raw
            self._token = token  # after the value: a racing reader never pairs them wrongly
        return self._raw_header, self._value
