"""Token signing keys: OIDC discovery and JWKS fetching, cached (ECOSYSTEM §5.1, §5.2).

``JwksKeys`` is a key store for ``meshclient.authz``: ``key(issuer, kid)`` only reads the
cache; ``refresh(issuer, kid)`` fetches (blocking, stdlib ``urllib``; call it from a thread in
async servers). A refresh for an unknown key id happens at most once per
``min_refresh_interval`` per issuer, so forged key ids cannot turn the server into a
request amplifier; rotation is therefore visible within that floor. Redirects are refused and
responses are capped in size. The bearer token for the API server's discovery endpoints is
re-read from its file on every fetch (projected tokens rotate).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

import jwt

from meshclient.errors import SourceError

__all__ = [
    "DEFAULT_JWKS_MAX_AGE",
    "DEFAULT_JWKS_MIN_REFRESH",
    "JwksKeys",
]

_log = logging.getLogger("meshclient.sources.jwks")

DEFAULT_JWKS_MAX_AGE: Final = 300.0
DEFAULT_JWKS_MIN_REFRESH: Final = 10.0
DEFAULT_JWKS_TIMEOUT: Final = 5.0
MAX_DOCUMENT_BYTES: Final = 1 << 20

Fetch = Callable[[str], Mapping[str, object]]


class _IssuerLike(Protocol):
    @property
    def issuer(self) -> str: ...

    @property
    def jwks_uri(self) -> str | None: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class JwksKeys:
    """JWK sets by issuer, fetched by OIDC discovery (or from a given ``jwks_uri``).

    Args:
        issuers: ``meshclient.authz.Issuer`` values, or a mapping issuer → jwks_uri (None:
            discover it at ``{issuer}/.well-known/openid-configuration``).
        ssl_context: Verifies the issuer's server (the cluster CA in-cluster).
        token_file: A bearer token file sent with every fetch (the pod's own token).
        min_refresh_interval: Floor between two fetches for one issuer.
        max_age: Keys older than this are refetched by ``refresh_stale`` / the background
            thread; until then the cached set is used.
        clock: Monotonic seconds (tests pass a manual clock).
        fetch: Replace the HTTP GET (tests); returns the parsed JSON document.
        allow_http: Accept ``http://`` discovery and JWKS URLs. Off by default: keys fetched
            in plaintext can be replaced by anyone on the path, who could then mint tokens.
    """

    def __init__(
        self,
        issuers: Iterable[_IssuerLike] | Mapping[str, str | None],
        *,
        ssl_context: ssl.SSLContext | None = None,
        token_file: str | None = None,
        min_refresh_interval: float = DEFAULT_JWKS_MIN_REFRESH,
        max_age: float = DEFAULT_JWKS_MAX_AGE,
        timeout: float = DEFAULT_JWKS_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
        allow_http: bool = False,
    ) -> None:
        if min_refresh_interval < 0:
            raise ValueError(f"min_refresh_interval: {min_refresh_interval!r} is negative")
        if isinstance(issuers, Mapping):
            self._uris: dict[str, str | None] = dict(issuers)
        else:
            self._uris = {i.issuer: i.jwks_uri for i in issuers}
        self._ssl = ssl_context
        self._token_file = token_file
        self.min_refresh_interval = min_refresh_interval
        self.max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._fetch = fetch or self._http_get
        self._allow_http = allow_http
        self._keys: dict[str, dict[str | None, jwt.PyJWK]] = {}
        self._fetched_at: dict[str, float] = {}
        self._locks = {iss: threading.Lock() for iss in self._uris}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fetches = 0
        """How many JWKS documents were fetched (tests and statistics)."""

    # -- the KeyStore protocol (no I/O) -------------------------------------------------

    def key(self, issuer: str, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys.get(issuer)
        if not keys:
            return None
        if kid is not None:
            return keys.get(kid)
        return next(iter(keys.values())) if len(keys) == 1 else None

    # -- I/O ----------------------------------------------------------------------------

    def refresh(self, issuer: str, kid: str | None = None) -> bool:
        """Fetch the issuer's keys unless fetched within the floor; whether ``kid`` is known.

        Never raises for a failed fetch (logged; the cached keys stay).
        """
        lock = self._locks.get(issuer)
        if lock is None:
            return False
        with lock:
            if kid is not None and self.key(issuer, kid) is not None:
                return True  # another thread fetched it while we waited
            last = self._fetched_at.get(issuer)
            if last is not None and self._clock() - last < self.min_refresh_interval:
                return False
            try:
                self._load(issuer)
            except SourceError as exc:
                _log.warning("%s", exc)
                return False
        return kid is None or self.key(issuer, kid) is not None

    def load(self) -> None:
        """Fetch every issuer's keys now.

        Raises:
            SourceError: naming the first issuer whose keys could not be fetched (the others
                are still loaded).
        """
        first: SourceError | None = None
        for issuer in self._uris:
            try:
                with self._locks[issuer]:
                    self._load(issuer)
            except SourceError as exc:
                first = first or exc
        if first is not None:
            raise first

    def refresh_stale(self) -> None:
        """Refetch sets older than ``max_age`` (the background thread calls this)."""
        now = self._clock()
        for issuer in self._uris:
            last = self._fetched_at.get(issuer)
            if last is None or now - last >= self.max_age:
                self.refresh(issuer)

    def start(self) -> None:
        """Refresh stale key sets in a daemon thread until ``close()``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="meshclient-jwks", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        interval = max(1.0, min(self.max_age / 4, 60.0))
        while not self._stop.wait(interval):
            try:
                self.refresh_stale()
            except Exception:  # pragma: no cover - refresh() already logs fetch failures
                _log.exception("JWKS refresh failed")

    def _load(self, issuer: str) -> None:
        self._fetched_at[issuer] = self._clock()
        uri = self._uris[issuer]
        if uri is None:
            doc = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
            found = doc.get("jwks_uri")
            if not isinstance(found, str) or not found:
                raise SourceError(f"OIDC discovery for {issuer!r}: no jwks_uri")
            # OpenID Connect Discovery §4.3: the document's issuer must be the one asked for.
            if doc.get("issuer") != issuer:
                raise SourceError(
                    f"OIDC discovery for {issuer!r}: document names issuer {doc.get('issuer')!r}"
                )
            uri = found
        jwks = self._fetch(uri)
        keys: dict[str | None, jwt.PyJWK] = {}
        raw_keys = jwks.get("keys")
        for raw in raw_keys if isinstance(raw_keys, list) else ():
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(raw)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                _log.info("skipping an unusable key of %s: kid %r", issuer, raw.get("kid"))
                continue
            kid = raw.get("kid")
            keys[kid if isinstance(kid, str) else None] = key
        self.fetches += 1
        self._keys[issuer] = keys

    def _http_get(self, url: str) -> Mapping[str, object]:
        if not url.startswith("https://") and not (self._allow_http
                                                   and url.startswith("http://")):
            raise SourceError(f"JWKS: {url!r} is not an https URL (allow_http=True for http)")
        headers = {"Accept": "application/json"}
        if self._token_file:
            try:
                with open(self._token_file, encoding="ascii") as f:
                    headers["Authorization"] = "Bearer " + f.read().strip()
            except OSError as exc:
                raise SourceError(f"JWKS: cannot read token file {self._token_file!r}") from exc
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if url.startswith("https://"):
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url, headers=headers)
        try:
            with opener.open(request, timeout=self._timeout) as resp:
                body = resp.read(MAX_DOCUMENT_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response (and its socket) otherwise
            raise SourceError(f"JWKS: GET {url} answered {exc.code} (redirects are refused)"
                              ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SourceError(f"JWKS: GET {url} failed: {exc}") from exc
        if len(body) > MAX_DOCUMENT_BYTES:
            raise SourceError(f"JWKS: {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise SourceError(f"JWKS: {url} did not answer JSON") from exc
        if not isinstance(doc, dict):
            raise SourceError(f"JWKS: {url} did not answer a JSON object")
        return doc
