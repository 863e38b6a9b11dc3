"""Client identity for server-side authorization: a projected service-account token.

The kubelet rotates a projected token by swapping a symlink (``..data``) in the volume, so
the file's identity (inode, size, mtime) changes; the token is re-read when it does. The
file is looked at no more than once per ``recheck`` seconds, so the request path pays a clock
read, not a ``stat``, between looks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from meshclient_httpx._observe import log

__all__ = ["TokenFile"]


class TokenFile:
    """A bearer token read from a file and re-read when the file changes.

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
        self.path = os.fspath(path)
        self.header = header.lower()
        self._raw_header = self.header.encode("latin-1")
        self._clock = clock
        self._recheck = recheck
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._value = b""
        self._next = 0.0
        self._load()

    def _load(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        with open(self.path, "rb") as f:
            token = f.read().strip()
        self._stamp = stamp
        self._value = b"Bearer " + token if self.header == "authorization" else token

    def header_pair(self) -> tuple[bytes, bytes]:
        """``(name, value)`` to add to a request, re-reading the file when it changed."""
        now = self._clock()
        if now >= self._next:
            with self._lock:
                if now >= self._next:
                    self._next = now + self._recheck
                    try:
                        self._load()
                    except OSError:
                        log.warning("could not re-read the token file %s; keeping the last "
                                    "token", self.path, exc_info=True)
        return self._raw_header, self._value
