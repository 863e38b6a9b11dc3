"""Server-side authorization: identities, policies and decisions (sans-I/O).

``Authorizer`` is what adapters call: request attributes in, an ``AuthzResult`` (a ``Verdict``
and the ``Caller``) out. Policies are Istio ``security.istio.io`` AuthorizationPolicies and
GEP-3779 AuthorizationPolicies (``gateway.networking.x-k8s.io/v1alpha1``), read from the same
sources as routes. Everything fails closed.
"""

from meshclient.authz._audit import AuditRecord as AuditRecord
from meshclient.authz._audit import DecisionHook as DecisionHook
from meshclient.authz._audit import DryRunResult as DryRunResult
from meshclient.authz._audit import Verdict as Verdict
from meshclient.authz._authorizer import Authorizer as Authorizer
from meshclient.authz._authorizer import AuthzResult as AuthzResult
from meshclient.authz._authorizer import SnapshotSource as SnapshotSource
from meshclient.authz._engine import DEFAULT_ROOT_NAMESPACE as DEFAULT_ROOT_NAMESPACE
from meshclient.authz._engine import PolicySet as PolicySet
from meshclient.authz._engine import Workload as Workload
from meshclient.authz._engine import compile_policies as compile_policies
from meshclient.authz._identity import ANONYMOUS as ANONYMOUS
from meshclient.authz._identity import Caller as Caller
from meshclient.authz._identity import Identity as Identity
from meshclient.authz._identity import RequestPrincipal as RequestPrincipal
from meshclient.authz._identity import (
    identity_from_service_account as identity_from_service_account,
)
from meshclient.authz._identity import identity_from_spiffe_id as identity_from_spiffe_id
from meshclient.authz._identity import parse_spiffe_id as parse_spiffe_id
from meshclient.authz._identity import service_account_username as service_account_username
from meshclient.authz._identity import spiffe_id_from_certificate as spiffe_id_from_certificate
from meshclient.authz._paths import PathOptions as PathOptions
from meshclient.authz._paths import PathRejected as PathRejected
from meshclient.authz._paths import normalize_path as normalize_path
from meshclient.authz._request import AuthzRequest as AuthzRequest
from meshclient.authz._tokens import DEFAULT_ALGORITHMS as DEFAULT_ALGORITHMS
from meshclient.authz._tokens import DEFAULT_CLOCK_SKEW as DEFAULT_CLOCK_SKEW
from meshclient.authz._tokens import Issuer as Issuer
from meshclient.authz._tokens import KeyStore as KeyStore
from meshclient.authz._tokens import Rejected as Rejected
from meshclient.authz._tokens import StaticKeys as StaticKeys
from meshclient.authz._tokens import TokenValidator as TokenValidator
from meshclient.authz._tokens import Validated as Validated
from meshclient.authz._tokens import keys_by_kid as keys_by_kid

__all__ = [
    "ANONYMOUS",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_ROOT_NAMESPACE",
    "AuditRecord",
    "Authorizer",
    "AuthzRequest",
    "AuthzResult",
    "Caller",
    "DecisionHook",
    "DryRunResult",
    "Identity",
    "Issuer",
    "KeyStore",
    "PathOptions",
    "PathRejected",
    "PolicySet",
    "Rejected",
    "RequestPrincipal",
    "SnapshotSource",
    "StaticKeys",
    "TokenValidator",
    "Validated",
    "Verdict",
    "Workload",
    "compile_policies",
    "identity_from_service_account",
    "identity_from_spiffe_id",
    "keys_by_kid",
    "normalize_path",
    "parse_spiffe_id",
    "service_account_username",
    "spiffe_id_from_certificate",
]
