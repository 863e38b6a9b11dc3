"""Routing: compile a snapshot into lookup tables and decide requests (SPEC-NOTES §1–7)."""

from meshclient.routing._compile import RoutingOptions as RoutingOptions
from meshclient.routing._compile import RoutingTable as RoutingTable
from meshclient.routing._compile import compile_table as compile_table
from meshclient.routing._decision import Action as Action
from meshclient.routing._decision import Backend as Backend
from meshclient.routing._decision import BackendRequest as BackendRequest
from meshclient.routing._decision import BackendTLS as BackendTLS
from meshclient.routing._decision import Decision as Decision
from meshclient.routing._decision import HeaderEdits as HeaderEdits
from meshclient.routing._decision import Mirror as Mirror
from meshclient.routing._decision import ParentInfo as ParentInfo
from meshclient.routing._decision import RouteInfo as RouteInfo
from meshclient.routing._decision import Via as Via
from meshclient.routing._request import RequestHead as RequestHead
from meshclient.routing._status import Condition as Condition
from meshclient.routing._status import ObjectStatus as ObjectStatus

__all__ = [
    "Action",
    "Backend",
    "BackendRequest",
    "BackendTLS",
    "Condition",
    "Decision",
    "HeaderEdits",
    "Mirror",
    "ObjectStatus",
    "ParentInfo",
    "RequestHead",
    "RouteInfo",
    "RoutingOptions",
    "RoutingTable",
    "Via",
    "compile_table",
]
