"""Client identity: a projected service-account token sent as call metadata.

The kubelet rotates a projected token by swapping a symlink in the volume, so the file's
(inode, size, mtime) changes; the token is re-read when it does, and looked at no more than
once per ``recheck`` seconds so a call pays a clock read, not a ``stat``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["TokenFile"]

_log = logging.getLogger("meshclient.grpc")


class TokenFile:
    """A token read from a file, re-read when the file changes.

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
        self.path = os.fspath(path)
        self.key = key.lower()
        self._clock = clock
        self._recheck = recheck
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._pair = (self.key, "")
        self._next = 0.0
        self._load()

    def _load(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        with open(self.path, encoding="utf-8") as f:
            token = f.read().strip()
        self._stamp = stamp
        self._pair = (self.key, f"Bearer {token}" if self.key == "authorization" else token)

    def pair(self) -> tuple[str, str]:
        """``(key, value)`` to add to a call's metadata, re-reading the file if it changed."""
        now = self._clock()
        if now >= self._next:
            with self._lock:
                if now >= self._next:
                    self._next = now + self._recheck
                    try:
                        self._load()
                    except OSError:
                        _log.warning("could not re-read the token file %s; keeping the last "
                                     "token", self.path, exc_info=True)
        return self._pair
