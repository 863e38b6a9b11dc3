"""ReferenceGrant: where it lives, what it permits, and revocation (SPEC-NOTES §4.4)."""

from __future__ import annotations

from typing import Any

from meshclient import Action, Mesh
from tests.routing.helpers import (
    backend,
    get,
    grant,
    http_route,
    reason,
    rule,
    service,
    world,
)


def cross(*objects: dict[str, Any], target: str = "api") -> Mesh:
    """A route in ``default`` sending to Service ``prod/<target>``."""
    return world(http_route(rules=[rule(backends=[backend(target, namespace="prod")])]),
                 service("api", "prod"), service("web", "prod"), *objects)


def permitted(m: Mesh) -> bool:
    d = get(m, "http://example.com/")
    return d.action is Action.FORWARD


class TestGrants:
    def test_grant_in_target_namespace_permits(self) -> None:
        """A grant in the target namespace permits the reference (SPEC-NOTES §4.4,
        checklist 89)."""
        m = cross(grant("prod"))
        assert permitted(m)
        assert reason(m, "r", "ResolvedRefs") == ("True", "ResolvedRefs")

    def test_grant_in_source_namespace_does_not_permit(self) -> None:
        """A grant in the route's own namespace does nothing (SPEC-NOTES §4.4, checklist 89)."""
        m = cross(grant("default"))
        assert not permitted(m)
        assert reason(m, "r", "ResolvedRefs") == ("False", "RefNotPermitted")

    def test_from_entries_are_ored(self) -> None:
        """Any matching ``from`` entry is enough (SPEC-NOTES §4.4, checklist 89)."""
        assert permitted(cross(grant("prod", from_=[("GRPCRoute", "default"),
                                                    ("HTTPRoute", "other"),
                                                    ("HTTPRoute", "default")])))

    def test_to_entries_are_ored(self) -> None:
        """Any matching ``to`` entry is enough (SPEC-NOTES §4.4, checklist 89)."""
        assert permitted(cross(grant("prod", to=[("Service", "web"), ("Service", "api")])))

    def test_to_without_name_permits_every_service(self) -> None:
        """``to.name`` absent → every Service in the namespace (SPEC-NOTES §4.4, checklist 89)."""
        m = cross(grant("prod", to=[("Service", None)]), target="web")
        assert permitted(m)

    def test_grant_from_other_kind_does_not_permit(self) -> None:
        """A grant for GRPCRoutes does not permit HTTPRoutes (checklist 89)."""
        assert not permitted(cross(grant("prod", from_=[("GRPCRoute", "default")])))

    def test_grant_from_other_namespace_does_not_permit(self) -> None:
        """A grant for another source namespace does not permit (checklist 89)."""
        assert not permitted(cross(grant("prod", from_=[("HTTPRoute", "elsewhere")])))

    def test_grant_to_other_kind_does_not_permit(self) -> None:
        """A grant to Secrets does not permit Services (checklist 89)."""
        assert not permitted(cross(grant("prod", to=[("Secret", None)])))

    def test_grant_with_core_group_rejected(self) -> None:
        """``group: core`` is not the core group: the grant is invalid and permits nothing
        (SPEC-NOTES §4.4 reading)."""
        g = grant("prod")
        g["spec"]["to"][0]["group"] = "core"
        m = cross(g)
        assert not permitted(m)
        assert any("core" in str(p) for p in m.problems)

    def test_grant_removal_revokes_access(self) -> None:
        """Deleting the grant revokes access on the next table (SPEC-NOTES §4.4,
        checklist 90)."""
        m = cross(grant("prod"))
        assert permitted(m)
        m.store.delete("ReferenceGrant", "prod", "allow")
        m.refresh()
        d = get(m, "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert reason(m, "r", "ResolvedRefs") == ("False", "RefNotPermitted")

    def test_grant_for_wrong_service_name_does_not_permit(self) -> None:
        """A grant naming another Service does not permit; the valid backend keeps serving
        (CT:httproute-partially-invalid-via-invalid-reference-grant, checklist 91)."""
        m = world(http_route(rules=[rule(backends=[backend("api", namespace="prod"),
                                                   backend("svc")])]),
                  service("api", "prod"), grant("prod", to=[("Service", "web")]))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        bad, good = d.backends
        assert (bad.name, bad.status) == ("api", 500)
        assert good.valid
        assert reason(m, "r") == ("True", "Accepted")
        assert reason(m, "r", "ResolvedRefs") == ("False", "RefNotPermitted")

    def test_same_namespace_needs_no_grant(self) -> None:
        """References inside one namespace need no grant (SPEC-NOTES §4.4)."""
        assert permitted(world(http_route()))
