"""``Authorizer``: one request's attributes in, a verdict and the caller's identity out.

The adapters (ASGI middleware, gRPC interceptors) hand over what their framework knows: the
method, the raw path, the headers, the peer certificate or SPIFFE ID, addresses and ports.
This class does everything else without I/O: path normalisation, token validation (with keys
it is given), trusted-proxy headers, policy evaluation, audit records. When a token names a key
the key store does not have, the result carries a ``refresh`` callable: the adapter runs it
(blocking I/O, in a thread where needed) and checks once more.

Fail closed: any exception while deciding denies (``reason == "error"``).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

import attrs

from meshclient.authz._audit import (
    DENY_ON_ERROR,
    AuditRecord,
    DecisionHook,
    LogDecisions,
    Verdict,
)
from meshclient.authz._engine import DENY_ALL_ON_ERROR, PolicySet, Workload, compile_policies
from meshclient.authz._headers import bearer_token, host_only, xfcc_uri, xff_client
from meshclient.authz._identity import (
    ANONYMOUS,
    Caller,
    Identity,
    RequestPrincipal,
    identity_from_spiffe_id,
    spiffe_id_from_certificate,
)
from meshclient.authz._paths import DEFAULT_PATH_OPTIONS, PathOptions, PathRejected, normalize_path
from meshclient.authz._request import AuthzRequest
from meshclient.authz._tokens import (
    Issuer,
    KeyStore,
    Rejected,
    StaticKeys,
    TokenValidator,
    remember,
)
from meshclient.store import Snapshot

__all__ = ["Authorizer", "AuthzResult", "SnapshotSource"]

_log = logging.getLogger("meshclient.authz")

DEFAULT_TOKEN_HEADERS: Final = ("authorization",)
XFCC: Final = "x-forwarded-client-cert"
XFF: Final = "x-forwarded-for"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Header = tuple[bytes | str, bytes | str]


class SnapshotSource(Protocol):
    """Anything with a current ``snapshot`` (``meshclient.Mesh``, ``meshclient.store.Store``)."""

    @property
    def snapshot(self) -> Snapshot: ...


class _RefreshingKeys(Protocol):
    def refresh(self, issuer: str, kid: str | None) -> bool: ...


@attrs.frozen(kw_only=True)
class AuthzResult:
    """A verdict, who the caller is, and what I/O could change the answer."""

    verdict: Verdict
    caller: Caller = ANONYMOUS
    refresh: Callable[[], object] | None = None
    """Fetch keys for an unknown key id; then call ``check`` once more."""

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed


def _deny(reason: str, status: int, detail: str = "") -> Verdict:
    return Verdict(allowed=False, status=status, reason=reason, detail=detail)


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class Authorizer:
    """Decides requests for one workload against the policies of a mesh.

    Args:
        mesh: Where policies come from (``Mesh``, a ``Store``): recompiled when its snapshot
            changes.
        workload: The server's namespace, labels, service account and trust domain.
        issuers: Token issuers to trust (service-account and end-user).
        keys: Their keys (``meshclient.sources.JwksKeys`` fetches them by OIDC discovery).
        token_headers: Headers that may carry a token (``authorization``: ``Bearer <jwt>``).
        trusted_proxies: SPIFFE IDs and CIDRs of peers whose ``x-forwarded-client-cert`` and
            ``x-forwarded-for`` are believed; from anyone else they are ignored and logged.
        path_options: Whether encoded slashes and backslashes are refused (the default).
        reject_invalid_tokens: A presented token that fails validation answers 401, whatever
            the policies say (Istio's RequestAuthentication does the same).
        log_decisions: ``deny`` logs denials at INFO (allows at DEBUG), ``all`` logs both at
            INFO, ``none`` logs neither. AUDIT-matched requests log at INFO unless ``none``.
        on_decision: Called with every ``AuditRecord``; its exceptions are logged and ignored.

    Raises:
        ValueError: an option is invalid (named in the message).
    """

    def __init__(
        self,
        mesh: SnapshotSource,
        workload: Workload,
        *,
        issuers: Iterable[Issuer] = (),
        keys: KeyStore | None = None,
        token_headers: Iterable[str] = DEFAULT_TOKEN_HEADERS,
        trusted_proxies: Iterable[str] = (),
        path_options: PathOptions = DEFAULT_PATH_OPTIONS,
        reject_invalid_tokens: bool = True,
        log_decisions: LogDecisions = "deny",
        on_decision: DecisionHook | None = None,
    ) -> None:
        if not isinstance(workload, Workload):
            raise TypeError(f"workload: expected a Workload, got {workload!r}")
        if log_decisions not in ("all", "deny", "none"):
            raise ValueError(f"log_decisions: {log_decisions!r} is not 'all', 'deny' or 'none'")
        self.mesh = mesh
        self.workload = workload
        self.validator = TokenValidator.of(issuers, keys if keys is not None else StaticKeys())
        self.token_headers = tuple(h.lower() for h in token_headers)
        spiffe: set[str] = set()
        nets: list[_Network] = []
        for p in trusted_proxies:
            if p.startswith("spiffe://"):
                spiffe.add(p)
                continue
            try:
                nets.append(ipaddress.ip_network(p, strict=False))
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {p!r} is neither a SPIFFE ID nor an address/CIDR"
                ) from None
        self._trusted_ids = frozenset(spiffe)
        self._trusted_nets = tuple(nets)
        self.path_options = path_options
        self.reject_invalid_tokens = reject_invalid_tokens
        self.log_decisions = log_decisions
        self.on_decision = on_decision
        self._compiled: tuple[Snapshot | None, PolicySet] = (None, DENY_ALL_ON_ERROR)
        # Bounded caches keyed by what a connection presents again on every request.
        self._cert_ids: dict[bytes | str, str | None] = {}
        self._peers: dict[str, Identity | None] = {}
        self._workload_name = str(workload)
        # Compile now and at every snapshot swap (off the request path) when the source
        # offers a hook (``Mesh.subscribe``); requests still check the snapshot they see.
        self.policies()
        self._listener: Callable[[object, object], object] | None = None
        subscribe = getattr(mesh, "subscribe", None)
        if callable(subscribe):
            self._listener = lambda _table, _snapshot: self.policies()
            subscribe(self._listener)

    def close(self) -> None:
        """Stop recompiling at snapshot swaps (requests still recompile when they see one)."""
        unsubscribe = getattr(self.mesh, "unsubscribe", None)
        if self._listener is not None and callable(unsubscribe):
            unsubscribe(self._listener)
        self._listener = None

    # -- policies -----------------------------------------------------------------------

    def policies(self) -> PolicySet:
        """The compiled policies for the current snapshot (compiled when it changed)."""
        snap = self.mesh.snapshot
        compiled = self._compiled
        if compiled[0] is snap:
            return compiled[1]
        try:
            policy_set = compile_policies(snap, self.workload)
        except Exception:
            _log.exception("authorization policies could not be compiled; denying everything")
            policy_set = DENY_ALL_ON_ERROR
        self._compiled = (snap, policy_set)
        return policy_set

    # -- one request --------------------------------------------------------------------

    def check(
        self,
        *,
        method: str,
        path: bytes | str,
        headers: Iterable[Header],
        now: float,
        host: str | None = None,
        port: int | None = None,
        source_ip: str | None = None,
        peer_certificate: bytes | str | None = None,
        peer_spiffe_id: str | None = None,
        destination_ip: str | None = None,
        sni: str | None = None,
    ) -> AuthzResult:
        """Decide one request. Never raises: an error is a denial.

        Args:
            path: The raw request path (ASGI ``raw_path``; the gRPC method name).
            headers: Name/value pairs as received (repeats kept).
            now: Seconds since the epoch (token expiry).
            host: The authority, when not among ``headers`` (HTTP/2, gRPC).
            peer_certificate: The client's leaf certificate (PEM or DER) from mTLS.
            peer_spiffe_id: The client's SPIFFE ID when the server already parsed it (gRPC).
        """
        try:
            result, req = self._check(
                method=method, path=path, headers=headers, now=now, host=host, port=port,
                source_ip=source_ip, peer_certificate=peer_certificate,
                peer_spiffe_id=peer_spiffe_id, destination_ip=destination_ip, sni=sni,
            )
        except Exception:
            _log.exception("authorization could not decide; denying")
            result, req = AuthzResult(verdict=DENY_ON_ERROR), None
        self._emit(result, req, method, path)
        return result

    def _check(
        self, *, method: str, path: bytes | str, headers: Iterable[Header], now: float,
        host: str | None, port: int | None, source_ip: str | None,
        peer_certificate: bytes | str | None, peer_spiffe_id: str | None,
        destination_ip: str | None, sni: str | None,
    ) -> tuple[AuthzResult, AuthzRequest | None]:
        try:
            norm = normalize_path(path, self.path_options)
        except PathRejected as exc:
            return AuthzResult(verdict=_deny(exc.reason, 403)), None
        merged: dict[str, str] = {}
        counts: dict[str, int] = {}
        for raw_name, raw_value in headers:
            name = (raw_name.decode("latin-1") if type(raw_name) is bytes
                    else str(raw_name)).lower()
            value = raw_value.decode("latin-1") if type(raw_value) is bytes else str(raw_value)
            if name in merged:
                merged[name] = f"{merged[name]},{value}"
                counts[name] += 1
            else:
                merged[name] = value
                counts[name] = 1
        if counts.get("host", 0) > 1:
            return AuthzResult(verdict=_deny("ambiguous_host", 400)), None
        authority = merged.get("host", host or "")

        # Peer identity: the mTLS certificate (or the server's parse of it).
        peer: Identity | None = None
        spiffe = peer_spiffe_id
        if spiffe is None and peer_certificate:
            if peer_certificate in self._cert_ids:
                spiffe = self._cert_ids[peer_certificate]
            else:
                spiffe = spiffe_id_from_certificate(peer_certificate)
                remember(self._cert_ids, peer_certificate, spiffe, CACHE_SIZE)
        if spiffe is not None:
            peer = self._peers.get(spiffe)
            if peer is None:
                peer = identity_from_spiffe_id(spiffe, "mtls")
                remember(self._peers, spiffe, peer, CACHE_SIZE)
        remote_ip = source_ip

        # Forwarded identity: only from a trusted proxy.
        if XFCC in merged or XFF in merged:
            if self._trusted(peer, source_ip):
                if XFCC in merged:
                    if counts[XFCC] > 1:
                        return AuthzResult(verdict=_deny("ambiguous_credentials", 401)), None
                    uri = xfcc_uri(merged[XFCC])
                    fwd = identity_from_spiffe_id(uri, "forwarded") if uri else None
                    if fwd is None:
                        return AuthzResult(verdict=_deny("bad_forwarded_identity", 401)), None
                    peer = fwd
                if XFF in merged:
                    remote_ip = xff_client(merged[XFF]) or remote_ip
            else:
                _log.info("ignoring %s from untrusted peer %s",
                          " and ".join(h for h in (XFCC, XFF) if h in merged),
                          peer.spiffe_id if peer else source_ip)

        # Tokens.
        user: RequestPrincipal | None = None
        for header in self.token_headers:
            if header not in merged:
                continue
            if counts[header] > 1:
                return AuthzResult(verdict=_deny("ambiguous_credentials", 401)), None
            token = bearer_token(merged[header]) if header == "authorization" else merged[header]
            if token is None:
                continue
            got = self.validator.validate(token, now=now)
            if isinstance(got, Rejected):
                refresh = None
                if got.refresh is not None and hasattr(self.validator.keys, "refresh"):
                    keys: _RefreshingKeys = self.validator.keys  # type: ignore[assignment]
                    refresh = functools.partial(keys.refresh, *got.refresh)
                if self.reject_invalid_tokens:
                    caller = Caller(peer=peer, source_ip=source_ip, remote_ip=remote_ip)
                    return AuthzResult(
                        verdict=_deny(got.reason, 401, got.detail), caller=caller,
                        refresh=refresh,
                    ), None
                continue
            if got.identity is not None:
                if peer is not None and peer.spiffe_id != got.identity.spiffe_id:
                    return AuthzResult(verdict=_deny("identity_mismatch", 401)), None
                peer = peer or got.identity
            elif got.principal is not None:
                if user is not None:
                    return AuthzResult(verdict=_deny("ambiguous_credentials", 401)), None
                user = got.principal

        caller = Caller(peer=peer, user=user, source_ip=source_ip, remote_ip=remote_ip)
        req = AuthzRequest(
            method=method.upper(), path=norm, host=host_only(authority), port=port,
            headers=merged, caller=caller, destination_ip=destination_ip, sni=sni,
        )
        return AuthzResult(verdict=self.policies().decide(req), caller=caller), req

    def _trusted(self, peer: Identity | None, source_ip: str | None) -> bool:
        if peer is not None and peer.spiffe_id in self._trusted_ids:
            return True
        if source_ip and self._trusted_nets:
            try:
                addr = ipaddress.ip_address(source_ip)
            except ValueError:
                return False
            return any(addr in n for n in self._trusted_nets)
        return False

    # -- audit --------------------------------------------------------------------------

    def _emit(
        self, result: AuthzResult, req: AuthzRequest | None, method: str, path: bytes | str
    ) -> None:
        verdict = result.verdict
        if self.log_decisions == "none":
            level = 0
        elif not verdict.allowed or verdict.audit or self.log_decisions == "all":
            level = logging.INFO
        else:
            level = logging.DEBUG
        logging_on = level and _log.isEnabledFor(level)
        if not logging_on and self.on_decision is None:
            return
        try:
            record = AuditRecord(
                workload=self._workload_name,
                caller=result.caller,
                method=req.method if req is not None else method,
                host=req.host if req is not None else "",
                path=req.path if req is not None else _text(path)[:256],
                port=req.port if req is not None else None,
                verdict=verdict,
            )
            if logging_on:
                _log.log(level, "%s", record.message(), extra={"meshclient_audit": record})
            if self.on_decision is not None:
                self.on_decision(record)
        except Exception:
            _log.exception("authorization audit hook failed (the decision stands)")


CACHE_SIZE: Final = 4096


def workload_of(value: Workload | Mapping[str, object]) -> Workload:
    """A ``Workload`` from itself or a mapping of its fields (adapter convenience)."""
    if isinstance(value, Workload):
        return value
    return Workload(**value)  # type: ignore[arg-type]
