"""Which Kubernetes kinds and versions meshclient reads, and the one entry point to parse them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from meshclient.errors import _NO_VALUE, ConfigError
from meshclient.model._authz_policy import (
    ISTIO_SECURITY_GROUP,
    GatewayAuthorizationPolicy,
    IstioAuthorizationPolicy,
    parse_gateway_authorization_policy,
    parse_istio_authorization_policy,
)
from meshclient.model._gateway import (
    Gateway,
    GatewayClass,
    ListenerSet,
    parse_gateway,
    parse_gateway_class,
    parse_listener_set,
)
from meshclient.model._grpcroute import GRPCRoute, parse_grpc_route
from meshclient.model._httproute import HTTPRoute, parse_http_route
from meshclient.model._meta import GATEWAY_GROUP, GATEWAY_X_GROUP
from meshclient.model._policy import (
    BackendTLSPolicy,
    ConfigMap,
    Namespace,
    ReferenceGrant,
    XBackendTrafficPolicy,
    parse_backend_tls_policy,
    parse_backend_traffic_policy,
    parse_config_map,
    parse_namespace,
    parse_reference_grant,
)
from meshclient.model._service import EndpointSlice, Service, parse_endpoint_slice, parse_service

__all__ = ["KINDS", "Object", "parse_object"]

Object = (
    Gateway | GatewayClass | ListenerSet | HTTPRoute | GRPCRoute | ReferenceGrant
    | BackendTLSPolicy | XBackendTrafficPolicy | Service | EndpointSlice | ConfigMap | Namespace
    | IstioAuthorizationPolicy | GatewayAuthorizationPolicy
)

_Parser = Callable[[Mapping[str, object], str], Object]

# (group, kind) -> (versions clusters serve today, parser)
KINDS: Final[dict[tuple[str, str], tuple[frozenset[str], _Parser]]] = {
    (GATEWAY_GROUP, "GatewayClass"): (frozenset({"v1", "v1beta1"}), parse_gateway_class),
    (GATEWAY_GROUP, "Gateway"): (frozenset({"v1", "v1beta1"}), parse_gateway),
    (GATEWAY_GROUP, "ListenerSet"): (frozenset({"v1"}), parse_listener_set),
    (GATEWAY_X_GROUP, "XListenerSet"): (frozenset({"v1alpha1"}), parse_listener_set),
    (GATEWAY_GROUP, "HTTPRoute"): (frozenset({"v1", "v1beta1"}), parse_http_route),
    (GATEWAY_GROUP, "GRPCRoute"): (frozenset({"v1", "v1alpha2"}), parse_grpc_route),
    (GATEWAY_GROUP, "ReferenceGrant"): (frozenset({"v1", "v1beta1", "v1alpha2"}),
                                        parse_reference_grant),
    (GATEWAY_GROUP, "BackendTLSPolicy"): (frozenset({"v1", "v1alpha3"}), parse_backend_tls_policy),
    (GATEWAY_X_GROUP, "XBackendTrafficPolicy"): (frozenset({"v1alpha1"}),
                                                 parse_backend_traffic_policy),
    ("", "Service"): (frozenset({"v1"}), parse_service),
    ("discovery.k8s.io", "EndpointSlice"): (frozenset({"v1"}), parse_endpoint_slice),
    ("", "ConfigMap"): (frozenset({"v1"}), parse_config_map),
    ("", "Namespace"): (frozenset({"v1"}), parse_namespace),
    (ISTIO_SECURITY_GROUP, "AuthorizationPolicy"): (frozenset({"v1", "v1beta1"}),
                                                    parse_istio_authorization_policy),
    (GATEWAY_X_GROUP, "AuthorizationPolicy"): (frozenset({"v1alpha1"}),
                                               parse_gateway_authorization_policy),
    (GATEWAY_X_GROUP, "XAuthorizationPolicy"): (frozenset({"v1alpha1"}),
                                                parse_gateway_authorization_policy),
}


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def parse_object(
    raw: Mapping[str, object], default_namespace: str = "default"
) -> tuple[Object | None, list[ConfigError]]:
    """Parse one Kubernetes object.

    Returns:
        The object (None for kinds meshclient does not read, or objects too broken to keep)
        and every problem found in it. An object with errors is still returned when its
        kind's compiler can report on it (routes keep their valid rules).
    """
    kind = raw.get("kind")
    api_version = raw.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        meta = raw.get("metadata")
        name = meta.get("name", "") if isinstance(meta, Mapping) else ""
        return None, [
            ConfigError(str(kind or "?"), default_namespace, str(name), "apiVersion"
                        if not isinstance(api_version, str) else "kind", _NO_VALUE, "Invalid",
                        "is required")
        ]
    group, version = split_api_version(api_version)
    entry = KINDS.get((group, kind))
    if entry is None:
        return None, []
    versions, parser = entry
    obj = parser(raw, default_namespace)
    errors = list(getattr(obj, "errors", ()))
    for rule in getattr(obj, "rules", ()):
        errors.extend(rule.errors)
    for listener in getattr(obj, "listeners", ()):
        errors.extend(listener.errors)
    if version not in versions:
        meta = obj.meta
        errors.insert(0, ConfigError(
            kind, meta.namespace, meta.name, "apiVersion", api_version, "Invalid",
            f"is not a served version of {kind} (expected {group}/"
            + " or ".join(sorted(versions)) + ")",
        ))
        return None, errors
    if not obj.meta.name:
        return None, errors
    return obj, errors
