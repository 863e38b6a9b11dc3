"""Client identity: a projected service-account token sent as call metadata.

The file is followed by ``meshclient.sources.TokenFile``; the metadata pair is formatted
once per token, not per call.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from meshclient.sources import TokenFile as _Source

__all__ = ["TokenFile"]


class TokenFile:
    """A token from a file, as the metadata pair to send it in.

    Args:
        path: The token file.
        key: Metadata key; ``authorization`` sends ``Bearer <token>``, any other key the
            bare token.
        clock: Monotonic seconds.
        recheck: Seconds between looks at the file.

    Raises:
        OSError: The file cannot be read the first time (later failures keep the last token).
    """

    def __init__(self, path: str | os.PathLike[str], *, key: str = "authorization",
                 clock: Callable[[], float], recheck: float = 1.0) -> None:
        self._file = _Source(path, clock=clock, recheck=recheck)
        self.path = self._file.path
        self.key = key.lower()
        self._token: str | None = None
        self._pair = (self.key, "")

    def pair(self) -> tuple[str, str]:
        """``(key, value)`` to add to a call's metadata, re-reading the file if it changed."""
        token = self._file.token()
        if token is not self._token:
            self._pair = (self.key, f"Bearer {token}" if self.key == "authorization" else token)
            self._token = token  # after the pair: a racing reader never pairs them wrongly
        return self._pair
