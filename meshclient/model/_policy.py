"""ReferenceGrant, BackendTLSPolicy, XBackendTrafficPolicy, and the core kinds they name."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from meshclient.errors import ConfigError
from meshclient.model._meta import Meta, parse_meta, spec_of
from meshclient.model._names import hostname_problem, precise_hostname_problem
from meshclient.model._reader import INVALID, Reader
from meshclient.model._traffic import (
    RetryConstraint,
    SessionPersistence,
    parse_retry_constraint,
    parse_session_persistence,
)

__all__ = [
    "BackendTLSPolicy",
    "ConfigMap",
    "GrantFrom",
    "GrantTo",
    "Namespace",
    "PolicyTargetRef",
    "ReferenceGrant",
    "SubjectAltName",
    "XBackendTrafficPolicy",
]


@attrs.frozen(kw_only=True)
class GrantFrom:
    group: str
    kind: str
    namespace: str


@attrs.frozen(kw_only=True)
class GrantTo:
    group: str
    kind: str
    name: str | None = None
    """None: every object of the kind in the grant's namespace."""


@attrs.frozen(kw_only=True)
class ReferenceGrant:
    meta: Meta
    from_: tuple[GrantFrom, ...] = ()
    to: tuple[GrantTo, ...] = ()
    errors: tuple[ConfigError, ...] = ()

    def permits(self, group: str, kind: str, namespace: str, to_group: str, to_kind: str,
                to_name: str) -> bool:
        """RG: from and to are each ORed; the grant lives in the target's namespace."""
        return any(
            f.group == group and f.kind == kind and f.namespace == namespace for f in self.from_
        ) and any(
            t.group == to_group and t.kind == to_kind and t.name in (None, to_name)
            for t in self.to
        )


@attrs.frozen(kw_only=True)
class PolicyTargetRef:
    group: str
    kind: str
    name: str
    section_name: str | None = None


@attrs.frozen(kw_only=True)
class SubjectAltName:
    type: str  # Hostname | URI
    value: str


@attrs.frozen(kw_only=True)
class BackendTLSPolicy:
    meta: Meta
    target_refs: tuple[PolicyTargetRef, ...] = ()
    hostname: str = ""
    subject_alt_names: tuple[SubjectAltName, ...] = ()
    ca_certificate_refs: tuple[tuple[str, str, str], ...] = ()
    """(group, kind, name) of each CA reference, in the policy's namespace."""
    well_known_ca: str | None = None
    options: Mapping[str, str] = attrs.field(factory=dict)
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen(kw_only=True)
class XBackendTrafficPolicy:
    meta: Meta
    target_refs: tuple[PolicyTargetRef, ...] = ()
    retry_constraint: RetryConstraint | None = None
    session_persistence: SessionPersistence | None = None
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen(kw_only=True)
class ConfigMap:
    meta: Meta
    data: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Namespace:
    meta: Meta


def parse_reference_grant(raw: Mapping[str, object], default_namespace: str) -> ReferenceGrant:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "ReferenceGrant", default_namespace, errors)
    spec = spec_of(raw, "ReferenceGrant", meta, errors)
    froms = tuple(
        GrantFrom(
            group=f.str("group"), kind=f.str("kind", required=True),
            namespace=f.str("namespace", required=True),
        )
        for f in spec.children("from", max_items=16)
    )
    tos = tuple(
        GrantTo(group=t.str("group"), kind=t.str("kind", required=True), name=t.opt_str("name"))
        for t in spec.children("to", max_items=16)
    )
    groups = [("from", i, f.group) for i, f in enumerate(froms)]
    groups += [("to", i, t.group) for i, t in enumerate(tos)]
    for where, index, group in groups:
        if group == "core":
            spec.error(f"{where}[{index}].group", "core",
                       'is not a group: the core group is written ""', INVALID)
    return ReferenceGrant(meta=meta, from_=froms, to=tos, errors=tuple(errors))


def _target_refs(spec: Reader) -> tuple[PolicyTargetRef, ...]:
    refs = tuple(
        PolicyTargetRef(
            group=t.str("group"), kind=t.str("kind", required=True),
            name=t.str("name", required=True), section_name=t.opt_str("sectionName"),
        )
        for t in spec.children("targetRefs", max_items=16)
    )
    if not refs and not spec.has("targetRefs"):
        spec.missing("targetRefs")
    return refs


def parse_backend_tls_policy(
    raw: Mapping[str, object], default_namespace: str
) -> BackendTLSPolicy:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "BackendTLSPolicy", default_namespace, errors)
    spec = spec_of(raw, "BackendTLSPolicy", meta, errors)
    targets = _target_refs(spec)
    validation = spec.child("validation")
    hostname = ""
    sans: list[SubjectAltName] = []
    cas: list[tuple[str, str, str]] = []
    well_known = None
    if validation is None:
        spec.missing("validation")
    else:
        hostname = validation.str("hostname", required=True)
        if hostname and (problem := precise_hostname_problem(hostname)):
            validation.error("hostname", hostname, problem, INVALID)
        for s in validation.children("subjectAltNames", max_items=5):
            kind = s.str("type", required=True)
            if kind == "Hostname":
                value = s.str("hostname", required=True)
                if value and (problem := hostname_problem(value)):
                    s.error("hostname", value, problem, INVALID)
                    continue
            elif kind == "URI":
                value = s.str("uri", required=True)
                if value and "://" not in value:
                    s.error("uri", value, "must be an absolute URI such as spiffe://td/ns/sa",
                            INVALID)
                    continue
            else:
                s.error("type", kind, "is not Hostname or URI", INVALID)
                continue
            if value:
                sans.append(SubjectAltName(type=kind, value=value))
        for c in validation.children("caCertificateRefs", max_items=8):
            cas.append((c.str("group"), c.str("kind", required=True), c.str("name", required=True)))
        well_known = validation.opt_str("wellKnownCACertificates")
        # BTP: exactly one of caCertificateRefs and wellKnownCACertificates.
        if bool(cas) == (well_known is not None):
            validation.error(
                "caCertificateRefs", [c[2] for c in cas],
                "must be set, or else wellKnownCACertificates, but not both", INVALID,
            )
    options = spec.mapping_of_str("options")
    return BackendTLSPolicy(
        meta=meta, target_refs=targets, hostname=hostname, subject_alt_names=tuple(sans),
        ca_certificate_refs=tuple(cas), well_known_ca=well_known, options=options,
        errors=tuple(errors),
    )


def parse_backend_traffic_policy(
    raw: Mapping[str, object], default_namespace: str
) -> XBackendTrafficPolicy:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "XBackendTrafficPolicy", default_namespace, errors)
    spec = spec_of(raw, "XBackendTrafficPolicy", meta, errors)
    targets = _target_refs(spec)
    constraint = None
    if (rc := spec.child("retryConstraint")) is not None:
        constraint = parse_retry_constraint(rc)
    session = None
    if (sp := spec.child("sessionPersistence")) is not None:
        session = parse_session_persistence(sp)
    return XBackendTrafficPolicy(
        meta=meta, target_refs=targets, retry_constraint=constraint,
        session_persistence=session, errors=tuple(errors),
    )


def parse_config_map(raw: Mapping[str, object], default_namespace: str) -> ConfigMap:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "ConfigMap", default_namespace, errors)
    top = Reader(raw, kind="ConfigMap", namespace=meta.namespace, name=meta.name, path="",
                 errors=errors)
    return ConfigMap(meta=meta, data=top.mapping_of_str("data"))


def parse_namespace(raw: Mapping[str, object], default_namespace: str) -> Namespace:
    return Namespace(meta=parse_meta(raw, "Namespace", "", [], namespaced=False))
