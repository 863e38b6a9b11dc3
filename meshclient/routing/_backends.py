"""Resolving backendRefs against Services, ReferenceGrants and backend policies (§4, §8)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, TypeVar

import attrs

from meshclient.model import (
    GATEWAY_GROUP,
    BackendRef,
    BackendTLSPolicy,
    ConfigMap,
    ReferenceGrant,
    Service,
    XBackendTrafficPolicy,
)
from meshclient.routing import _status as st
from meshclient.routing._decision import Backend, BackendTLS
from meshclient.store import Snapshot

__all__ = ["Resolver"]

# KEP-3726 / GEP-1911 values meshclient can speak to over an HTTPRoute.
_HTTP_APP_PROTOCOLS: Final = frozenset(
    {
        None,
        "",
        "http",
        "HTTP",
        "https",
        "HTTPS",
        "h2c",
        "http2",
        "grpc",
        "kubernetes.io/h2c",
        "kubernetes.io/ws",
        "kubernetes.io/wss",
    }
)


@attrs.frozen(kw_only=True)
class _TLSChoice:
    tls: BackendTLS | None
    problem: str | None = None


_P = TypeVar("_P", BackendTLSPolicy, XBackendTrafficPolicy)


def _policy_order(p: BackendTLSPolicy | XBackendTrafficPolicy) -> tuple[float, str]:
    # G713: the oldest policy wins a conflict, then namespace/name alphabetically.
    return (p.meta.creation, p.meta.ns_name)


class Resolver:
    """Backend lookups for one snapshot, with policy conflicts settled once."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.services: dict[tuple[str, str], Service] = {
            k: v for k, v in snapshot.of("Service").items() if isinstance(v, Service)
        }
        self._grants: dict[str, list[ReferenceGrant]] = {}
        for grant in snapshot.of("ReferenceGrant").values():
            if isinstance(grant, ReferenceGrant) and not grant.errors:
                self._grants.setdefault(grant.meta.namespace, []).append(grant)
        self.statuses: list[st.ObjectStatus] = []
        self._tls: dict[tuple[str, str, str | None], _TLSChoice] = {}
        # Targets of policies that are themselves invalid: never plaintext, but a valid
        # policy on the same target is preferred (G1897).
        self._tls_invalid: dict[tuple[str, str, str | None], _TLSChoice] = {}
        self._traffic: dict[tuple[str, str], XBackendTrafficPolicy] = {}
        self._backends: dict[tuple[object, ...], Backend] = {}
        self._index_tls_policies()
        self._index_traffic_policies()

    # -- ReferenceGrant ------------------------------------------------------------------

    def permitted(
        self,
        from_kind: str,
        from_ns: str,
        to_ns: str,
        to_kind: str,
        to_name: str,
        to_group: str = "",
    ) -> bool:
        if from_ns == to_ns:
            return True
        return any(
            g.permits(GATEWAY_GROUP, from_kind, from_ns, to_group, to_kind, to_name)
            for g in self._grants.get(to_ns, ())
        )

    # -- backendRefs ---------------------------------------------------------------------

    def backend(self, route_kind: str, route_ns: str, ref: BackendRef, *, mesh: bool) -> Backend:
        """A Backend for ``ref``: valid, or carrying the 500 and reason the spec asks for."""
        # Plain fields, not the BackendRef: hashing a frozen attrs value runs Python code.
        key = (route_kind, route_ns, ref.group, ref.kind, ref.namespace, ref.name, ref.port,
               ref.weight, mesh)
        found = self._backends.get(key)
        if found is None:
            found = self._backends[key] = self._backend(route_kind, route_ns, ref, mesh=mesh)
        return found

    def _backend(self, route_kind: str, route_ns: str, ref: BackendRef, *, mesh: bool) -> Backend:
        def invalid(reason: str, message: str) -> Backend:
            return Backend(kind=ref.kind, namespace=ref.namespace, name=ref.name, port=ref.port,
                           weight=ref.weight, status=500, reason=f"{reason}: {message}")

        if not ref.is_service:
            return invalid(
                st.INVALID_KIND,
                f"backendRef kind {ref.group or 'core'}/{ref.kind} is not supported",
            )
        # Mesh (Service-parent) routes only narrow reachability that already exists, so no
        # ReferenceGrant is needed there (G1294 exception, documented in docs/routing.md).
        if not mesh and not self.permitted(
            route_kind, route_ns, ref.namespace, "Service", ref.name
        ):
            return invalid(
                st.REF_NOT_PERMITTED,
                f"no ReferenceGrant in namespace {ref.namespace} lets {route_kind}s "
                f"from {route_ns} reference Service {ref.name}",
            )
        svc = self.services.get((ref.namespace, ref.name))
        if svc is None:
            return invalid(st.BACKEND_NOT_FOUND, f"Service {ref.namespace}/{ref.name} not found")
        if svc.type == "ExternalName":
            # OR: ExternalName backends SHOULD NOT be supported (CVE-2021-25740).
            return invalid(
                st.INVALID_KIND,
                f"Service {ref.namespace}/{ref.name} is ExternalName, not supported",
            )
        port = svc.port(ref.port) if ref.port is not None else None
        if port is None:
            return invalid(
                st.BACKEND_NOT_FOUND, f"Service {ref.namespace}/{ref.name} has no port {ref.port}"
            )
        app = port.app_protocol
        choice = self.tls_for(ref.namespace, ref.name, port.name)
        if app not in _HTTP_APP_PROTOCOLS or (app == "kubernetes.io/wss" and choice.tls is None):
            return invalid(
                st.UNSUPPORTED_PROTOCOL,
                f"port {port.port} appProtocol {app!r} cannot carry HTTP here",
            )
        if choice.problem is not None:
            # BTP: an unusable policy must fail the connection, never fall back to plaintext.
            return invalid("InvalidBackendTLSPolicy", choice.problem)
        traffic = self._traffic.get((ref.namespace, ref.name))
        return Backend(
            kind=ref.kind, namespace=ref.namespace, name=ref.name, port=ref.port,
            weight=ref.weight,
            app_protocol=app,
            tls=choice.tls,
            retry_constraint=traffic.retry_constraint if traffic else None,
            session_persistence=traffic.session_persistence if traffic else None,
        )

    def service_backend(self, svc: Service, port: int) -> Backend:
        """The implicit backend of a Service called with no route (GAMMA: plain Service)."""
        ref = BackendRef(namespace=svc.meta.namespace, name=svc.meta.name, port=port)
        return self.backend("HTTPRoute", svc.meta.namespace, ref, mesh=True)

    # -- BackendTLSPolicy ----------------------------------------------------------------

    def tls_for(self, namespace: str, service: str, port_name: str) -> _TLSChoice:
        # A port-scoped policy governs its port over a whole-Service one
        # (CT:backendtlspolicy-conflict-resolution).
        port_key, whole_key = (namespace, service, port_name), (namespace, service, None)
        return (
            self._tls.get(port_key)
            or self._tls_invalid.get(port_key)
            or self._tls.get(whole_key)
            or self._tls_invalid.get(whole_key)
            or _NO_TLS
        )

    def _refuse_targets(self, policy: BackendTLSPolicy, why: str) -> None:
        # BTP: an invalid policy must fail the connections it targets, never downgrade them.
        choice = _TLSChoice(tls=None, problem=f"BackendTLSPolicy {policy.meta.ns_name} is "
                            f"invalid: {why}")
        for target in policy.target_refs:
            if target.group == "" and target.kind == "Service" and target.name:
                self._tls_invalid.setdefault(
                    (policy.meta.namespace, target.name, target.section_name), choice)

    def _policies(self, kind: type[_P]) -> list[_P]:
        """This snapshot's policies of ``kind``, oldest first (G713: the oldest wins)."""
        return sorted((p for p in self.snapshot.of(kind.__name__).values()
                       if isinstance(p, kind)), key=_policy_order)

    def _index_tls_policies(self) -> None:
        for policy in self._policies(BackendTLSPolicy):
            ns = policy.meta.namespace
            conds: list[st.Condition] = []
            if policy.errors:
                self._report(policy, [st.Condition(type="Accepted", status="False",
                                                   reason="Invalid",
                                                   message=str(policy.errors[0]))])
                self._refuse_targets(policy, str(policy.errors[0]))
                continue
            ca_pem, ca_problem, ca_reason = self._ca_bundle(policy)
            if policy.well_known_ca is not None and policy.well_known_ca != "System":
                conds.append(
                    st.Condition(
                        type="Accepted",
                        status="False",
                        reason="Invalid",
                        message=f"wellKnownCACertificates {policy.well_known_ca!r} "
                        "is not supported",
                    )
                )
                self._report(policy, conds)
                self._refuse_targets(policy, f"wellKnownCACertificates "
                                     f"{policy.well_known_ca!r} is not supported")
                continue
            tls = BackendTLS(
                hostname=policy.hostname,
                subject_alt_names=tuple((s.type, s.value) for s in policy.subject_alt_names),
                ca_pem=ca_pem,
                policy=policy.meta.ns_name,
            )
            # Unusable only when no CA certificate is left; bad refs among good ones are
            # reported (ResolvedRefs) while the good ones are used.
            usable = ca_pem is not None or not policy.ca_certificate_refs
            choice = _TLSChoice(tls=tls if usable else None,
                                problem=None if usable else ca_problem)
            accepted_any = False
            conflicts: list[str] = []
            missing: list[str] = []
            for target in policy.target_refs:
                if target.group != "" or target.kind != "Service":
                    missing.append(f"{target.kind} {target.name}")
                    continue
                svc = self.services.get((ns, target.name))
                if svc is None or (
                    target.section_name is not None and svc.port_named(target.section_name) is None
                ):
                    missing.append(
                        f"Service {target.name}"
                        + (f" port {target.section_name}" if target.section_name else "")
                    )
                    continue
                key = (ns, target.name, target.section_name)
                if key in self._tls:
                    conflicts.append(target.name)
                    continue
                self._tls[key] = choice
                accepted_any = True
            if not accepted_any:
                reason, msg = (
                    ("Conflicted", f"an older policy already targets {conflicts}")
                    if conflicts
                    else ("TargetNotFound", f"no such target: {missing}")
                )
                conds.append(
                    st.Condition(type="Accepted", status="False", reason=reason, message=msg)
                )
            elif not usable:
                conds.append(
                    st.Condition(
                        type="Accepted",
                        status="False",
                        reason="NoValidCACertificate",
                        message=ca_problem or "",
                    )
                )
            else:
                conds.append(st.Condition(type="Accepted", status="True", reason="Accepted"))
            if ca_problem is not None:
                conds.append(
                    st.Condition(
                        type="ResolvedRefs", status="False", reason=ca_reason,
                        message=ca_problem,
                    )
                )
            else:
                conds.append(
                    st.Condition(type="ResolvedRefs", status="True", reason="ResolvedRefs")
                )
            self._report(policy, conds)

    def _ca_bundle(self, policy: BackendTLSPolicy) -> tuple[str | None, str | None, str]:
        """(PEM, problem, reason): the CA certificates the policy's refs name.

        PEM is None when no reference gave a certificate; problem and its ResolvedRefs
        reason (``InvalidKind`` or ``InvalidCACertificateRef``) describe the bad references,
        also when good ones remain (BTP).
        """
        if not policy.ca_certificate_refs:
            return None, None, ""
        pems: list[str] = []
        problems: list[str] = []
        reason = "InvalidCACertificateRef"
        for group, kind, name in policy.ca_certificate_refs:
            if group != "" or kind != "ConfigMap":
                problems.append(f"{kind} {name}: only ConfigMap CA references are supported")
                reason = st.INVALID_KIND
                continue
            cm = self.snapshot.get("ConfigMap", policy.meta.namespace, name)
            if not isinstance(cm, ConfigMap):
                problems.append(f"ConfigMap {policy.meta.namespace}/{name} not found")
                continue
            pem = cm.data.get("ca.crt")
            if not pem or "-----BEGIN CERTIFICATE-----" not in pem:
                problems.append(f"ConfigMap {policy.meta.namespace}/{name} has no PEM ca.crt")
                continue
            pems.append(pem)
        problem = "; ".join(problems) if problems else None
        return ("\n".join(pems) if pems else None), problem, reason

    def _index_traffic_policies(self) -> None:
        for policy in self._policies(XBackendTrafficPolicy):
            conds: list[st.Condition] = []
            if policy.errors:
                self._report(policy, [st.Condition(type="Accepted", status="False",
                                                   reason="Invalid",
                                                   message=str(policy.errors[0]))])
                continue
            took = False
            for target in policy.target_refs:
                key = (policy.meta.namespace, target.name)
                if target.kind != "Service" or key not in self.services or key in self._traffic:
                    continue
                self._traffic[key] = policy
                took = True
            conds.append(
                st.Condition(type="Accepted", status="True", reason="Accepted")
                if took
                else st.Condition(
                    type="Accepted",
                    status="False",
                    reason="Conflicted"
                    if any(
                        (policy.meta.namespace, t.name) in self._traffic for t in policy.target_refs
                    )
                    else "TargetNotFound",
                )
            )
            self._report(policy, conds)

    def _report(
        self, policy: BackendTLSPolicy | XBackendTrafficPolicy, conds: Iterable[st.Condition]
    ) -> None:
        self.statuses.append(
            st.ObjectStatus(
                kind=type(policy).__name__,
                namespace=policy.meta.namespace,
                name=policy.meta.name,
                conditions=tuple(conds),
            )
        )


_NO_TLS: Final = _TLSChoice(tls=None)
