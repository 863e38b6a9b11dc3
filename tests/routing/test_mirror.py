"""RequestMirror: targets, sampling, invalid mirrors (SPEC-NOTES §3.5)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient import Action, Mesh
from tests.routing.helpers import (
    backend,
    get,
    http_route,
    mirror,
    reason,
    route_condition,
    rule,
    service,
    world,
)


def mirrored(*filters: dict[str, Any], extra: tuple[dict[str, Any], ...] = ()) -> Mesh:
    return world(http_route(rules=[rule(filters=list(filters))]), *extra)


class TestTargets:
    def test_mirror_carried_apart_from_backends(self) -> None:
        """The mirror is a copy to its own backend, not a weighted candidate: its response
        is ignored (SPEC-NOTES §3.5, checklist 63)."""
        d = get(mirrored(mirror("shadow")), "http://example.com/")
        assert d.action is Action.FORWARD
        assert [b.name for b in d.backends] == ["svc"]
        (mi,) = d.mirrors
        assert (mi.backend.namespace, mi.backend.name, mi.backend.port) == (
            "default", "shadow", 8080)
        assert d.to_json()["mirrors"] == [{"backend": {"kind": "Service", "namespace": "default",
                                                       "name": "shadow", "port": 8080},
                                           "percent": 100}]

    def test_mirror_sees_the_filtered_request_not_a_separate_path(self) -> None:
        """One mirror entry per filter, listed once (SPEC-NOTES §3.5, checklist 63)."""
        d = get(mirrored(mirror("shadow"), mirror("svc2")), "http://example.com/")
        assert [mi.backend.name for mi in d.mirrors] == ["shadow", "svc2"]

    def test_backend_level_mirror_carried_on_that_backend(self) -> None:
        """A backendRef-level mirror belongs to that backend only (SPEC-NOTES §3.1)."""
        m = world(http_route(rules=[rule(backends=[backend("svc", filters=[mirror("shadow")]),
                                                   backend("svc2")])]))
        out = get(m, "http://example.com/").to_json()
        assert out["backends"][0]["mirrors"][0]["backend"]["name"] == "shadow"
        assert "mirrors" not in out["backends"][1]
        assert "mirrors" not in out


class TestSampling:
    @pytest.mark.parametrize(("fields", "percent"), [
        ({}, 100.0),
        ({"percent": 10}, 10.0),
        ({"percent": 0}, 0.0),
        ({"fraction": {"numerator": 1, "denominator": 3}}, 100 / 3),
        ({"fraction": {"numerator": 5}}, 5.0),
        ({"fraction": {"numerator": 0, "denominator": 1}}, 0.0),
    ])
    def test_percent_and_fraction_give_share(self, fields: dict[str, Any],
                                             percent: float) -> None:
        """percent, or fraction (denominator default 100); neither → 100 % (SPEC-NOTES §3.5,
        checklist 64)."""
        (mi,) = get(mirrored(mirror("shadow", **fields)), "http://example.com/").mirrors
        assert mi.percent == pytest.approx(percent)

    def test_percent_and_fraction_together_rejected(self) -> None:
        """percent and fraction together drop the rule (SPEC-NOTES §3.5, checklist 65)."""
        m = mirrored(mirror("shadow", percent=5, fraction={"numerator": 1}))
        assert reason(m, "r") == ("False", "UnsupportedValue")

    def test_numerator_over_denominator_rejected(self) -> None:
        """numerator must not exceed denominator (SPEC-NOTES §3.5, checklist 65)."""
        m = mirrored(mirror("shadow", fraction={"numerator": 11, "denominator": 10}))
        assert route_condition(m, "r").status == "False"


class TestInvalidMirror:
    def test_missing_mirror_service_dropped_primary_unaffected(self) -> None:
        """A mirror to a missing Service is dropped, the primary still forwarded, ResolvedRefs
        False BackendNotFound (SPEC-NOTES §3.5, checklist 66)."""
        m = mirrored(mirror("ghost"))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert [b.name for b in d.backends] == ["svc"]
        assert d.mirrors == ()
        assert reason(m, "r") == ("True", "Accepted")
        assert reason(m, "r", "ResolvedRefs") == ("False", "BackendNotFound")

    def test_cross_namespace_mirror_without_grant_dropped(self) -> None:
        """A mirror into another namespace without a ReferenceGrant is dropped, RefNotPermitted
        (SPEC-NOTES §3.5, checklist 66)."""
        m = mirrored(mirror("shadow", namespace="other"),
                     extra=(service("shadow", "other"),))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert d.mirrors == ()
        assert reason(m, "r", "ResolvedRefs") == ("False", "RefNotPermitted")

    def test_cross_namespace_mirror_with_grant_kept(self) -> None:
        """With a grant the cross-namespace mirror is used (SPEC-NOTES §4.4, checklist 66)."""
        from tests.routing.helpers import grant

        m = mirrored(mirror("shadow", namespace="other"),
                     extra=(service("shadow", "other"), grant("other")))
        (mi,) = get(m, "http://example.com/").mirrors
        assert (mi.backend.namespace, mi.backend.name) == ("other", "shadow")
        assert reason(m, "r", "ResolvedRefs") == ("True", "ResolvedRefs")

    def test_unknown_kind_mirror_dropped(self) -> None:
        """A mirror of an unsupported kind is dropped, InvalidKind (checklist 66)."""
        m = mirrored(mirror("shadow", kind="Bucket"))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD and d.mirrors == ()
        assert reason(m, "r", "ResolvedRefs") == ("False", "InvalidKind")
