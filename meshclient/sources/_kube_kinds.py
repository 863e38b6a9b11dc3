"""Which kinds the Kubernetes source watches (data: one line per kind), and the 403 error."""

from __future__ import annotations

from typing import Final

import attrs

from meshclient.errors import SourceError

__all__ = ["DEFAULT_KINDS", "KindSpec", "MissingPermission"]


@attrs.frozen(kw_only=True)
class KindSpec:
    """One kind to list and watch: where it lives in the API and how it is stored."""

    group: str
    """API group; "" for the core group (``/api/v1``)."""
    kind: str
    plural: str
    versions: tuple[str, ...]
    """Versions meshclient reads, most preferred first; the first one served is used."""
    namespaced: bool = True
    store_kind: str = ""
    """The kind objects are stored under (``XListenerSet`` is stored as ``ListenerSet``);
    the API kind when empty."""
    label_selector: str | None = None
    keep_data: frozenset[str] | None = None
    """For ConfigMaps: the ``data`` keys to keep (None keeps everything)."""

    @property
    def resource(self) -> str:
        """``plural.group`` as RBAC and error messages spell it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def stored_as(self) -> str:
        return self.store_kind or self.kind

    def rbac_rule(self) -> str:
        """The RBAC rule (YAML, one line) that lets meshclient read this kind."""
        return (f'- apiGroups: ["{self.group}"]  resources: ["{self.plural}"]  '
                f'verbs: ["get", "list", "watch"]')


_GW: Final = "gateway.networking.k8s.io"
_GWX: Final = "gateway.networking.x-k8s.io"

DEFAULT_KINDS: Final[tuple[KindSpec, ...]] = (
    KindSpec(group=_GW, kind="GatewayClass", plural="gatewayclasses", versions=("v1", "v1beta1"),
             namespaced=False),
    KindSpec(group=_GW, kind="Gateway", plural="gateways", versions=("v1", "v1beta1")),
    KindSpec(group=_GW, kind="ListenerSet", plural="listenersets", versions=("v1",)),
    KindSpec(group=_GWX, kind="XListenerSet", plural="xlistenersets", versions=("v1alpha1",),
             store_kind="ListenerSet"),
    KindSpec(group=_GW, kind="HTTPRoute", plural="httproutes", versions=("v1", "v1beta1")),
    KindSpec(group=_GW, kind="GRPCRoute", plural="grpcroutes", versions=("v1", "v1alpha2")),
    KindSpec(group=_GW, kind="ReferenceGrant", plural="referencegrants",
             versions=("v1", "v1beta1", "v1alpha2")),
    KindSpec(group=_GW, kind="BackendTLSPolicy", plural="backendtlspolicies",
             versions=("v1", "v1alpha3")),
    KindSpec(group=_GWX, kind="XBackendTrafficPolicy", plural="xbackendtrafficpolicies",
             versions=("v1alpha1",)),
    KindSpec(group="", kind="Service", plural="services", versions=("v1",)),
    KindSpec(group="discovery.k8s.io", kind="EndpointSlice", plural="endpointslices",
             versions=("v1",)),
    # Every ConfigMap in scope is watched (BackendTLSPolicy may name any of them), but only
    # its ``ca.crt`` is kept: the store holds metadata and CA bundles, not application
    # config. Narrow the watch itself with ``config_map_selector`` (a label selector).
    KindSpec(group="", kind="ConfigMap", plural="configmaps", versions=("v1",),
             keep_data=frozenset({"ca.crt"})),
    KindSpec(group="", kind="Namespace", plural="namespaces", versions=("v1",),
             namespaced=False),
    # Authorization policies: stored as ``meshclient.model`` parses them; a kind it does not
    # parse yet (parse_object returns None) is watched and counted, never stored.
    KindSpec(group="security.istio.io", kind="AuthorizationPolicy",
             plural="authorizationpolicies", versions=("v1", "v1beta1"),
             store_kind="IstioAuthorizationPolicy"),
    KindSpec(group=_GWX, kind="AuthorizationPolicy", plural="authorizationpolicies",
             versions=("v1alpha1",), store_kind="GatewayAuthorizationPolicy"),
    KindSpec(group=_GWX, kind="XAuthorizationPolicy", plural="xauthorizationpolicies",
             versions=("v1alpha1",), store_kind="GatewayAuthorizationPolicy"),
)
"""What a mesh client watches. Adding a kind is one line here (and its parser in
``meshclient.model.KINDS``)."""


class MissingPermission(SourceError):
    """The API server answered 403: the service account lacks a permission meshclient needs."""

    def __init__(self, spec: KindSpec, namespace: str | None, verb: str, detail: str) -> None:
        self.spec, self.namespace, self.verb, self.detail = spec, namespace, verb, detail
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"in namespace {self.namespace!r}" if self.namespace else "cluster-wide"
        role = "Role" if self.namespace else "ClusterRole"
        return (f"forbidden: cannot {self.verb} {self.spec.resource} {where} ({self.detail}); "
                f"add this rule to the {role} bound to meshclient's service account: "
                f"{self.spec.rbac_rule()} (see examples/rbac.yaml)")
