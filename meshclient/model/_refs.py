"""References shared by route kinds: parentRefs and backendRefs."""

from __future__ import annotations

import attrs

from meshclient.model._meta import GATEWAY_GROUP
from meshclient.model._reader import INVALID, Reader

__all__ = ["BackendRef", "ParentRef", "parse_backend_ref", "parse_parent_refs"]


@attrs.frozen(kw_only=True)
class ParentRef:
    """Where a route attaches: a Gateway, a ListenerSet or (GAMMA) a Service."""

    group: str = GATEWAY_GROUP
    kind: str = "Gateway"
    namespace: str
    name: str
    section_name: str | None = None
    port: int | None = None

    @property
    def is_service(self) -> bool:
        return self.group == "" and self.kind == "Service"

    def describe(self) -> str:
        out = f"{self.kind} {self.namespace}/{self.name}"
        if self.section_name is not None:
            out += f" section {self.section_name}"
        if self.port is not None:
            out += f" port {self.port}"
        return out


@attrs.frozen(kw_only=True)
class BackendRef:
    """A BackendObjectReference, with the weight routes give it (filters live on the route)."""

    group: str = ""
    kind: str = "Service"
    namespace: str
    name: str
    port: int | None = None
    weight: int = 1

    @property
    def is_service(self) -> bool:
        return self.group == "" and self.kind == "Service"


def parse_parent_refs(spec: Reader, route_namespace: str) -> tuple[ParentRef, ...]:
    refs: list[ParentRef] = []
    for p in spec.children("parentRefs", max_items=32):
        name = p.str("name", required=True)
        if not name:
            continue
        refs.append(
            ParentRef(
                # SH: group defaults to the Gateway API group, kind to Gateway; a Service
                # parent therefore has to spell group "" out.
                group=p.str("group", GATEWAY_GROUP),
                kind=p.str("kind", "Gateway"),
                namespace=p.str("namespace", route_namespace) or route_namespace,
                name=name,
                section_name=p.opt_str("sectionName"),
                port=p.int("port", minimum=1, maximum=65535),
            )
        )
    # SH: two parentRefs to one object must be told apart by sectionName (or port).
    seen: dict[tuple[str, str, str, str], list[tuple[str | None, int | None]]] = {}
    for index, ref in enumerate(refs):
        key = (ref.group, ref.kind, ref.namespace, ref.name)
        sections = seen.setdefault(key, [])
        here = (ref.section_name, ref.port)
        if sections and (here in sections or (None, None) in sections or here == (None, None)):
            spec.error(
                f"parentRefs[{index}]",
                ref.describe(),
                "repeats a parent without a distinct sectionName or port",
                INVALID,
            )
        sections.append(here)
    return tuple(refs)


def parse_backend_ref(
    b: Reader, route_namespace: str, *, default_weight: int = 1
) -> BackendRef | None:
    name = b.str("name", required=True)
    if not name:
        return None
    group = b.str("group", "")
    kind = b.str("kind", "Service")
    port = b.int("port", minimum=1, maximum=65535)
    weight = b.int("weight", default_weight, minimum=0, maximum=1_000_000)
    ref = BackendRef(
        group=group,
        kind=kind,
        namespace=b.str("namespace", route_namespace) or route_namespace,
        name=name,
        port=port,
        weight=default_weight if weight is None else weight,
    )
    if group == "core":
        # GEP examples write "core"; the API only knows "" for the core group.
        b.error("group", group, 'is not a group: the core group is written ""', INVALID)
    return ref
