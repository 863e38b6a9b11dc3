"""backendRefs: weights, invalid references and their statuses, protocols, timeouts and retry
fields on the decision (SPEC-NOTES §4, §5.2, §5.3)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient import Action, Mesh
from tests.routing.helpers import (
    backend,
    endpoint_slice,
    gateway,
    get,
    http_route,
    match,
    mesh,
    reason,
    route_condition,
    rule,
    service,
    world,
)


def routed(*backends: dict[str, Any], objects: tuple[dict[str, Any], ...] = (),
           services: tuple[str, ...] = ("svc", "svc2", "shadow")) -> Mesh:
    return world(http_route(rules=[rule(backends=list(backends))]), *objects,
                 services=services)


class TestWeights:
    def test_weights_carried_for_proportional_choice(self) -> None:
        """Each candidate carries its weight; shares are weight/sum (SPEC-NOTES §4.2,
        checklist 78)."""
        d = get(routed(backend("svc", weight=90), backend("svc2", weight=10)),
                "http://example.com/")
        assert d.action is Action.FORWARD
        assert [(b.name, b.weight) for b in d.backends] == [("svc", 90), ("svc2", 10)]
        assert [b["weight"] for b in d.to_json()["backends"]] == [90, 10]

    def test_weight_zero_backend_listed_with_zero(self) -> None:
        """A weight-0 backend is never chosen: it carries weight 0 (SPEC-NOTES §4.2,
        checklist 78)."""
        d = get(routed(backend("svc", weight=0), backend("svc2")), "http://example.com/")
        assert d.action is Action.FORWARD
        assert {b.name: b.weight for b in d.backends} == {"svc": 0, "svc2": 1}

    def test_all_zero_weights_is_500(self) -> None:
        """All weights 0 → no forwardable backend → 500 (SPEC-NOTES §4.2 reading,
        checklist 79)."""
        d = get(routed(backend("svc", weight=0), backend("svc2", weight=0)),
                "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)

    def test_sole_backend_weight_zero_is_500(self) -> None:
        """A sole backend with weight 0 gets no traffic (SPEC-NOTES §4.2 reading, checklist 79)."""
        d = get(routed(backend("svc", weight=0)), "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)


class TestInvalidBackends:
    def test_missing_service_backend_not_found_500(self) -> None:
        """A missing Service → ResolvedRefs=False BackendNotFound, requests 500 (SPEC-NOTES
        §4.3, checklist 80)."""
        m = routed(backend("ghost"))
        d = get(m, "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert reason(m, "r", "ResolvedRefs") == ("False", "BackendNotFound")

    def test_unknown_kind_invalid_kind_500(self) -> None:
        """An unsupported kind → InvalidKind, 500 (SPEC-NOTES §4.3, checklist 81)."""
        m = routed(backend("b", kind="Bucket", group="storage.example.com"))
        d = get(m, "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert reason(m, "r", "ResolvedRefs") == ("False", "InvalidKind")

    def test_cross_namespace_without_grant_ref_not_permitted_500(self) -> None:
        """A cross-namespace Service without a ReferenceGrant → RefNotPermitted, 500
        (SPEC-NOTES §4.3, checklist 82)."""
        m = routed(backend("svc", namespace="other"), objects=(service("svc", "other"),))
        d = get(m, "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert reason(m, "r", "ResolvedRefs") == ("False", "RefNotPermitted")

    def test_one_of_two_equal_backends_invalid_half_500(self) -> None:
        """Two equal backends, one invalid: forwarded with the invalid one carrying 500 at
        the same weight, so ~50 % fail (SPEC-NOTES §4.3, checklist 83)."""
        m = routed(backend("svc"), backend("ghost"))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        good, bad = d.backends
        assert (good.name, good.valid, good.weight) == ("svc", True, 1)
        assert (bad.name, bad.valid, bad.status, bad.weight) == ("ghost", False, 500, 1)
        out = d.to_json()["backends"][1]
        assert out["status"] == 500
        assert out["reason"].startswith("BackendNotFound")

    def test_invalid_backend_with_zero_weight_others_fine(self) -> None:
        """An invalid backend with weight 0 takes no traffic (checklist 78, 83)."""
        d = get(routed(backend("svc"), backend("ghost", weight=0)), "http://example.com/")
        assert d.action is Action.FORWARD

    @pytest.mark.parametrize("backends", [None, []])
    def test_omitted_or_empty_backend_refs_500_resolved_refs_true(
        self, backends: list[dict[str, Any]] | None
    ) -> None:
        """A rule with no backendRefs → 500 and ResolvedRefs stays True
        (CT:httproute-omitted-backendrefs, SPEC-NOTES §4.3, checklist 84)."""
        r: dict[str, Any] = {"matches": [match("/")]}
        if backends is not None:
            r["backendRefs"] = backends
        m = world(http_route(rules=[r]))
        d = get(m, "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert reason(m, "r", "ResolvedRefs") == ("True", "ResolvedRefs")
        assert reason(m, "r") == ("True", "Accepted")

    def test_route_without_rules_500(self) -> None:
        """Omitted ``rules`` gives a PathPrefix ``/`` rule with no backends → 500
        (SPEC-NOTES §0.1, checklist 2, 84)."""
        obj = http_route()
        del obj["spec"]["rules"]
        d = get(world(obj), "http://example.com/any")
        assert (d.action, d.status) == (Action.REJECT, 500)

    def test_route_stays_accepted_when_only_backends_invalid(self) -> None:
        """Only-backend problems leave Accepted=True (SPEC-NOTES §4.3, checklist 86)."""
        m = routed(backend("ghost"))
        assert reason(m, "r") == ("True", "Accepted")

    def test_port_missing_on_service_backend_not_found(self) -> None:
        """A port the Service does not have → BackendNotFound (SPEC-NOTES §4.1 reading)."""
        m = routed(backend("svc", port=9999))
        assert get(m, "http://example.com/").status == 500
        assert reason(m, "r", "ResolvedRefs") == ("False", "BackendNotFound")

    def test_resolved_refs_message_names_each_problem(self) -> None:
        """The ResolvedRefs message names every invalid reference (SPEC-NOTES §10)."""
        m = routed(backend("ghost"), backend("svc", namespace="other"),
                   objects=(service("svc", "other"),))
        msg = route_condition(m, "r", "ResolvedRefs").message
        assert "ghost" in msg
        assert "other" in msg


class TestServiceKinds:
    def test_no_ready_endpoints_backend_still_valid(self) -> None:
        """A Service without ready endpoints is a valid backend: the 503 is the transport's,
        not a 500 (SPEC-NOTES §4.3, checklist 85)."""
        m = routed(backend("svc"), objects=(endpoint_slice("svc", ready=False),))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert d.backends[0].valid
        assert reason(m, "r", "ResolvedRefs") == ("True", "ResolvedRefs")

    def test_headless_service_backend_works(self) -> None:
        """Headless Services are valid backends (CT:httproute-service-types, checklist 87)."""
        m = mesh(gateway(), service("hl", headless=True), endpoint_slice("hl"),
                 http_route(rules=[rule(backends=[backend("hl")])]))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert d.backends[0].valid

    def test_selector_less_service_backend_works(self) -> None:
        """A Service without selector (manual EndpointSlice) is a valid backend
        (CT:httproute-service-types, checklist 87)."""
        m = mesh(gateway(), service("manual"), endpoint_slice("manual"),
                 http_route(rules=[rule(backends=[backend("manual")])]))
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert d.backends[0].valid

    def test_external_name_service_not_supported(self) -> None:
        """ExternalName Services are not backends by default (CVE-2021-25740, SPEC-NOTES §4.1,
        checklist 88)."""
        m = mesh(gateway(), service("ext", type="ExternalName", external_name="db.example.org"),
                 http_route(rules=[rule(backends=[backend("ext")])]))
        d = get(m, "http://example.com/")
        assert (d.action, d.status) == (Action.REJECT, 500)
        assert route_condition(m, "r", "ResolvedRefs").status == "False"

    @pytest.mark.parametrize("app", ["kubernetes.io/h2c", "kubernetes.io/ws", "http", None])
    def test_http_capable_app_protocol_accepted_and_carried(self, app: str | None) -> None:
        """appProtocol values HTTP can use are honoured and carried for the transport
        (SPEC-NOTES §4.5)."""
        ports = (("http", 8080, app),) if app else (("http", 8080),)
        m = mesh(gateway(), service("svc", ports=ports), http_route())
        d = get(m, "http://example.com/")
        assert d.action is Action.FORWARD
        assert d.backends[0].app_protocol == app
        if app:
            assert d.to_json()["backends"][0]["app_protocol"] == app

    @pytest.mark.parametrize("app", ["mysql", "kubernetes.io/tcp", "kubernetes.io/wss"])
    def test_unusable_app_protocol_unsupported_protocol(self, app: str) -> None:
        """A protocol the route cannot speak → UnsupportedProtocol, backend invalid (500)
        (SPEC-NOTES §4.5, checklist 94)."""
        m = mesh(gateway(), service("svc", ports=(("p", 8080, app),)), http_route())
        assert get(m, "http://example.com/").status == 500
        assert reason(m, "r", "ResolvedRefs") == ("False", "UnsupportedProtocol")


class TestTimeoutsAndRetry:
    def test_timeouts_carried_on_decision(self) -> None:
        """request and backendRequest are carried in seconds (SPEC-NOTES §5.2, checklist 96,
        97)."""
        m = world(http_route(rules=[rule(timeouts={"request": "10s",
                                                   "backendRequest": "2s"})]))
        d = get(m, "http://example.com/")
        assert d.timeouts is not None
        assert (d.timeouts.request, d.timeouts.backend_request) == (10.0, 2.0)
        assert d.to_json()["timeouts"] == {"request": 10.0, "backend_request": 2.0}

    def test_zero_timeout_carried_as_disabled(self) -> None:
        """``0s`` is carried as 0.0 (disabled), not dropped (SPEC-NOTES §5.2, checklist 98)."""
        m = world(http_route(rules=[rule(timeouts={"request": "0s"})]))
        assert get(m, "http://example.com/").to_json()["timeouts"] == {"request": 0.0}

    def test_no_timeouts_field_omitted(self) -> None:
        """Without timeouts the field is left out (DESIGN.md: fields that do not apply)."""
        out = get(world(http_route()), "http://example.com/").to_json()
        assert "timeouts" not in out
        assert "retry" not in out

    def test_backend_request_over_request_rule_rejected(self) -> None:
        """backendRequest > request (request ≠ 0s) drops the rule (SPEC-NOTES §5.2,
        checklist 99)."""
        m = world(http_route(rules=[rule(timeouts={"request": "1s", "backendRequest": "5s"})]))
        assert route_condition(m, "r").status == "False"
        assert get(m, "http://example.com/").route is None

    def test_retry_fields_carried_on_decision(self) -> None:
        """retry attempts, codes and backoff are carried for the transport (SPEC-NOTES §5.3)."""
        m = world(http_route(rules=[rule(retry={"attempts": 2, "codes": [503, 500],
                                                "backoff": "100ms"})]))
        d = get(m, "http://example.com/")
        assert d.retry is not None
        assert (d.retry.attempts, d.retry.codes, d.retry.backoff) == (
            2, frozenset({500, 503}), 0.1)
        out = d.to_json()["retry"]
        assert (out["attempts"], out["codes"], out["backoff"]) == (2, [500, 503], 0.1)

    def test_retry_stanza_defaults_when_fields_unset(self) -> None:
        """An empty retry stanza enables retries with implementation defaults (§5.3)."""
        m = world(http_route(rules=[rule(retry={})]))
        d = get(m, "http://example.com/")
        assert d.retry is not None
        assert d.retry.attempts >= 1
        assert d.retry.codes == frozenset()

    def test_retry_code_out_of_range_rule_rejected(self) -> None:
        """Codes outside 400–599 drop the rule (SPEC-NOTES §5.3, checklist 101)."""
        m = world(http_route(rules=[rule(retry={"codes": [302]})]))
        assert route_condition(m, "r").status == "False"

    def test_timeouts_only_on_their_rule(self) -> None:
        """Timeouts belong to their rule, not the route (SPEC-NOTES §5.2)."""
        m = world(http_route(rules=[rule(match("/slow"), timeouts={"request": "30s"}),
                                    rule(match("/"))]))
        assert get(m, "http://example.com/slow").timeouts is not None
        assert get(m, "http://example.com/fast").timeouts is None
