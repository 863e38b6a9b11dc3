"""Gateway API and Kubernetes objects as frozen values, parsed with the API server's defaults."""

from meshclient.model._authz_policy import DRY_RUN_ANNOTATION as DRY_RUN_ANNOTATION
from meshclient.model._authz_policy import ISTIO_SECURITY_GROUP as ISTIO_SECURITY_GROUP
from meshclient.model._authz_policy import GatewayAuthorizationPolicy as GatewayAuthorizationPolicy
from meshclient.model._authz_policy import GatewayAuthzRule as GatewayAuthzRule
from meshclient.model._authz_policy import GatewayAuthzSource as GatewayAuthzSource
from meshclient.model._authz_policy import IstioAuthorizationPolicy as IstioAuthorizationPolicy
from meshclient.model._authz_policy import IstioCondition as IstioCondition
from meshclient.model._authz_policy import IstioOperation as IstioOperation
from meshclient.model._authz_policy import IstioRule as IstioRule
from meshclient.model._authz_policy import IstioSource as IstioSource
from meshclient.model._duration import format_duration as format_duration
from meshclient.model._duration import parse_duration as parse_duration
from meshclient.model._filters import CORS as CORS
from meshclient.model._filters import ExtensionRef as ExtensionRef
from meshclient.model._filters import ExternalAuth as ExternalAuth
from meshclient.model._filters import Filter as Filter
from meshclient.model._filters import HeaderModifier as HeaderModifier
from meshclient.model._filters import PathModifier as PathModifier
from meshclient.model._filters import RequestMirror as RequestMirror
from meshclient.model._filters import RequestRedirect as RequestRedirect
from meshclient.model._filters import URLRewrite as URLRewrite
from meshclient.model._gateway import AllowedRoutes as AllowedRoutes
from meshclient.model._gateway import Gateway as Gateway
from meshclient.model._gateway import GatewayClass as GatewayClass
from meshclient.model._gateway import Listener as Listener
from meshclient.model._gateway import ListenerSet as ListenerSet
from meshclient.model._gateway import RouteGroupKind as RouteGroupKind
from meshclient.model._grpcroute import GRPCBackendRef as GRPCBackendRef
from meshclient.model._grpcroute import GRPCMethodMatch as GRPCMethodMatch
from meshclient.model._grpcroute import GRPCRoute as GRPCRoute
from meshclient.model._grpcroute import GRPCRouteMatch as GRPCRouteMatch
from meshclient.model._grpcroute import GRPCRouteRule as GRPCRouteRule
from meshclient.model._httproute import HeaderMatch as HeaderMatch
from meshclient.model._httproute import HTTPBackendRef as HTTPBackendRef
from meshclient.model._httproute import HTTPRoute as HTTPRoute
from meshclient.model._httproute import HTTPRouteMatch as HTTPRouteMatch
from meshclient.model._httproute import HTTPRouteRule as HTTPRouteRule
from meshclient.model._httproute import PathMatch as PathMatch
from meshclient.model._httproute import QueryParamMatch as QueryParamMatch
from meshclient.model._meta import GATEWAY_GROUP as GATEWAY_GROUP
from meshclient.model._meta import LabelSelector as LabelSelector
from meshclient.model._meta import Meta as Meta
from meshclient.model._meta import ObjectKey as ObjectKey
from meshclient.model._objects import KINDS as KINDS
from meshclient.model._objects import Object as Object
from meshclient.model._objects import parse_object as parse_object
from meshclient.model._policy import BackendTLSPolicy as BackendTLSPolicy
from meshclient.model._policy import ConfigMap as ConfigMap
from meshclient.model._policy import Namespace as Namespace
from meshclient.model._policy import PolicyTargetRef as PolicyTargetRef
from meshclient.model._policy import ReferenceGrant as ReferenceGrant
from meshclient.model._policy import SubjectAltName as SubjectAltName
from meshclient.model._policy import XBackendTrafficPolicy as XBackendTrafficPolicy
from meshclient.model._refs import BackendRef as BackendRef
from meshclient.model._refs import ParentRef as ParentRef
from meshclient.model._service import Endpoint as Endpoint
from meshclient.model._service import EndpointPort as EndpointPort
from meshclient.model._service import EndpointSlice as EndpointSlice
from meshclient.model._service import Service as Service
from meshclient.model._service import ServicePort as ServicePort
from meshclient.model._traffic import RetryConstraint as RetryConstraint
from meshclient.model._traffic import RetryPolicy as RetryPolicy
from meshclient.model._traffic import SessionPersistence as SessionPersistence
from meshclient.model._traffic import Timeouts as Timeouts

__all__ = [
    "CORS",
    "DRY_RUN_ANNOTATION",
    "GATEWAY_GROUP",
    "ISTIO_SECURITY_GROUP",
    "KINDS",
    "AllowedRoutes",
    "BackendRef",
    "BackendTLSPolicy",
    "ConfigMap",
    "Endpoint",
    "EndpointPort",
    "EndpointSlice",
    "ExtensionRef",
    "ExternalAuth",
    "Filter",
    "GRPCBackendRef",
    "GRPCMethodMatch",
    "GRPCRoute",
    "GRPCRouteMatch",
    "GRPCRouteRule",
    "Gateway",
    "GatewayAuthorizationPolicy",
    "GatewayAuthzRule",
    "GatewayAuthzSource",
    "GatewayClass",
    "HTTPBackendRef",
    "HTTPRoute",
    "HTTPRouteMatch",
    "HTTPRouteRule",
    "HeaderMatch",
    "HeaderModifier",
    "IstioAuthorizationPolicy",
    "IstioCondition",
    "IstioOperation",
    "IstioRule",
    "IstioSource",
    "LabelSelector",
    "Listener",
    "ListenerSet",
    "Meta",
    "Namespace",
    "Object",
    "ObjectKey",
    "ParentRef",
    "PathMatch",
    "PathModifier",
    "PolicyTargetRef",
    "QueryParamMatch",
    "ReferenceGrant",
    "RequestMirror",
    "RequestRedirect",
    "RetryConstraint",
    "RetryPolicy",
    "RouteGroupKind",
    "Service",
    "ServicePort",
    "SessionPersistence",
    "SubjectAltName",
    "Timeouts",
    "URLRewrite",
    "XBackendTrafficPolicy",
    "format_duration",
    "parse_duration",
    "parse_object",
]
