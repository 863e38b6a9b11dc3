"""A projected service-account token file, re-read when the kubelet rotates it.

The kubelet rotates a projected token by swapping a symlink (``..data``) in the volume, so
the file's identity (inode, size, mtime) changes; the token is re-read when it does. The
file is looked at no more than once per ``recheck`` seconds, so a request pays a clock read,
not a ``stat``, between looks. The adapters send it (httpx as a header, gRPC as metadata).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["TokenFile"]

_log = logging.getLogger("meshclient.sources")


class TokenFile:
    """A token read from a file and re-read when the file changes.

    Args:
        path: The token file (e.g. ``/var/run/secrets/tokens/mesh-token``).
        clock: Monotonic seconds.
        recheck: Seconds between looks at the file.

    Raises:
        OSError: The file cannot be read the first time (a later failure keeps the last
            token and logs).
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float],
                 recheck: float = 1.0) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._recheck = recheck
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._token = ""
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
        self._token = token

    def token(self) -> str:
        """The current token: the same ``str`` object until the file changes."""
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
        return self._token
