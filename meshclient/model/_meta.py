"""Object identity and metadata shared by every kind."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

import attrs

from meshclient.errors import ConfigError
from meshclient.model._reader import INVALID, Reader

__all__ = ["GATEWAY_GROUP", "LabelSelector", "Meta", "ObjectKey", "parse_meta", "spec_of"]

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_X_GROUP = "gateway.networking.x-k8s.io"

_EMPTY: Mapping[str, str] = MappingProxyType({})


@attrs.frozen
class ObjectKey:
    """Which object: kind, namespace ("" for cluster-scoped kinds) and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else (
            f"{self.kind} {self.name}"
        )


@attrs.frozen(kw_only=True)
class Meta:
    """The metadata fields routing and precedence depend on."""

    name: str
    namespace: str
    api_version: str = ""
    creation: float = math.inf
    """creationTimestamp as epoch seconds; objects without one (files) count as newest."""
    generation: int = 0
    resource_version: str = ""
    uid: str = ""
    labels: Mapping[str, str] = _EMPTY
    annotations: Mapping[str, str] = _EMPTY

    @property
    def ns_name(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_meta(
    raw: Mapping[str, object], kind: str, default_namespace: str, errors: list[ConfigError], *,
    namespaced: bool = True,
) -> Meta:
    """Read ``metadata`` (name, namespace, creationTimestamp, labels, annotations)."""
    meta_raw = raw.get("metadata")
    if not isinstance(meta_raw, Mapping):
        meta_raw = {}
    name = meta_raw.get("name")
    namespace = meta_raw.get("namespace") if namespaced else ""
    if not isinstance(namespace, str) or not namespace:
        namespace = default_namespace if namespaced else ""
    r = Reader(
        meta_raw, kind=kind, namespace=namespace, name=str(name or ""), path="metadata",
        errors=errors,
    )
    if not isinstance(name, str) or not name:
        r.missing("name")
        name = ""
    creation = math.inf
    stamp = meta_raw.get("creationTimestamp")
    if isinstance(stamp, datetime):  # YAML loaders turn unquoted timestamps into datetimes
        creation = stamp.timestamp()
    elif isinstance(stamp, str) and stamp:
        try:
            creation = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            r.error("creationTimestamp", stamp, "is not an RFC 3339 time", INVALID)
    api_version = raw.get("apiVersion")
    return Meta(
        name=name,
        namespace=namespace,
        api_version=api_version if isinstance(api_version, str) else "",
        creation=creation,
        generation=r.int("generation", 0) or 0,
        resource_version=r.str("resourceVersion"),
        uid=r.str("uid"),
        labels=MappingProxyType(r.mapping_of_str("labels")),
        annotations=MappingProxyType(r.mapping_of_str("annotations")),
    )


@attrs.frozen(kw_only=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str]


@attrs.frozen(kw_only=True)
class LabelSelector:
    """A Kubernetes label selector; the empty selector selects everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for req in self.expressions:
            present = req.key in labels
            if req.operator == "In":
                if not (present and labels[req.key] in req.values):
                    return False
            elif req.operator == "NotIn":
                if present and labels[req.key] in req.values:
                    return False
            elif req.operator == "Exists":
                if not present:
                    return False
            elif present:  # DoesNotExist
                return False
        return True

    @classmethod
    def parse(cls, r: Reader) -> LabelSelector:
        labels = tuple(sorted(r.mapping_of_str("matchLabels").items()))
        exprs: list[Requirement] = []
        for e in r.children("matchExpressions"):
            op = e.str("operator", required=True)
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                e.error("operator", op, "is not In, NotIn, Exists or DoesNotExist", INVALID)
                # An unknown operator must not widen the selection: select nothing.
                exprs.append(Requirement(key="", operator="In", values=frozenset()))
                continue
            values = frozenset(e.strings("values"))
            if op in ("In", "NotIn") and not values:
                e.error("values", [], f"must not be empty with operator {op}", INVALID)
            exprs.append(Requirement(key=e.str("key", required=True), operator=op, values=values))
        return cls(match_labels=labels, expressions=tuple(exprs))


def spec_of(
    raw: Mapping[str, object], kind: str, meta: Meta, errors: list[ConfigError]
) -> Reader:
    """A reader over ``spec`` (an empty one when the object has none)."""
    top = Reader(raw, kind=kind, namespace=meta.namespace, name=meta.name, path="", errors=errors)
    spec = top.child("spec")
    if spec is None:
        return Reader({}, kind=kind, namespace=meta.namespace, name=meta.name, path="spec",
                      errors=errors)
    return spec
